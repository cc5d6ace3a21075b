package controller

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/store"
)

// reconfDriver is testDriver whose networks have a setting, the label
// "setting", that changes while they run: Reconfigure brings the plan's
// artifact "setting" to it in two calls, the first failing, the second
// leaving it under way, the third done.
type reconfDriver struct {
	testDriver
	mu         sync.Mutex
	calls      int
	notRunning int
}

func (d *reconfDriver) Reconfigure(_ context.Context, n *apis.Network, plan *chain.Plan) (chain.Reconfigured, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n.Status.RunningSince == nil {
		d.notRunning++
	}
	want := n.Metadata.Labels["setting"]
	if string(plan.Artifact("setting")) == want {
		return chain.Reconfigured{}, nil
	}
	d.calls++
	switch d.calls {
	case 1:
		return chain.Reconfigured{Pending: "setting " + want}, errors.New("not yet")
	case 2:
		return chain.Reconfigured{Pending: "setting " + want}, nil
	}
	next := *plan
	next.Artifacts = append(next.Artifacts, runtime.File{Path: "setting", Data: []byte(want)})
	return chain.Reconfigured{Plan: &next, Done: "set to " + want}, nil
}

// TestReconfigure: a Reconfigurer is called once the network runs, its
// work under way is the status message, its error an event, and the plan
// it changed is stored.
func TestReconfigure(t *testing.T) {
	drv := &reconfDriver{}
	chain.Register("reconfchain", drv)
	e := newEnv(t)
	n := e.create(t, "reconf", "ok", 1)
	n.Spec.Chain = "reconfchain"
	n.Metadata.Labels["setting"] = "blue"
	o, err := store.NetworkToObject(n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Update(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	var messages []string
	n = e.reconcileUntil(t, "reconf", 20*time.Second, func(n *apis.Network) bool {
		// A reconcile whose probe found the node not answering says so
		// instead: only a Running network's message is Reconfigure's.
		if n.Status.Message != "" && n.Status.RunningSince != nil && n.Status.Phase == apis.PhaseRunning {
			messages = append(messages, n.Status.Message)
		}
		return n.Status.Phase == apis.PhaseRunning && n.Status.Message == "" && len(messages) > 0
	})
	if drv.notRunning != 0 {
		t.Errorf("Reconfigure called %d times before the network ran", drv.notRunning)
	}
	if !slices.Contains(messages, "setting blue: not yet") {
		t.Errorf("status messages %q, want the first to say what is under way and its error", messages)
	}
	b, err := e.store.GetBlob(t.Context(), n.Metadata.UID, planBlob)
	if err != nil {
		t.Fatal(err)
	}
	var plan chain.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		t.Fatal(err)
	}
	if got := string(plan.Artifact("setting")); got != "blue" {
		t.Errorf("stored plan's setting %q, want blue", got)
	}
	if got := reasons(t, e, n, "Reconfigured"); got != 1 {
		t.Errorf("%d Reconfigured events, want 1", got)
	}
	if got := reasons(t, e, n, "ReconfigureFailed"); got != 1 {
		t.Errorf("%d ReconfigureFailed events, want 1", got)
	}
	if drv.calls != 3 {
		t.Errorf("%d calls with work to do, want 3", drv.calls)
	}
}

// failingReconfDriver is testDriver whose Reconfigure records in the plan
// that it started, then fails with the same error failures times before
// it is done.
type failingReconfDriver struct {
	testDriver
	mu       sync.Mutex
	failures int
	calls    int
}

func (d *failingReconfDriver) Reconfigure(_ context.Context, n *apis.Network, plan *chain.Plan) (chain.Reconfigured, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if plan.Artifact("done") != nil {
		return chain.Reconfigured{}, nil
	}
	d.calls++
	next := *plan
	if plan.Artifact("started") == nil {
		next.Artifacts = append(next.Artifacts, runtime.File{Path: "started", Data: []byte("1")})
	}
	if d.calls <= d.failures {
		return chain.Reconfigured{Plan: &next, Pending: "changing"}, errors.New("peer unreachable")
	}
	next.Artifacts = append(next.Artifacts, runtime.File{Path: "done", Data: []byte("1")})
	return chain.Reconfigured{Plan: &next, Done: "changed"}, nil
}

// TestReconfigureFailing: the plan a failing Reconfigure changed is
// stored all the same; the same error is one event however often it
// comes back; the calls are retried with a growing wait, not at the
// pace of a deploy.
func TestReconfigureFailing(t *testing.T) {
	drv := &failingReconfDriver{failures: 4}
	chain.Register("reconffailchain", drv)
	e := newEnv(t)
	n := e.create(t, "reconffail", "ok", 1)
	n.Spec.Chain = "reconffailchain"
	o, err := store.NetworkToObject(n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Update(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	e.reconcileUntil(t, "reconffail", 20*time.Second, func(n *apis.Network) bool {
		return n.Status.RunningSince != nil
	})
	stored := func() *chain.Plan {
		b, err := e.store.GetBlob(t.Context(), n.Metadata.UID, planBlob)
		if err != nil {
			t.Fatal(err)
		}
		var plan chain.Plan
		if err := json.Unmarshal(b, &plan); err != nil {
			t.Fatal(err)
		}
		return &plan
	}
	var waits []time.Duration
	for drv.calls < drv.failures {
		res, err := e.ctrl.Reconcile(t.Context(), "reconffail")
		if err != nil && !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
		if drv.calls == 1 && stored().Artifact("started") == nil {
			t.Fatal("the plan of the failed call is not stored")
		}
		if drv.calls > 0 {
			waits = append(waits, res.RequeueAfter)
		}
	}
	if len(waits) < 2 || waits[0] < time.Second || waits[len(waits)-1] <= waits[0] {
		t.Errorf("waits after failed calls %v, want at least a second and growing", waits)
	}
	got, err := e.store.Get(t.Context(), apis.KindNetwork, "reconffail")
	if err != nil {
		t.Fatal(err)
	}
	// The event says what the status said, whatever the node's state at
	// the last reconcile (a starved probe says so in the status instead).
	events, err := e.store.Events(t.Context(), store.EventFilter{Kind: apis.KindNetwork, UID: got.UID})
	if err != nil {
		t.Fatal(err)
	}
	failed := slices.IndexFunc(events, func(ev apis.Event) bool { return ev.Reason == "ReconfigureFailed" })
	if failed < 0 || events[failed].Message != "changing: peer unreachable" {
		t.Errorf("events %+v, want one ReconfigureFailed saying what is under way and its error", events)
	}
	e.reconcileUntil(t, "reconffail", 20*time.Second, func(n *apis.Network) bool {
		return n.Status.Phase == apis.PhaseRunning && n.Status.Message == ""
	})
	if stored().Artifact("done") == nil {
		t.Error("the plan of the call that succeeded is not stored")
	}
	if got := reasons(t, e, n, "ReconfigureFailed"); got != 1 {
		t.Errorf("%d ReconfigureFailed events for %d failures with one error, want 1", got, drv.failures)
	}
	if got := reasons(t, e, n, "Reconfigured"); got != 1 {
		t.Errorf("%d Reconfigured events, want 1", got)
	}
}
