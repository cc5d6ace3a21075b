package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

// senderLedger reads a transaction's sender from its first byte.
type senderLedger struct{ chain.Ledger }

func (senderLedger) TxSender(tx []byte) (string, bool) {
	if len(tx) == 0 {
		return "", false
	}
	return fmt.Sprint("account-", tx[0]), true
}

// plainLedger has no notion of senders.
type plainLedger struct{ chain.Ledger }

func (plainLedger) LatestHeight(context.Context, chain.PlannedNode) (int64, error) { return 0, nil }

func TestOneSendersTransactionsStartAtOneNode(t *testing.T) {
	g := New()
	nodes := []chain.PlannedNode{{Name: "validator-2"}, {Name: "validator-0"}, {Name: "validator-1"}}
	firsts := map[string]bool{}
	for sender := range byte(16) {
		first := g.order(senderLedger{}, nodes, []byte{sender, 1})[0].Name
		for i := range 5 {
			// Heights change the order ReadyNodes gives; the start stays.
			shuffled := []chain.PlannedNode{nodes[(i+1)%3], nodes[i%3], nodes[(i+2)%3]}
			got := g.order(senderLedger{}, shuffled, []byte{sender, byte(i)})
			if got[0].Name != first || len(got) != 3 {
				t.Fatalf("sender %d: transaction %d starts at %s of %v, the one before at %s", sender, i, got[0].Name, got, first)
			}
		}
		firsts[first] = true
	}
	if len(firsts) < 2 {
		t.Errorf("16 senders all start at %v: senders are not spread over the nodes", firsts)
	}
	// Without senders, or with one not readable, submissions go round.
	for _, l := range []chain.Ledger{plainLedger{}, senderLedger{}} {
		seen := map[string]bool{}
		for range 3 {
			seen[g.order(l, nodes, nil)[0].Name] = true
		}
		if len(seen) != 3 {
			t.Errorf("%T: three submissions started at %v, want every node in turn", l, seen)
		}
	}
}

// planDriver is a chain whose ledger is read with the network's plan,
// and whose applications the gateway cannot serve.
type planDriver struct {
	chain.Driver
	submits *int
}

func (d planDriver) LedgerWith(plan *chain.Plan) chain.Ledger {
	return refusingLedger{chainID: plan.ChainID, submits: d.submits}
}

type refusingLedger struct {
	chain.Ledger
	chainID string
	submits *int
}

func (l refusingLedger) Submit(context.Context, chain.PlannedNode, []byte) (chain.SubmitResult, error) {
	*l.submits++
	return chain.SubmitResult{}, fmt.Errorf("%w: channel %s takes chaincode transactions", chain.ErrNotSupported, l.chainID)
}

func (l refusingLedger) Query(context.Context, chain.PlannedNode, string, []byte) (chain.QueryResult, error) {
	return chain.QueryResult{}, fmt.Errorf("%w: channel %s answers chaincode queries", chain.ErrNotSupported, l.chainID)
}

// TestNotSupportedStops checks a ledger's refusal of what its chain does
// not do reaches the caller as ErrNotSupported, with its reason, from the
// first node: no other node would answer otherwise.
func TestNotSupportedStops(t *testing.T) {
	submits := 0
	chain.Register("gateway-test-plan", planDriver{submits: &submits})
	n := &apis.Network{Spec: apis.NetworkSpec{Chain: "gateway-test-plan"}}
	n.Metadata.Name = "net"
	n.Status.ChainID = "trade"
	for _, name := range []string{"peer-0", "peer-1"} {
		n.Status.Nodes = append(n.Status.Nodes, apis.NodeStatus{Name: name, Phase: apis.NodeRunning, Endpoints: map[string]string{"listen": "grpcs://" + name}})
	}
	g := New()
	_, err := g.Submit(t.Context(), n, []byte("tx"), true)
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "channel trade takes chaincode transactions") || submits != 1 {
		t.Errorf("submit: %v after %d submissions, want ErrNotSupported with its reason after 1", err, submits)
	}
	_, _, err = g.Query(t.Context(), n, "/x", nil, 0)
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "channel trade") {
		t.Errorf("query: %v, want ErrNotSupported with its reason", err)
	}
}

// forbiddingDriver is a plan-read chain whose ledger refuses every query
// for the caller, as a Fabric channel of other organisations does.
type forbiddingDriver struct {
	chain.Driver
	queries *int
}

func (d forbiddingDriver) LedgerWith(*chain.Plan) chain.Ledger {
	return forbiddingLedger{queries: d.queries}
}

type forbiddingLedger struct {
	chain.Ledger
	queries *int
}

func (l forbiddingLedger) Query(context.Context, chain.PlannedNode, string, []byte) (chain.QueryResult, error) {
	*l.queries++
	return chain.QueryResult{}, fmt.Errorf("%w: the caller belongs to no member organisation of channel pair", chain.ErrNotPermitted)
}

// TestNotPermittedQueryStops: a query the caller may not make reaches it
// as ErrNotPermitted from the first node, as a submission does, not as an
// unreachable network after every node was asked.
func TestNotPermittedQueryStops(t *testing.T) {
	queries := 0
	chain.Register("gateway-test-forbidding", forbiddingDriver{queries: &queries})
	n := &apis.Network{Spec: apis.NetworkSpec{Chain: "gateway-test-forbidding"}}
	n.Metadata.Name = "net"
	n.Status.ChainID = "trade"
	for _, name := range []string{"peer-0", "peer-1"} {
		n.Status.Nodes = append(n.Status.Nodes, apis.NodeStatus{Name: name, Phase: apis.NodeRunning, Endpoints: map[string]string{"listen": "grpcs://" + name}})
	}
	_, _, err := New().Query(t.Context(), n, "/pair/notary/Get", nil, 0)
	if !errors.Is(err, chain.ErrNotPermitted) || !strings.Contains(err.Error(), "channel pair") || queries != 1 {
		t.Errorf("query: %v after %d queries, want ErrNotPermitted with its reason after 1", err, queries)
	}
}

// slowDriver is a plan-read chain whose ledger admits every transaction
// and commits none, and asks the gateway to wait resend before handing
// one to another node.
type slowDriver struct {
	chain.Driver
	resend  time.Duration
	submits *atomic.Int32
}

func (d slowDriver) LedgerWith(*chain.Plan) chain.Ledger {
	return slowLedger{resend: d.resend, submits: d.submits}
}

type slowLedger struct {
	chain.Ledger
	resend  time.Duration
	submits *atomic.Int32
}

func (l slowLedger) Submit(context.Context, chain.PlannedNode, []byte) (chain.SubmitResult, error) {
	l.submits.Add(1)
	return chain.SubmitResult{Hash: "AB"}, nil
}

func (l slowLedger) Tx(context.Context, chain.PlannedNode, string) (*chain.Tx, error) {
	return nil, chain.ErrTxNotFound
}

func (l slowLedger) ResendAfter() time.Duration { return l.resend }

// TestResenderWaits: a ledger that is a chain.Resender has the gateway
// wait as long as it says before handing a transaction to the next node,
// and no longer than the gateway's own wait when that is longer.
func TestResenderWaits(t *testing.T) {
	for _, c := range []struct {
		resend time.Duration
		want   int32
	}{{time.Hour, 1}, {time.Millisecond, 2}} {
		var submits atomic.Int32
		name := fmt.Sprintf("gateway-test-slow-%s", c.resend)
		chain.Register(name, slowDriver{resend: c.resend, submits: &submits})
		n := &apis.Network{Spec: apis.NetworkSpec{Chain: name}}
		n.Metadata.Name = "net"
		for _, node := range []string{"peer-0", "peer-1"} {
			n.Status.Nodes = append(n.Status.Nodes, apis.NodeStatus{Name: node, Phase: apis.NodeRunning, Endpoints: map[string]string{"listen": "grpcs://" + node}})
		}
		g := New()
		g.CommitTimeout, g.ResendAfter, g.Poll = 2*time.Second, 100*time.Millisecond, 10*time.Millisecond
		if _, err := g.Submit(t.Context(), n, []byte("tx"), true); err == nil {
			t.Fatalf("resend %s: a transaction never committed was reported committed", c.resend)
		}
		if got := submits.Load(); got != c.want {
			t.Errorf("ledger resend %s, gateway %s: handed to %d nodes in %s, want %d", c.resend, g.ResendAfter, got, g.CommitTimeout, c.want)
		}
	}
}
