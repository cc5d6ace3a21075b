package process

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/runtime/runtimetest"
)

// testListener plays a sidecar: after a delay it listens on the address
// given, writes the file "ready" in its directory and serves until killed;
// with "exit N" it exits at once with code N.
func testListener(args []string) int {
	if len(args) == 2 && args[0] == "exit" {
		var code int
		fmt.Sscan(args[1], &code)
		fmt.Println("exiting with", code)
		return code
	}
	time.Sleep(300 * time.Millisecond)
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if err := os.WriteFile("ready", []byte("yes"), 0o600); err != nil {
		return 1
	}
	fmt.Println("listening on", ln.Addr(), "with", os.Getenv("SIDECAR_GREETING"))
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		c.Close()
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func specWithSidecar(t *testing.T, id string, sc runtime.Sidecar) runtime.NodeSpec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sc.Program = exe
	return runtime.NodeSpec{
		ID:       id,
		Program:  "sh",
		Args:     []string{"-c", `echo "node saw sidecar ready: $(cat ready)"; exec sleep 600`},
		Sidecars: []runtime.Sidecar{sc},
	}
}

func shimStateOf(t *testing.T, dir, id string) shimState {
	t.Helper()
	var ss shimState
	if err := readJSON(filepath.Join(dir, id, "state.json"), &ss); err != nil {
		t.Fatal(err)
	}
	return ss
}

func TestSidecarStartsFirstAndSharesTheNodesLife(t *testing.T) {
	h := &harness{dir: t.TempDir()}
	rt := h.New(t).(*Runtime)
	ctx := t.Context()
	addr := freeAddr(t)
	spec := specWithSidecar(t, "withapp", runtime.Sidecar{
		Name: "app", Args: []string{"test-listener", addr}, ReadyAddress: addr,
		Env: map[string]string{"SIDECAR_GREETING": "hello-sidecar"},
	})
	removeOnCleanup(t, rt, "withapp")

	st, err := rt.Start(ctx, spec)
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("start: %+v %v", st, err)
	}
	var node, app bytes.Buffer
	runtimetest.WaitFor(t, 10*time.Second, "the node's and the sidecar's logs", func() bool {
		node.Reset()
		app.Reset()
		_ = rt.Logs(ctx, "withapp", runtime.LogOptions{}, &node)
		_ = rt.Logs(ctx, "withapp", runtime.LogOptions{Sidecar: "app"}, &app)
		return node.Len() > 0 && app.Len() > 0
	})
	// The node started only after the sidecar was listening.
	if !strings.Contains(node.String(), "node saw sidecar ready: yes") {
		t.Errorf("node log: %q", node.String())
	}
	if !strings.Contains(app.String(), "listening on "+addr+" with hello-sidecar") {
		t.Errorf("sidecar log: %q", app.String())
	}
	if err := rt.Logs(ctx, "withapp", runtime.LogOptions{Sidecar: "../node"}, &app); err == nil {
		t.Error("a sidecar name with a path was accepted for logs")
	}

	// A crashed sidecar takes the node down with it, and says so.
	ss := shimStateOf(t, h.dir, "withapp")
	if len(ss.Sidecars) != 1 || !alive(ss.Sidecars[0].PID, ss.Sidecars[0].Start) {
		t.Fatalf("sidecar not recorded as running: %+v", ss)
	}
	if err := syscall.Kill(ss.Sidecars[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Until the shim has stopped the sidecars and recorded the exit, the
	// node may show as gone without a record.
	runtimetest.WaitFor(t, 10*time.Second, "the node to exit with its sidecar, recorded", func() bool {
		got, err := rt.Inspect(ctx, "withapp")
		return err == nil && got.State == runtime.StateExited && !got.ExitedAt.IsZero()
	})
	got, _ := rt.Inspect(ctx, "withapp")
	if !strings.Contains(got.Message, "sidecar app was killed by signal: killed") || got.ExitCode == 0 {
		t.Errorf("exit of a node whose sidecar died: %+v", got)
	}
	if left := livePIDs(ss); len(left) != 0 {
		t.Fatalf("processes left after the sidecar died: %v", left)
	}

	// Started again, then removed: nothing of either is left.
	if st, err := rt.Start(ctx, spec); err != nil || st.State != runtime.StateRunning {
		t.Fatalf("restart: %+v %v", st, err)
	}
	ss = shimStateOf(t, h.dir, "withapp")
	if err := rt.Remove(ctx, "withapp"); err != nil {
		t.Fatal(err)
	}
	if left := livePIDs(ss); len(left) != 0 {
		t.Fatalf("processes left after remove: %v", left)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("the sidecar still listens after remove")
	}
}

func TestSidecarThatDiesBeforeReadyFailsTheStart(t *testing.T) {
	h := &harness{dir: t.TempDir()}
	rt := h.New(t)
	ctx := t.Context()
	spec := specWithSidecar(t, "badapp", runtime.Sidecar{Name: "app", Args: []string{"test-listener", "exit", "3"}, ReadyAddress: freeAddr(t)})
	removeOnCleanup(t, rt, "badapp")
	st, err := rt.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtime.StateExited || !strings.Contains(st.Message, "sidecar app exited with code 3 before the node started") {
		t.Fatalf("start with a failing sidecar: %+v", st)
	}
	b, _ := os.ReadFile(filepath.Join(h.dir, "badapp", "logs", "app.log"))
	if !strings.Contains(string(b), "exiting with 3") {
		t.Errorf("sidecar log: %q", b)
	}
}

func TestSidecarSpecIsChecked(t *testing.T) {
	h := &harness{dir: t.TempDir()}
	rt := h.New(t)
	for _, tc := range []struct {
		sidecars []runtime.Sidecar
		want     string
	}{
		{[]runtime.Sidecar{{Name: "node", Program: "sh"}}, `sidecar name "node" must be unique`},
		{[]runtime.Sidecar{{Name: "a/b", Program: "sh"}}, `sidecar name "a/b"`},
		{[]runtime.Sidecar{{Name: "app", Program: "sh"}, {Name: "app", Program: "sh"}}, `sidecar name "app" must be unique`},
		{[]runtime.Sidecar{{Name: "app", Program: "no-such-program-here"}}, `sidecar app: program "no-such-program-here" is not in`},
	} {
		spec := runtime.NodeSpec{ID: "checked", Program: "sh", Sidecars: tc.sidecars}
		_, err := rt.Start(t.Context(), spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			b, _ := json.Marshal(tc.sidecars)
			t.Errorf("sidecars %s: got %v, want %q", b, err, tc.want)
		}
	}
}
