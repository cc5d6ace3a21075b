package controller

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/store"
)

// scaleDriver is testDriver with scaling: each node's args name its
// peers, so adding or removing a node changes the others' specs; a
// validator is admitted at the second Admit and retired at the second
// Retire, as a vote takes blocks.
type scaleDriver struct {
	testDriver
	mu      sync.Mutex
	admits  map[string]int
	retires map[string]int
}

func (d *scaleDriver) Plan(ctx context.Context, req chain.PlanRequest) (*chain.Plan, error) {
	p, err := d.testDriver.Plan(ctx, req)
	if err != nil {
		return nil, err
	}
	withPeers(p)
	return p, nil
}

// withPeers sets each node's last argument to its peers, raising the
// revision of a node whose peers changed.
func withPeers(p *chain.Plan) {
	for i := range p.Nodes {
		var peers []string
		for j, o := range p.Nodes {
			if j != i {
				peers = append(peers, o.Name)
			}
		}
		arg := "peers=" + strings.Join(peers, ",")
		args := slices.Clone(p.Nodes[i].Spec.Args)
		switch {
		case len(args) == 3:
			args = append(args, arg)
		case args[3] != arg:
			args[3] = arg
			p.Nodes[i].Revision++
		}
		p.Nodes[i].Spec.Args = args
	}
}

func (d *scaleDriver) Reshape(ctx context.Context, req chain.ReshapeRequest) (*chain.Plan, error) {
	out := &chain.Plan{ChainID: req.Plan.ChainID}
	for _, pn := range req.Plan.Nodes {
		if !slices.Contains(req.Remove, pn.Name) {
			out.Nodes = append(out.Nodes, pn)
		}
	}
	if len(req.Add) > 0 {
		added, err := d.testDriver.Plan(ctx, chain.PlanRequest{Network: req.Network, Ports: req.Ports, Host: req.Host})
		if err != nil {
			return nil, err
		}
		for _, pn := range added.Nodes {
			if slices.ContainsFunc(req.Add, func(ns apis.NodeSpec) bool { return ns.Name == pn.Name }) {
				pn.Joining = pn.Role == apis.RoleValidator
				out.Nodes = append(out.Nodes, pn)
			}
		}
	}
	withPeers(out)
	return out, nil
}

func (d *scaleDriver) Admit(_ context.Context, _ *apis.Network, _ *chain.Plan, pn chain.PlannedNode) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.admits[pn.Name]++
	return d.admits[pn.Name] >= 2, nil
}

func (d *scaleDriver) Retire(_ context.Context, _ *apis.Network, _ *chain.Plan, pn chain.PlannedNode) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.retires[pn.Name]++
	return d.retires[pn.Name] >= 2, nil
}

func (d *scaleDriver) ValidateScale(_, _ *apis.NetworkSpec, _ *apis.NetworkStatus) apis.ErrorList {
	return nil
}

func (e *env) setValidators(t *testing.T, name string, v int) {
	t.Helper()
	for {
		n := e.get(t, name)
		n.Spec.Validators = v
		o, err := store.NetworkToObject(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Update(t.Context(), o); err == nil {
			return
		} else if !strings.Contains(err.Error(), store.ErrConflict.Error()) {
			t.Fatal(err)
		}
	}
}

// TestScaleUpAndDown grows a running network by a validator and shrinks
// it by two: the new node starts, the old ones restart with their new
// peers one at a time, the new validator is admitted once it runs;
// removed validators are retired before their nodes go, and their ports
// are given back.
func TestScaleUpAndDown(t *testing.T) {
	drv := &scaleDriver{admits: map[string]int{}, retires: map[string]int{}}
	chain.Register("scalechain", drv)
	e := newEnv(t)
	n := e.create(t, "grow", "ok", 2)
	n.Spec.Chain = "scalechain"
	o, _ := store.NetworkToObject(n)
	if _, err := e.store.Update(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	running := func(n *apis.Network) bool { return n != nil && n.Status.Phase == apis.PhaseRunning }
	n = e.reconcileUntil(t, "grow", 20*time.Second, running)
	pids := map[string]int{}
	for _, s := range n.Status.Nodes {
		pids[s.Name] = s.PID
	}

	e.setValidators(t, "grow", 3)
	// Never two old nodes down at once while they restart.
	var mostDown int
	n = e.reconcileUntil(t, "grow", 30*time.Second, func(n *apis.Network) bool {
		down := 0
		for _, s := range n.Status.Nodes {
			if s.Name != "validator-2" && s.Phase != apis.NodeRunning {
				down++
			}
		}
		mostDown = max(mostDown, down)
		v2, ok := nodeStatus(n, "validator-2")
		return ok && !v2.Joining && running(n) && n.Status.Message == ""
	})
	if mostDown > 1 {
		t.Errorf("%d old nodes were down at once", mostDown)
	}
	for _, name := range []string{"validator-0", "validator-1"} {
		s, _ := nodeStatus(n, name)
		if s.PID == pids[name] || s.Restarts != 0 {
			t.Errorf("%s: pid %d (was %d), %d crash restarts; want one restart with its new peers, not counted as a crash", name, s.PID, pids[name], s.Restarts)
		}
	}
	if drv.admits["validator-2"] != 2 || len(drv.admits) != 1 {
		t.Errorf("admits %v, want validator-2 twice", drv.admits)
	}
	if got := reasons(t, e, n, "NodeReconfigured"); got != 2 {
		t.Errorf("%d NodeReconfigured events, want 2", got)
	}

	e.setValidators(t, "grow", 1)
	n = e.reconcileUntil(t, "grow", 30*time.Second, func(n *apis.Network) bool {
		return len(n.Status.Nodes) == 1 && running(n) && n.Status.Message == ""
	})
	if drv.retires["validator-2"] != 2 || drv.retires["validator-1"] != 2 {
		t.Errorf("retires %v, want validator-1 and validator-2 twice each", drv.retires)
	}
	list, err := e.rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != nodeID("grow", "validator-0") {
		t.Errorf("runtime nodes %v, want only validator-0", list)
	}
	ports, err := e.store.Ports(t.Context(), n.Metadata.UID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 1 || ports["validator-0"] == nil {
		t.Errorf("ports %v, want only validator-0's", ports)
	}
	if got := reasons(t, e, n, "NodeRemoved"); got != 2 {
		t.Errorf("%d NodeRemoved events, want 2", got)
	}
}

func nodeStatus(n *apis.Network, name string) (apis.NodeStatus, bool) {
	for _, s := range n.Status.Nodes {
		if s.Name == name {
			return s, true
		}
	}
	return apis.NodeStatus{}, false
}

func reasons(t *testing.T, e *env, n *apis.Network, reason string) int {
	t.Helper()
	events, err := e.store.Events(t.Context(), store.EventFilter{Kind: apis.KindNetwork, UID: n.Metadata.UID})
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	for _, ev := range events {
		if ev.Reason == reason {
			k++
		}
	}
	return k
}
