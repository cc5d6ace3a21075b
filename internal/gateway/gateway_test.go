package gateway

import (
	"context"
	"fmt"
	"testing"

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
