package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/store"
)

// bootstrapDriver is testDriver whose nodes, validators and full nodes
// alike, are planned Joining and join at their second Bootstrap, as a
// Fabric node joins its channel once its admin API answers.
type bootstrapDriver struct {
	testDriver
	mu    sync.Mutex
	calls map[string]int
	// runningBefore records a network seen Running while a node had yet
	// to join.
	runningBefore bool
}

var _ chain.Bootstrapper = (*bootstrapDriver)(nil)

func (d *bootstrapDriver) Plan(ctx context.Context, req chain.PlanRequest) (*chain.Plan, error) {
	p, err := d.testDriver.Plan(ctx, req)
	if err != nil {
		return nil, err
	}
	for i := range p.Nodes {
		p.Nodes[i].Joining = true
	}
	return p, nil
}

func (d *bootstrapDriver) Bootstrap(_ context.Context, n *apis.Network, _ *chain.Plan, pn chain.PlannedNode) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n.Status.Phase == apis.PhaseRunning {
		d.runningBefore = true
	}
	d.calls[pn.Name]++
	return d.calls[pn.Name] >= 2, nil
}

// TestBootstrapNewNetwork: the nodes of a new network that the driver
// bootstraps are joined once they run, full nodes too, and the network
// is Running only when every node has joined.
func TestBootstrapNewNetwork(t *testing.T) {
	drv := &bootstrapDriver{calls: map[string]int{}}
	chain.Register("bootstrapchain", drv)
	e := newEnv(t)
	n := e.create(t, "boot", "ok", 2)
	n.Spec.Chain = "bootstrapchain"
	n.Spec.FullNodes = 1
	o, _ := store.NetworkToObject(n)
	if _, err := e.store.Update(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	n = e.reconcileUntil(t, "boot", 20*time.Second, func(n *apis.Network) bool {
		return n != nil && n.Status.Phase == apis.PhaseRunning
	})
	for _, s := range n.Status.Nodes {
		if s.Joining || s.Phase != apis.NodeRunning {
			t.Errorf("%s: joining %v, phase %s; want joined and running", s.Name, s.Joining, s.Phase)
		}
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	for _, name := range []string{"validator-0", "validator-1", "full-0"} {
		if drv.calls[name] != 2 {
			t.Errorf("Bootstrap called %d times for %s, want 2 (calls %v)", drv.calls[name], name, drv.calls)
		}
	}
	if drv.runningBefore {
		t.Error("the network was Running before every node joined")
	}
	if got := reasons(t, e, n, "NodeJoined"); got != 3 {
		t.Errorf("%d NodeJoined events, want 3", got)
	}
}
