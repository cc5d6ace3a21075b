// Package explorer indexes the blocks and transactions of every network
// into the store, so that they can be listed and found by height, block
// hash or transaction hash without asking a node.
package explorer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/store"
)

// Defaults of the indexer.
const (
	DefaultInterval = 500 * time.Millisecond
	DefaultBatch    = 100
	// scanInterval is how often the indexer looks for networks to follow.
	scanInterval = time.Second
)

// Indexer follows each network's chain from a node that is Running and
// writes its blocks into the store, from the first un-indexed height on:
// it resumes where it stopped after a restart, and writes are idempotent,
// so a batch written twice after a crash is harmless. A network whose
// driver keeps more ledgers (chain.ChannelLedgers: Fabric's channels of
// some organisations) has each indexed apart, under its store.LedgerKey.
type Indexer struct {
	Store store.Store
	Log   *slog.Logger
	// Interval is the pause when the index has caught up with the chain.
	Interval time.Duration
	// Batch is the most blocks read and written at once.
	Batch int

	mu      sync.Mutex
	follows map[string]*follow // by network UID
}

// Progress is how far the index of a ledger of a network is.
type Progress struct {
	IndexedHeight int64     `json:"indexedHeight"`
	ChainHeight   int64     `json:"chainHeight"`
	Lag           int64     `json:"lag"`
	UpdatedAt     time.Time `json:"updatedAt,omitzero"`
	Error         string    `json:"error,omitempty"`
}

type follow struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	p      map[string]*Progress // by ledger key

	// ledgers are those made of the network's plan, for a PlanLedger,
	// and when; only the follow's goroutine uses them.
	ledgers   []keyedLedger
	ledgersAt time.Time
	// rested says until when a ledger that has caught up is left alone
	// while others catch up in rounds without a pause.
	rested map[string]time.Time
}

// keyedLedger is a ledger of a network and the key its index is kept
// under; err says why the ledger could not be made.
type keyedLedger struct {
	key    string
	ledger chain.Ledger
	err    error
}

// planTTL is how long a ledger made of a network's plan is used before
// the plan is read again (a scaled network has a new one).
const planTTL = 30 * time.Second

func (f *follow) set(key string, fn func(p *Progress)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.p[key]
	if p == nil {
		p = &Progress{}
		f.p[key] = p
	}
	fn(p)
	p.Lag = max(0, p.ChainHeight-p.IndexedHeight)
	p.UpdatedAt = time.Now().UTC()
}

// Progress reports how far the index of the ledger with key (see
// store.LedgerKey) is, when this indexer follows it.
func (x *Indexer) Progress(key string) (Progress, bool) {
	uid, _, _ := strings.Cut(key, "/")
	x.mu.Lock()
	f := x.follows[uid]
	x.mu.Unlock()
	if f == nil {
		return Progress{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.p[key]
	if !ok {
		return Progress{}, false
	}
	return *p, true
}

// Run follows every indexable network until ctx ends.
func (x *Indexer) Run(ctx context.Context) error {
	if x.Interval == 0 {
		x.Interval = DefaultInterval
	}
	if x.Batch == 0 {
		x.Batch = DefaultBatch
	}
	x.mu.Lock()
	x.follows = map[string]*follow{}
	x.mu.Unlock()
	t := time.NewTicker(scanInterval)
	defer t.Stop()
	for {
		x.scan(ctx)
		select {
		case <-ctx.Done():
			x.stopAll()
			return nil
		case <-t.C:
		}
	}
}

// Follows reports whether a network can be indexed: its chain reads blocks
// and it has been deployed.
func Follows(n *apis.Network) bool {
	d, err := chain.Get(n.Spec.Chain)
	if err != nil {
		return false
	}
	_, ok := d.(chain.Ledger)
	_, withPlan := d.(chain.PlanLedger)
	return (ok || withPlan) && n.Metadata.DeletionTimestamp == nil && n.Status.RunningSince != nil
}

// ledgersOf are the ledgers of network n with uid: the driver itself, or
// for a driver that reads with the network's keys, the one it makes of
// the stored plan, then those of the plan's other channels.
func (x *Indexer) ledgersOf(ctx context.Context, f *follow, n *apis.Network, uid string) ([]keyedLedger, error) {
	d, err := chain.Get(n.Spec.Chain)
	if err != nil {
		return nil, err
	}
	if l, ok := d.(chain.Ledger); ok {
		return []keyedLedger{{key: uid, ledger: l}}, nil
	}
	pl, ok := d.(chain.PlanLedger)
	if !ok {
		return nil, fmt.Errorf("chain %s cannot be read", n.Spec.Chain)
	}
	if f.ledgers != nil && time.Since(f.ledgersAt) < planTTL {
		return f.ledgers, nil
	}
	b, err := x.Store.GetBlob(ctx, uid, store.PlanBlob)
	if err != nil {
		return nil, fmt.Errorf("plan of %s: %w", n.Metadata.Name, err)
	}
	var plan chain.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		return nil, fmt.Errorf("decode plan of %s: %w", n.Metadata.Name, err)
	}
	ls := []keyedLedger{{key: uid, ledger: pl.LedgerWith(&plan)}}
	if cl, ok := d.(chain.ChannelLedgers); ok {
		for _, ch := range cl.Channels(&plan) {
			l, err := cl.ChannelLedger(&plan, ch)
			if err != nil {
				err = fmt.Errorf("channel %s of %s: %w", ch, n.Metadata.Name, err)
			}
			ls = append(ls, keyedLedger{key: store.LedgerKey(uid, ch), ledger: l, err: err})
		}
	}
	f.ledgers, f.ledgersAt = ls, time.Now()
	return ls, nil
}

func (x *Indexer) scan(ctx context.Context) {
	objs, err := x.Store.List(ctx, apis.KindNetwork)
	if err != nil {
		x.Log.Warn("explorer: list networks", "err", err)
		return
	}
	want := map[string]string{}
	for _, o := range objs {
		n, err := store.ObjectToNetwork(o)
		if err != nil || !Follows(n) {
			continue
		}
		want[n.Metadata.UID] = n.Metadata.Name
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for uid, f := range x.follows {
		if _, ok := want[uid]; !ok {
			f.cancel()
			delete(x.follows, uid)
		}
	}
	for uid, name := range want {
		if _, ok := x.follows[uid]; ok {
			continue
		}
		fctx, cancel := context.WithCancel(ctx)
		f := &follow{cancel: cancel, done: make(chan struct{}), p: map[string]*Progress{}}
		x.follows[uid] = f
		go func() {
			defer close(f.done)
			x.follow(fctx, f, uid, name)
		}()
	}
}

func (x *Indexer) stopAll() {
	x.mu.Lock()
	fs := x.follows
	x.follows = map[string]*follow{}
	x.mu.Unlock()
	for _, f := range fs {
		f.cancel()
	}
	for _, f := range fs {
		<-f.done
	}
}

func (x *Indexer) follow(ctx context.Context, f *follow, uid, name string) {
	log := x.Log.With("network", name)
	for {
		busy := x.round(ctx, f, uid, name, log)
		if ctx.Err() != nil {
			return
		}
		if !busy {
			select {
			case <-ctx.Done():
				return
			case <-time.After(x.Interval):
			}
		}
	}
}

// round indexes one batch of each ledger of the network; it reports
// whether one of them has more to index at once, being behind with no
// error.
func (x *Indexer) round(ctx context.Context, f *follow, uid, name string, log *slog.Logger) bool {
	fail := func(key string, err error) {
		f.set(key, func(p *Progress) { p.Error = err.Error() })
		log.Debug("explorer: index", "ledger", key, "err", err)
	}
	n, err := x.network(ctx, uid, name)
	var ledgers []keyedLedger
	if err == nil {
		ledgers, err = x.ledgersOf(ctx, f, n, uid)
	}
	if err != nil {
		fail(uid, err)
		return false
	}
	nodes := chain.ReadyNodes(n)
	busy := false
	for _, l := range ledgers {
		if time.Now().Before(f.rested[l.key]) {
			continue
		}
		err := l.err
		caughtUp := false
		switch {
		case err != nil:
		case len(nodes) == 0:
			err = fmt.Errorf("no node of %s is running", name)
		default:
			caughtUp, err = x.step(ctx, f, l.key, l.ledger, nodes)
		}
		if ctx.Err() != nil {
			return false
		}
		if err != nil {
			fail(l.key, err)
			continue
		}
		if caughtUp {
			if f.rested == nil {
				f.rested = map[string]time.Time{}
			}
			// Half the pause, so that after a pause of its own it is
			// asked again.
			f.rested[l.key] = time.Now().Add(x.Interval / 2)
		}
		busy = busy || !caughtUp
	}
	return busy
}

// network is the stored network name, when it still has uid.
func (x *Indexer) network(ctx context.Context, uid, name string) (*apis.Network, error) {
	o, err := x.Store.Get(ctx, apis.KindNetwork, name)
	if err != nil {
		return nil, err
	}
	n, err := store.ObjectToNetwork(o)
	if err != nil {
		return nil, err
	}
	if n.Metadata.UID != uid {
		return nil, fmt.Errorf("network %s was replaced", name)
	}
	return n, nil
}

// step indexes one batch of the ledger kept under key from the first of
// nodes that answers; it reports whether the index has caught up.
func (x *Indexer) step(ctx context.Context, f *follow, key string, ledger chain.Ledger, nodes []chain.PlannedNode) (bool, error) {
	indexed, err := x.Store.IndexedHeight(ctx, key)
	if err != nil {
		return false, err
	}
	var lastErr error
	for _, node := range nodes {
		latest, err := ledger.LatestHeight(ctx, node)
		if err != nil {
			lastErr = err
			continue
		}
		f.set(key, func(p *Progress) { p.ChainHeight, p.IndexedHeight = latest, indexed })
		if latest <= indexed {
			f.set(key, func(p *Progress) { p.Error = "" })
			return true, nil
		}
		to := min(latest, indexed+int64(x.Batch))
		blocks, err := ledger.Blocks(ctx, node, indexed+1, to)
		if err != nil {
			lastErr = err
			continue
		}
		rows := make([]store.Block, 0, len(blocks))
		for _, b := range blocks {
			rows = append(rows, toRow(key, b))
		}
		if err := x.Store.PutBlocks(ctx, rows); err != nil {
			return false, err
		}
		f.set(key, func(p *Progress) { p.IndexedHeight, p.Error = to, "" })
		return to >= latest, nil
	}
	return false, lastErr
}

func toRow(key string, b chain.Block) store.Block {
	row := store.Block{
		NetworkUID: key, Height: b.Height, Hash: b.Hash, Time: b.Time,
		Proposer: b.Proposer, AppHash: b.AppHash, NumTxs: len(b.Txs),
	}
	for _, t := range b.Txs {
		row.Txs = append(row.Txs, store.Tx{
			NetworkUID: key, Hash: t.Hash, Height: t.Height, Index: t.Index, Time: b.Time,
			Code: t.Code, Log: t.Log, Type: t.Type, Data: t.Data, Events: toEvents(t.Events),
		})
	}
	return row
}

func toEvents(events []chain.Event) []store.Event {
	var out []store.Event
	for _, e := range events {
		se := store.Event{Type: e.Type, Contract: e.Contract}
		for _, a := range e.Attributes {
			se.Attributes = append(se.Attributes, store.EventAttribute{Key: a.Key, Value: a.Value})
		}
		out = append(out, se)
	}
	return out
}
