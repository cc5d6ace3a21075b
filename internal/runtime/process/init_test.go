package process

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/runtime/runtimetest"
)

func TestInitStepsRunBeforeEveryStart(t *testing.T) {
	h := &harness{dir: t.TempDir()}
	rt := h.New(t)
	ctx := t.Context()
	spec := runtime.NodeSpec{
		ID:      "inited",
		Program: "sh",
		Args:    []string{"-c", `echo "node sees $(cat prepared)"; exec sleep 600`},
		Init: []runtime.InitStep{
			{Name: "prepare", Program: "sh", Args: []string{"-c", `echo "$STEP_WORD" >> prepared; echo prepared once more`}, Env: map[string]string{"STEP_WORD": "ready"}},
			{Name: "check", Program: "sh", Args: []string{"-c", `test -s prepared`}},
		},
	}
	removeOnCleanup(t, rt, "inited")
	st, err := rt.Start(ctx, spec)
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("start: %+v %v", st, err)
	}
	var logs bytes.Buffer
	runtimetest.WaitFor(t, 10*time.Second, "the node's output", func() bool {
		logs.Reset()
		_ = rt.(runtime.LogReader).Logs(ctx, "inited", runtime.LogOptions{}, &logs)
		return strings.Contains(logs.String(), "node sees ready")
	})
	if !strings.Contains(logs.String(), "init step prepare") || !strings.Contains(logs.String(), "prepared once more") {
		t.Errorf("the init step's output is not in the node's log: %q", logs.String())
	}

	// After a crash the steps run again before the node.
	h.Kill(t, st)
	runtimetest.WaitFor(t, 10*time.Second, "the killed node to be reported exited", func() bool {
		got, err := rt.Inspect(ctx, "inited")
		return err == nil && got.State == runtime.StateExited
	})
	if st, err = rt.Start(ctx, spec); err != nil || st.State != runtime.StateRunning {
		t.Fatalf("restart: %+v %v", st, err)
	}
	b, _ := os.ReadFile(filepath.Join(h.dir, "inited", "home", "prepared"))
	if string(b) != "ready\nready\n" {
		t.Errorf("the init step ran other than once per start: %q", b)
	}
}

func TestFailingInitStepFailsTheStart(t *testing.T) {
	h := &harness{dir: t.TempDir()}
	rt := h.New(t)
	ctx := t.Context()
	spec := runtime.NodeSpec{
		ID:      "badinit",
		Program: "sh",
		Args:    []string{"-c", `echo node started; exec sleep 600`},
		Init:    []runtime.InitStep{{Name: "genesis", Program: "sh", Args: []string{"-c", `echo no genesis here; exit 4`}}},
	}
	removeOnCleanup(t, rt, "badinit")
	st, err := rt.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtime.StateExited || !strings.Contains(st.Message, "init step genesis exited with code 4") {
		t.Fatalf("start with a failing init step: %+v", st)
	}
	b, _ := os.ReadFile(filepath.Join(h.dir, "badinit", "logs", "node.log"))
	if !strings.Contains(string(b), "no genesis here") || strings.Contains(string(b), "node started") {
		t.Errorf("node log: %q", b)
	}

	spec.Init = []runtime.InitStep{{Name: "a", Program: "sh"}, {Name: "a", Program: "sh"}}
	if _, err := rt.Start(ctx, spec); err == nil || !strings.Contains(err.Error(), `init step name "a" must be unique`) {
		t.Errorf("two steps of one name: %v", err)
	}
}
