package explorer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
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
// its peers; its channel pair, of org2 alone, only from org2's peer, and
// its channel broken cannot be read at all.
type planDriver struct {
	chain.Driver
	made *atomic.Int32
}

func (d planDriver) LedgerWith(plan *chain.Plan) chain.Ledger {
	d.made.Add(1)
	return planLedger{channel: plan.ChainID, height: 3}
}

func (d planDriver) Channels(plan *chain.Plan) []string {
	if plan.ChainID != "trade" {
		return nil
	}
	return []string{"pair", "broken"}
}

func (d planDriver) ChannelLedger(_ *chain.Plan, ch string) (chain.Ledger, error) {
	if ch != "pair" {
		return nil, fmt.Errorf("no genesis block of channel %s", ch)
	}
	return planLedger{channel: ch, org: "org2", height: 5}, nil
}

type planLedger struct {
	chain.Ledger
	channel string
	org     string // the only member's peers, when set
	height  int64
}

func (l planLedger) check(node chain.PlannedNode) error {
	if l.channel != "trade" && l.channel != "pair" || node.Role != apis.RoleFull || l.org != "" && node.Organization != l.org {
		return fmt.Errorf("%s: not readable with channel %q", node.Name, l.channel)
	}
	return nil
}

func (l planLedger) LatestHeight(_ context.Context, node chain.PlannedNode) (int64, error) {
	return l.height, l.check(node)
}

// blockHash is block h's hash on channel ch.
func blockHash(ch string, h int64) string { return fmt.Sprintf("%X%060X", ch[:2], h) }

func (l planLedger) Blocks(_ context.Context, node chain.PlannedNode, from, to int64) ([]chain.Block, error) {
	if err := l.check(node); err != nil {
		return nil, err
	}
	var out []chain.Block
	for h := from; h <= to; h++ {
		out = append(out, chain.Block{Height: h, Hash: blockHash(l.channel, h), Time: time.Unix(h, 0),
			Txs: []chain.Tx{{Hash: fmt.Sprintf("%064X", 100+h), Height: h, Type: "CONFIG"}}})
	}
	return out, nil
}

// TestPlanLedger indexes a network whose driver reads with the stored
// plan: from height 1, through its peer rather than its orderer, making
// the ledger of the plan once rather than at every step; and each of its
// channels apart, under its own key, through a peer of its member, while
// a channel that cannot be read says why and holds the others up not.
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
		{Name: "org1-peer-0", Role: apis.RoleFull, Organization: "org1", Height: 3},
		{Name: "org2-peer-0", Role: apis.RoleFull, Organization: "org2", Height: 3},
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

	pair, broken := store.LedgerKey(o.UID, "pair"), store.LedgerKey(o.UID, "broken")
	deadline := time.Now().Add(10 * time.Second)
	var p, pp, bp Progress
	for time.Now().Before(deadline) {
		p, _ = x.Progress(o.UID)
		pp, _ = x.Progress(pair)
		bp, _ = x.Progress(broken)
		if p.IndexedHeight == 3 && p.ChainHeight == 3 && pp.IndexedHeight == 5 && bp.Error != "" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.IndexedHeight != 3 || p.Lag != 0 || p.Error != "" {
		t.Fatalf("progress %+v, want the three blocks indexed", p)
	}
	if pp.IndexedHeight != 5 || pp.ChainHeight != 5 || pp.Error != "" {
		t.Fatalf("progress of channel pair %+v, want its five blocks indexed", pp)
	}
	if !strings.Contains(bp.Error, "channel broken of fab: no genesis block") {
		t.Fatalf("progress of channel broken %+v, want why it cannot be read", bp)
	}
	for key, top := range map[string]int64{o.UID: 3, pair: 5} {
		ch := "trade"
		if key == pair {
			ch = "pair"
		}
		for h := int64(1); h <= top; h++ {
			b, err := st.BlockByHeight(ctx, key, h)
			if err != nil || b.Hash != blockHash(ch, h) || b.NumTxs != 1 {
				t.Errorf("block %d of %s: %+v, %v", h, key, b, err)
			}
		}
		if _, err := st.BlockByHeight(ctx, key, top+1); err == nil {
			t.Errorf("block %d of %s indexed, beyond its top", top+1, key)
		}
	}
	if h, err := st.IndexedHeight(ctx, broken); h != 0 || err != nil {
		t.Errorf("channel broken indexed up to %d (%v)", h, err)
	}
	// Two batches and the look that found the index caught up, with
	// one ledger made of the plan.
	if m := made.Load(); m != 1 {
		t.Errorf("the plan's ledger was made %d times, want once", m)
	}
}
