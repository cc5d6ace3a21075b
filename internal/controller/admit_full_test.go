package controller

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/store"
)

// fullAdmitDriver is scaleDriver whose new full nodes are planned
// Joining and admitted like validators, as a Fabric peer joins its
// channel.
type fullAdmitDriver struct {
	scaleDriver
}

var _ chain.FullNodeAdmitter = (*fullAdmitDriver)(nil)

func (d *fullAdmitDriver) AdmitsFullNodes() bool { return true }

func (d *fullAdmitDriver) Reshape(ctx context.Context, req chain.ReshapeRequest) (*chain.Plan, error) {
	p, err := d.scaleDriver.Reshape(ctx, req)
	if err != nil {
		return nil, err
	}
	for i, pn := range p.Nodes {
		if slices.ContainsFunc(req.Add, func(ns apis.NodeSpec) bool { return ns.Name == pn.Name }) {
			p.Nodes[i].Joining = true
		}
	}
	return p, nil
}

func (e *env) setFullNodes(t *testing.T, name string, k int) {
	t.Helper()
	for {
		n := e.get(t, name)
		n.Spec.FullNodes = k
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

// TestAdmitFullNodes: a full node added to a running network is admitted
// (Scaler.Admit) only by a driver that says it admits full nodes, and is
// Joining until then; other drivers' full nodes are members once they
// run, with no Admit.
func TestAdmitFullNodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		drv    chain.Scaler
		admits map[string]int
		want   int
	}{
		{name: "admitsfullchain", drv: &fullAdmitDriver{scaleDriver{admits: map[string]int{}, retires: map[string]int{}}}, want: 2},
		{name: "plainfullchain", drv: &scaleDriver{admits: map[string]int{}, retires: map[string]int{}}, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain.Register(tc.name, tc.drv.(chain.Driver))
			e := newEnv(t)
			n := e.create(t, "grow", "ok", 2)
			n.Spec.Chain = tc.name
			o, _ := store.NetworkToObject(n)
			if _, err := e.store.Update(t.Context(), o); err != nil {
				t.Fatal(err)
			}
			running := func(n *apis.Network) bool { return n != nil && n.Status.Phase == apis.PhaseRunning }
			e.reconcileUntil(t, "grow", 20*time.Second, running)

			e.setFullNodes(t, "grow", 1)
			sawJoining := false
			n = e.reconcileUntil(t, "grow", 30*time.Second, func(n *apis.Network) bool {
				f, ok := nodeStatus(n, "full-0")
				sawJoining = sawJoining || ok && f.Joining
				return ok && !f.Joining && f.Phase == apis.NodeRunning && running(n) && n.Status.Message == ""
			})
			var admits map[string]int
			switch d := tc.drv.(type) {
			case *fullAdmitDriver:
				d.mu.Lock()
				admits = maps.Clone(d.admits)
				d.mu.Unlock()
			case *scaleDriver:
				d.mu.Lock()
				admits = maps.Clone(d.admits)
				d.mu.Unlock()
			}
			if admits["full-0"] != tc.want {
				t.Errorf("Admit called %d times for full-0, want %d (admits %v)", admits["full-0"], tc.want, admits)
			}
			if tc.want > 0 && !sawJoining {
				t.Error("full-0 was never Joining before it was admitted")
			}
			// Only a node that was Joining joins.
			if got := reasons(t, e, n, "NodeJoined"); got != min(tc.want, 1) {
				t.Errorf("%d NodeJoined events, want %d", got, min(tc.want, 1))
			}
		})
	}
}
