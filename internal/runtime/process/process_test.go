package process

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/runtime/runtimetest"
)

// TestMain lets the test binary play the node shim, as the chaindock binary
// does in production.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ShimCommand {
		os.Exit(ShimMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "test-listener" {
		os.Exit(testListener(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// removeOnCleanup removes node id when the test ends. t.Context is
// cancelled by then, and a cancelled Remove would leave the node running.
func removeOnCleanup(t *testing.T, rt runtime.Runtime, id string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	t.Cleanup(func() {
		if err := rt.Remove(ctx, id); err != nil {
			t.Errorf("remove %s: %v", id, err)
		}
	})
}

type harness struct {
	dir string
}

func (h *harness) New(t *testing.T) runtime.Runtime {
	t.Helper()
	rt, err := New(runtime.Config{DataDir: h.dir})
	if err != nil {
		t.Fatal(err)
	}
	rt.StopGrace = 3 * 1e9
	return rt
}

func (h *harness) Spec(t *testing.T, id string) runtime.NodeSpec {
	t.Helper()
	return runtime.NodeSpec{
		ID:      id,
		Labels:  map[string]string{"test": "runtimetest"},
		Program: "sh",
		Args:    []string{"-c", `echo "hello from $NODE_GREETING"; echo "greeting-file $(cat conf/greeting.txt)"; exec sleep 600`},
		Env:     map[string]string{"NODE_GREETING": id},
		Files:   []runtime.File{{Path: "conf/greeting.txt", Data: []byte(id)}},
	}
}

func (h *harness) Kill(t *testing.T, st runtime.Status) {
	t.Helper()
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", st.PID, err)
	}
}

func (h *harness) Leftovers(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	if _, err := os.Stat(filepath.Join(h.dir, id)); err == nil {
		out = append(out, "directory "+filepath.Join(h.dir, id))
	}
	// Any process whose command line names the node directory.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if strings.Contains(string(b), filepath.Join(h.dir, id)) {
			out = append(out, "process "+p)
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, &harness{dir: t.TempDir()})
}

func TestKeepExistingFileSurvivesRestart(t *testing.T) {
	h := &harness{dir: t.TempDir()}
	rt := h.New(t)
	ctx := t.Context()
	spec := h.Spec(t, "keep")
	spec.Files = append(spec.Files, runtime.File{Path: "data/state.json", Data: []byte("initial"), KeepExisting: true})
	removeOnCleanup(t, rt, "keep")
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(h.dir, "keep", "home", "data", "state.json")
	if err := os.WriteFile(state, []byte("advanced by the node"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec.Env["NODE_GREETING"] = "again" // a new spec forces a restart and a rewrite of files
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(state)
	if string(b) != "advanced by the node" {
		t.Fatalf("a KeepExisting file was overwritten: %q", b)
	}
}

func TestRejectsPathsOutsideHome(t *testing.T) {
	h := &harness{dir: t.TempDir()}
	rt := h.New(t)
	spec := h.Spec(t, "escape")
	spec.Files = []runtime.File{{Path: "../../evil", Data: []byte("x")}}
	if _, err := rt.Start(t.Context(), spec); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("want an error for a file outside the node directory, got %v", err)
	}
	if _, err := rt.Start(t.Context(), runtime.NodeSpec{ID: "../x", Program: "sh"}); err == nil {
		t.Fatal("an id with a path separator was accepted")
	}
}

func TestMissingProgram(t *testing.T) {
	h := &harness{dir: t.TempDir()}
	rt := h.New(t)
	spec := h.Spec(t, "missing")
	spec.Program = "no-such-program-chaindock"
	_, err := rt.Start(t.Context(), spec)
	if err == nil || !strings.Contains(err.Error(), "no-such-program-chaindock") {
		t.Fatalf("want an error naming the missing program, got %v", err)
	}
}

func TestLogsTailAndRotation(t *testing.T) {
	h := &harness{dir: t.TempDir()}
	rt := h.New(t).(*Runtime)
	rt.LogMaxMB = 1
	ctx := t.Context()
	spec := h.Spec(t, "chatty")
	// About 3 MB of numbered lines, then sleep.
	spec.Args = []string{"-c", `i=0; while [ $i -lt 60000 ]; do echo "line $i ........................................"; i=$((i+1)); done; exec sleep 600`}
	removeOnCleanup(t, rt, "chatty")
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	runtimetest.WaitFor(t, 60*1e9, "the last line", func() bool {
		var buf bytes.Buffer
		_ = rt.Logs(ctx, "chatty", runtime.LogOptions{Tail: 1}, &buf)
		return strings.HasPrefix(buf.String(), "line 59999 ")
	})
	var buf bytes.Buffer
	if err := rt.Logs(ctx, "chatty", runtime.LogOptions{Tail: 3}, &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "line 59997 ") {
		t.Fatalf("tail 3: %q", lines)
	}
	rotatedFiles, _ := filepath.Glob(filepath.Join(h.dir, "chatty", "logs", "node-*.log"))
	if len(rotatedFiles) < 2 {
		t.Fatalf("want at least 2 rotated files after 3 MB with a 1 MB limit, got %v", rotatedFiles)
	}
	fi, err := os.Stat(filepath.Join(h.dir, "chatty", "logs", "node.log"))
	if err != nil || fi.Size() > 1<<20 {
		t.Fatalf("current log: %v, size %d", err, fi.Size())
	}
}

// TestNoSecondShimWhileOneStarts: a shim that holds its node's lock but
// has not written state.json yet (its server died in between) blocks a
// second start.
func TestNoSecondShimWhileOneStarts(t *testing.T) {
	h := &harness{dir: t.TempDir()}
	rt := h.New(t)
	spec := h.Spec(t, "racing")
	dir := filepath.Join(h.dir, "racing")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := lockShim(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Released while Start waits: Start goes on and starts the node.
	time.AfterFunc(300*time.Millisecond, func() { lock.Close() })
	st, err := rt.Start(t.Context(), spec)
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("start after the lock was released meanwhile: %+v %v", st, err)
	}
	if err := rt.Remove(t.Context(), "racing"); err != nil {
		t.Fatal(err)
	}
	// Held throughout: Start gives up with a clear error, starting nothing.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err = lockShim(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.Start(t.Context(), spec)
	if err == nil || !strings.Contains(err.Error(), "still runs") {
		t.Fatalf("start while a shim holds the lock: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		t.Fatal("a second node was started while the lock was held")
	}
	lock.Close()
	t.Cleanup(func() { _ = rt.Remove(t.Context(), "racing") })
	if _, err := rt.Start(t.Context(), spec); err != nil {
		t.Fatalf("start after the lock was released: %v", err)
	}
}
