// Package runtimetest is the conformance suite every runtime passes: start,
// inspect, crash, recover in a new runtime instance, remove, nothing left.
package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/runtime"
)

// Harness adapts one runtime to the suite.
type Harness interface {
	// New returns a runtime over the same underlying state each time it is
	// called, as a restarted server would get.
	New(t *testing.T) runtime.Runtime
	// Spec returns a spec for a long-running node that prints its
	// NODE_GREETING environment variable and the contents of greeting.txt.
	Spec(t *testing.T, id string) runtime.NodeSpec
	// Kill kills the node from outside the runtime, as a crash would.
	Kill(t *testing.T, st runtime.Status)
	// Leftovers lists whatever of the node id is still there (processes,
	// files, objects).
	Leftovers(t *testing.T, id string) []string
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Helper()
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, h) })
	t.Run("StartIsIdempotent", func(t *testing.T) { testIdempotent(t, h) })
	t.Run("ChangedSpecRestarts", func(t *testing.T) { testChangedSpec(t, h) })
	t.Run("MissingNode", func(t *testing.T) { testMissing(t, h) })
}

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cleanup(t *testing.T, rt runtime.Runtime, id string) {
	t.Helper()
	t.Cleanup(func() { _ = rt.Remove(context.WithoutCancel(t.Context()), id) })
}

func testLifecycle(t *testing.T, h Harness) {
	ctx := t.Context()
	rt := h.New(t)
	id := "life"
	cleanup(t, rt, id)
	spec := h.Spec(t, id)
	st, err := rt.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if st.State != runtime.StateRunning || st.PID == 0 {
		t.Fatalf("after start: %+v", st)
	}
	if lr, ok := rt.(runtime.LogReader); ok {
		WaitFor(t, 10*time.Second, "the node's output in its logs", func() bool {
			var buf bytes.Buffer
			_ = lr.Logs(ctx, id, runtime.LogOptions{}, &buf)
			return strings.Contains(buf.String(), "hello from "+id) && strings.Contains(buf.String(), "greeting-file "+id)
		})
	}

	h.Kill(t, st)
	WaitFor(t, 10*time.Second, "the killed node to be reported exited", func() bool {
		got, err := rt.Inspect(ctx, id)
		return err == nil && got.State == runtime.StateExited
	})
	got, _ := rt.Inspect(ctx, id)
	if got.Message == "" {
		t.Errorf("an exited node should say why: %+v", got)
	}

	st, err = rt.Start(ctx, spec)
	if err != nil {
		t.Fatalf("restart after crash: %v", err)
	}
	if st.State != runtime.StateRunning {
		t.Fatalf("after restart: %+v", st)
	}

	// A new runtime instance (a restarted server) re-adopts the node.
	rt2 := h.New(t)
	adopted, err := rt2.Inspect(ctx, id)
	if err != nil {
		t.Fatalf("inspect from a new runtime: %v", err)
	}
	if adopted.State != runtime.StateRunning || adopted.PID != st.PID {
		t.Fatalf("new runtime sees %+v, want running pid %d", adopted, st.PID)
	}
	again, err := rt2.Start(ctx, spec)
	if err != nil || again.PID != st.PID {
		t.Fatalf("start of an adopted node with the same spec restarted it: %+v %v", again, err)
	}
	list, err := rt2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range list {
		if s.ID == id {
			found = true
			if s.Labels["test"] != "runtimetest" {
				t.Errorf("labels lost: %v", s.Labels)
			}
		}
	}
	if !found {
		t.Fatalf("list does not have %s: %+v", id, list)
	}

	if err := rt2.Remove(ctx, id); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := rt2.Inspect(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("inspect after remove: want ErrNotFound, got %v", err)
	}
	WaitFor(t, 10*time.Second, "nothing left of the node", func() bool { return len(h.Leftovers(t, id)) == 0 })
	if err := rt2.Remove(ctx, id); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}

func testIdempotent(t *testing.T, h Harness) {
	ctx := t.Context()
	rt := h.New(t)
	id := "idem"
	cleanup(t, rt, id)
	spec := h.Spec(t, id)
	a, err := rt.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rt.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if a.PID != b.PID {
		t.Fatalf("second start of the same spec restarted the node: pid %d then %d", a.PID, b.PID)
	}
	if err := rt.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := rt.Stop(ctx, id); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	st, err := rt.Inspect(ctx, id)
	if err != nil || st.State != runtime.StateExited {
		t.Fatalf("after stop: %+v %v", st, err)
	}
}

func testChangedSpec(t *testing.T, h Harness) {
	ctx := t.Context()
	rt := h.New(t)
	id := "changed"
	cleanup(t, rt, id)
	spec := h.Spec(t, id)
	a, err := rt.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Env["NODE_GREETING"] = "a new greeting"
	b, err := rt.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if a.PID == b.PID || a.SpecHash == b.SpecHash {
		t.Fatalf("a changed spec did not restart the node: %+v then %+v", a, b)
	}
}

func testMissing(t *testing.T, h Harness) {
	ctx := t.Context()
	rt := h.New(t)
	if _, err := rt.Inspect(ctx, "never"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("inspect of a missing node: want ErrNotFound, got %v", err)
	}
	if err := rt.Stop(ctx, "never"); err != nil {
		t.Fatalf("stop of a missing node: %v", err)
	}
	if err := rt.Remove(ctx, "never"); err != nil {
		t.Fatalf("remove of a missing node: %v", err)
	}
}
