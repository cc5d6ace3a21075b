// Package gateway submits applications' transactions to a network and
// answers their queries through whichever node is healthy. A transaction's
// bytes may be handed to a second node when the first cannot be reached,
// never when it answered: the chain itself (nonces, the pool's cache)
// refuses the same bytes a second time, so a transaction is committed at
// most once.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

// Errors the gateway answers with.
var (
	// ErrUnavailable: no node of the network could be reached.
	ErrUnavailable = chain.ErrUnavailable
	// ErrNotSupported: the network's chain cannot be used by applications.
	ErrNotSupported = chain.ErrNotSupported
)

// RejectedError is an application's refusal of a transaction, at admission
// or in its block. It is final: sending the transaction again fails again.
type RejectedError struct {
	Hash   string
	Code   uint32
	Log    string
	Height int64 // set when the refusal was recorded in a block
}

func (e *RejectedError) Error() string {
	if e.Height > 0 {
		return fmt.Sprintf("transaction %s was refused in block %d (code %d): %s", e.Hash, e.Height, e.Code, e.Log)
	}
	return fmt.Sprintf("transaction %s was refused (code %d): %s", e.Hash, e.Code, e.Log)
}

// Receipt says where a submitted transaction is.
type Receipt struct {
	Hash string `json:"hash"`
	// Committed is true once the transaction is in a block; Height and
	// Index say where.
	Committed bool  `json:"committed"`
	Height    int64 `json:"height,omitempty"`
	Index     int   `json:"index,omitempty"`
	// Channel is the Fabric channel the transaction is on, when not
	// the network's own; Height and Index are that channel's.
	Channel string `json:"channel,omitempty"`
	Node    string `json:"node"`
	// Attempts counts the nodes the bytes were handed to.
	Attempts int `json:"attempts"`
}

// Gateway sends transactions and queries to networks' nodes.
type Gateway struct {
	// CommitTimeout bounds the wait for a transaction's block.
	CommitTimeout time.Duration
	// ResendAfter is how long a transaction may stay unseen before its
	// bytes are handed to another node (its first node may have died with
	// the transaction in its pool).
	ResendAfter time.Duration
	// Poll is the interval between looks for a committed transaction.
	Poll time.Duration
	// PlanOf returns a network's stored plan, for chains whose nodes
	// take only requests signed with the network's keys (a
	// chain.PlanLedger, such as Fabric); nil leaves those ledgers only
	// what needs no keys. The plan may be shared between calls: ledgers
	// only read it.
	PlanOf func(ctx context.Context, n *apis.Network) (*chain.Plan, error)

	next atomic.Uint64 // spreads submissions over the nodes
}

// New returns a gateway with its defaults.
func New() *Gateway {
	return &Gateway{CommitTimeout: 30 * time.Second, ResendAfter: 3 * time.Second, Poll: 50 * time.Millisecond}
}

func (g *Gateway) ledgerOf(ctx context.Context, n *apis.Network) (chain.Ledger, []chain.PlannedNode, error) {
	d, err := chain.Get(n.Spec.Chain)
	if err != nil {
		return nil, nil, err
	}
	l, ok := d.(chain.Ledger)
	if pl, withPlan := d.(chain.PlanLedger); !ok && withPlan {
		// Without the plan, a ledger read with the network's keys
		// answers only what needs none, such as its refusals.
		plan := &chain.Plan{ChainID: n.Status.ChainID}
		if g.PlanOf != nil {
			if plan, err = g.PlanOf(ctx, n); err != nil {
				return nil, nil, err
			}
		}
		l, ok = pl.LedgerWith(plan), true
	}
	if !ok {
		return nil, nil, fmt.Errorf("%w: network %s runs chain %s", ErrNotSupported, n.Metadata.Name, n.Spec.Chain)
	}
	nodes := chain.ReadyNodes(n)
	if len(nodes) == 0 {
		return nil, nil, fmt.Errorf("%w: none of %s's nodes is running", ErrUnavailable, n.Metadata.Name)
	}
	return l, nodes, nil
}

// rotate starts the node list at the next node in turn.
func (g *Gateway) rotate(nodes []chain.PlannedNode) []chain.PlannedNode {
	i := int(g.next.Add(1) % uint64(len(nodes))) //nolint:gosec // less than len(nodes)
	return append(append([]chain.PlannedNode(nil), nodes[i:]...), nodes[:i]...)
}

// order is the nodes in the order tx is offered to them: one sender's
// transactions start at the same node, where the ledger wants them in
// order per sender; others start at the next node in turn.
func (g *Gateway) order(ledger chain.Ledger, nodes []chain.PlannedNode, tx []byte) []chain.PlannedNode {
	s, ok := ledger.(chain.TxSenders)
	if !ok {
		return g.rotate(nodes)
	}
	sender, ok := s.TxSender(tx)
	if !ok {
		return g.rotate(nodes)
	}
	// Sorted by name, so that the start stays while heights change.
	nodes = slices.SortedFunc(slices.Values(nodes), func(a, b chain.PlannedNode) int { return strings.Compare(a.Name, b.Name) })
	h := fnv.New32a()
	_, _ = h.Write([]byte(sender))
	i := int(h.Sum32() % uint32(len(nodes))) //nolint:gosec // len(nodes) > 0 and small
	return append(nodes[i:], nodes[:i]...)
}

// Submit hands tx to a node of n. With commit it returns once the
// transaction is in a block (or refused there); otherwise once a node has
// admitted it to its pool.
func (g *Gateway) Submit(ctx context.Context, n *apis.Network, tx []byte, commit bool) (Receipt, error) {
	ledger, nodes, err := g.ledgerOf(ctx, n)
	if err != nil {
		return Receipt{}, err
	}
	nodes = g.order(ledger, nodes, tx)
	rc, next, err := g.handOver(ctx, ledger, nodes, 0, tx)
	if err != nil || !commit {
		return rc, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.CommitTimeout)
	defer cancel()
	resendAfter := g.ResendAfter
	if r, ok := ledger.(chain.Resender); ok {
		resendAfter = max(resendAfter, r.ResendAfter())
	}
	handed := time.Now()
	for {
		// One node answers each look: the one that admitted the
		// transaction, which has it as soon as it is committed, or when it
		// cannot be reached the next in turn. Asking every node at every
		// look would multiply the load on the nodes by their number.
		for i := range nodes {
			node := nodes[(next-1+i)%len(nodes)]
			t, err := ledger.Tx(ctx, node, rc.Hash)
			if errors.Is(err, chain.ErrTxNotFound) {
				break // not committed yet
			}
			if err != nil {
				continue // the node is down: ask the next
			}
			rc.Committed, rc.Height, rc.Index, rc.Channel = true, t.Height, t.Index, t.Channel
			if t.Code != 0 {
				return rc, &RejectedError{Hash: rc.Hash, Code: t.Code, Log: t.Log, Height: t.Height}
			}
			return rc, nil
		}
		if time.Since(handed) > resendAfter && next < len(nodes) {
			// The transaction has not shown up: its node may have lost it.
			// The same bytes elsewhere commit at most once.
			var again Receipt
			again, next, err = g.handOver(ctx, ledger, nodes, next, tx)
			if err == nil {
				rc.Node = again.Node
			}
			rc.Attempts += again.Attempts
			handed = time.Now()
		}
		select {
		case <-ctx.Done():
			return rc, fmt.Errorf("transaction %s was admitted by %s but is not in a block after %s: %w", rc.Hash, rc.Node, g.CommitTimeout, ctx.Err())
		case <-time.After(g.Poll):
		}
	}
}

// final reports whether err is one no node of the chain would answer
// otherwise: asking the next is no use.
func final(err error) bool {
	return errors.Is(err, ErrNotSupported) || errors.Is(err, chain.ErrMalformed) || errors.Is(err, chain.ErrNotPermitted)
}

// handOver gives tx to nodes[from:] in turn until one answers; it returns
// the index after that node.
func (g *Gateway) handOver(ctx context.Context, ledger chain.Ledger, nodes []chain.PlannedNode, from int, tx []byte) (Receipt, int, error) {
	var rc Receipt
	var lastErr error
	var refused *RejectedError
	for i := from; i < len(nodes); i++ {
		rc.Attempts++
		res, err := ledger.Submit(ctx, nodes[i], tx)
		if final(err) {
			return rc, len(nodes), err
		}
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if res.Code != 0 {
			// A node's admission check reads its own state, which may be
			// a block behind the others' (a node just restarted): a
			// transaction that follows one just committed can look out of
			// order there. Another node may admit it; the refusal stands
			// only when no node does.
			if refused == nil {
				refused = &RejectedError{Hash: res.Hash, Code: res.Code, Log: res.Log}
				rc.Hash, rc.Node = res.Hash, nodes[i].Name
			}
			continue
		}
		rc.Hash, rc.Node = res.Hash, nodes[i].Name
		return rc, i + 1, nil
	}
	if refused != nil {
		return rc, len(nodes), refused
	}
	return rc, len(nodes), fmt.Errorf("%w: %v", ErrUnavailable, lastErr) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
}

// Query asks the application of n through the first node that answers
// from a state at least minHeight high (0: any), so that a caller reads
// its own writes: pass the height of the transaction's receipt. Nodes
// behind are skipped; if all are, it waits for one, within CommitTimeout.
func (g *Gateway) Query(ctx context.Context, n *apis.Network, path string, data []byte, minHeight int64) (chain.QueryResult, string, error) {
	ledger, nodes, err := g.ledgerOf(ctx, n)
	if err != nil {
		return chain.QueryResult{}, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, g.CommitTimeout)
	defer cancel()
	var lastErr error
	for {
		behind := false
		for _, node := range g.rotate(nodes) {
			res, err := ledger.Query(ctx, node, path, data)
			if final(err) {
				return chain.QueryResult{}, "", err
			}
			if err != nil {
				lastErr = err
				continue
			}
			if res.Height >= minHeight {
				return res, node.Name, nil
			}
			behind = true
			lastErr = fmt.Errorf("%s answers from height %d, below %d", node.Name, res.Height, minHeight)
		}
		// Waiting helps only a node that answered but is behind.
		if !behind {
			return chain.QueryResult{}, "", fmt.Errorf("%w: %v", ErrUnavailable, lastErr) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
		}
		select {
		case <-ctx.Done():
			return chain.QueryResult{}, "", fmt.Errorf("%w: %v", ErrUnavailable, lastErr) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
		case <-time.After(g.Poll):
		}
	}
}

// VerifiedAppHash returns the application hash in the signed header of
// height from the first node that has it, waiting a little for a height
// the chain is about to reach.
func (g *Gateway) VerifiedAppHash(ctx context.Context, n *apis.Network, height int64) ([]byte, string, error) {
	ledger, nodes, err := g.ledgerOf(ctx, n)
	if err != nil {
		return nil, "", err
	}
	hv, ok := ledger.(chain.HeaderVerifier)
	if !ok {
		return nil, "", ErrNotSupported
	}
	ctx, cancel := context.WithTimeout(ctx, g.CommitTimeout)
	defer cancel()
	var lastErr error
	for {
		behind := false
		for _, node := range nodes {
			latest, err := ledger.LatestHeight(ctx, node)
			if err != nil {
				lastErr = err
				continue
			}
			if latest < height {
				behind = true
				lastErr = fmt.Errorf("%s is at height %d", node.Name, latest)
				continue
			}
			h, err := hv.VerifiedAppHash(ctx, node, height)
			if err == nil {
				return h, node.Name, nil
			}
			lastErr = err
		}
		// Waiting helps only while a node has yet to reach the height.
		if !behind {
			return nil, "", fmt.Errorf("%w: no node has a verified header of block %d: %v", ErrUnavailable, height, lastErr) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
		}
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("%w: no node has a verified header of block %d: %v", ErrUnavailable, height, lastErr) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
		case <-time.After(g.Poll):
		}
	}
}
