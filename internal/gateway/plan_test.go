package gateway

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
)

// keyedDriver is a chain whose ledger signs with keys its plan holds.
type keyedDriver struct {
	chain.Driver
	submits *int
}

func (d keyedDriver) LedgerWith(plan *chain.Plan) chain.Ledger {
	return keyedLedger{plan: plan, submits: d.submits}
}

type keyedLedger struct {
	chain.Ledger
	plan    *chain.Plan
	submits *int
}

func (l keyedLedger) Submit(_ context.Context, _ chain.PlannedNode, tx []byte) (chain.SubmitResult, error) {
	*l.submits++
	if string(tx) != "call" {
		return chain.SubmitResult{}, fmt.Errorf("%w: the body must be a call", chain.ErrMalformed)
	}
	if l.plan.Artifact("key") == nil {
		return chain.SubmitResult{}, errors.New("no key to sign with")
	}
	return chain.SubmitResult{Hash: "AB"}, nil
}

// TestPlanAndMalformed checks the gateway gives a keyed ledger the
// network's stored plan, and that a malformed transaction stops at the
// first node: no other would take it.
func TestPlanAndMalformed(t *testing.T) {
	submits := 0
	chain.Register("gateway-test-keyed", keyedDriver{submits: &submits})
	n := &apis.Network{Spec: apis.NetworkSpec{Chain: "gateway-test-keyed"}}
	n.Metadata.Name = "net"
	for _, name := range []string{"peer-0", "peer-1"} {
		n.Status.Nodes = append(n.Status.Nodes, apis.NodeStatus{Name: name, Phase: apis.NodeRunning, Endpoints: map[string]string{"listen": "grpcs://" + name}})
	}
	g := New()
	if _, err := g.Submit(t.Context(), n, []byte("call"), false); !errors.Is(err, ErrUnavailable) {
		t.Errorf("submit without the plan: %v; want ErrUnavailable", err)
	}
	g.PlanOf = func(_ context.Context, got *apis.Network) (*chain.Plan, error) {
		return &chain.Plan{ChainID: got.Metadata.Name, Artifacts: []runtime.File{{Path: "key", Data: []byte("k")}}}, nil
	}
	if rc, err := g.Submit(t.Context(), n, []byte("call"), false); err != nil || rc.Hash != "AB" {
		t.Errorf("submit with the plan: %+v, %v; want admitted", rc, err)
	}
	submits = 0
	if _, err := g.Submit(t.Context(), n, []byte("junk"), false); !errors.Is(err, chain.ErrMalformed) || submits != 1 {
		t.Errorf("a malformed transaction: %v after %d submissions; want ErrMalformed after 1", err, submits)
	}
}
