package explorer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/internal/store/sqlite"
)

// planDriver is a chain whose nodes are read with keys of the network's
// plan: its ledger answers only with the plan's channel, and only from
// its peers.
type planDriver struct {
	chain.Driver
	made *atomic.Int32
}

func (d planDriver) LedgerWith(plan *chain.Plan) chain.Ledger {
	d.made.Add(1)
	return planLedger{channel: plan.ChainID}
}

type planLedger struct {
	chain.Ledger
	channel string
}

func (l planLedger) check(node chain.PlannedNode) error {
	if l.channel != "trade" || node.Role != apis.RoleFull {
		return fmt.Errorf("%s: not readable with channel %q", node.Name, l.channel)
	}
	return nil
}

func (l planLedger) LatestHeight(_ context.Context, node chain.PlannedNode) (int64, error) {
	return 3, l.check(node)
}

func (l planLedger) Blocks(_ context.Context, node chain.PlannedNode, from, to int64) ([]chain.Block, error) {
	if err := l.check(node); err != nil {
		return nil, err
	}
	var out []chain.Block
	for h := from; h <= to; h++ {
		out = append(out, chain.Block{Height: h, Hash: fmt.Sprintf("%064X", h), Time: time.Unix(h, 0),
			Txs: []chain.Tx{{Hash: fmt.Sprintf("%064X", 100+h), Height: h, Type: "CONFIG"}}})
	}
	return out, nil
}

// TestPlanLedger indexes a network whose driver reads with the stored
// plan: from height 1, through its peer rather than its orderer, making
// the ledger of the plan once rather than at every step.
func TestPlanLedger(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "chaindock.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var made atomic.Int32
	chain.Register("explorer-test-plan", planDriver{made: &made})

	now := time.Now()
	n := &apis.Network{Spec: apis.NetworkSpec{Chain: "explorer-test-plan"}}
	n.Metadata.Name = "fab"
	n.Status.RunningSince = &now
	for _, s := range []apis.NodeStatus{
		{Name: "orderer-0", Role: apis.RoleValidator, Height: 3},
		{Name: "org1-peer-0", Role: apis.RoleFull, Height: 3},
	} {
		s.Phase, s.Endpoints = apis.NodeRunning, map[string]string{"listen": "grpcs://" + s.Name}
		n.Status.Nodes = append(n.Status.Nodes, s)
	}
	o, err := store.NetworkToObject(n)
	if err != nil {
		t.Fatal(err)
	}
	if o, err = st.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	plan, _ := json.Marshal(chain.Plan{ChainID: "trade"})
	if err := st.PutBlob(ctx, o.UID, store.PlanBlob, plan); err != nil {
		t.Fatal(err)
	}

	x := &Indexer{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Interval: 20 * time.Millisecond, Batch: 2}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- x.Run(rctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	var p Progress
	for time.Now().Before(deadline) {
		p, _ = x.Progress(o.UID)
		if p.IndexedHeight == 3 && p.ChainHeight == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.IndexedHeight != 3 || p.Lag != 0 || p.Error != "" {
		t.Fatalf("progress %+v, want the three blocks indexed", p)
	}
	for h := int64(1); h <= 3; h++ {
		b, err := st.BlockByHeight(ctx, o.UID, h)
		if err != nil || b.Hash != fmt.Sprintf("%064X", h) || b.NumTxs != 1 {
			t.Errorf("block %d: %+v, %v", h, b, err)
		}
	}
	// Two batches and the look that found the index caught up, with
	// one ledger made of the plan.
	if m := made.Load(); m != 1 {
		t.Errorf("the plan's ledger was made %d times, want once", m)
	}
}
