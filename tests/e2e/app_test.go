package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/pkg/apptx"
	"github.com/chaindock/chaindock/tests/framework"
)

type account struct {
	pub   ed25519.PublicKey
	priv  ed25519.PrivateKey
	nonce uint64
}

func newAccount(t *testing.T) *account {
	t.Helper()
	pub, priv, err := apptx.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &account{pub: pub, priv: priv}
}

func (a *account) addr() string { return apptx.Address(a.pub) }

func (a *account) sign(t *testing.T, tx *apptx.Tx) []byte {
	t.Helper()
	if err := apptx.Sign(tx, a.priv); err != nil {
		t.Fatal(err)
	}
	b, err := apptx.Encode(tx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// submitted is the gateway's answer to one transaction.
type submitted struct {
	status  int
	receipt map[string]any
	problem api.Problem
}

func submitTx(ctx context.Context, c *client.Client, network string, tx []byte) (submitted, error) {
	resp, err := c.Raw(ctx, http.MethodPost, "/api/v1/networks/"+network+"/transactions", tx, "application/json")
	var ce *client.Error
	if errors.As(err, &ce) {
		return submitted{status: ce.Status, problem: ce.Problem}, nil
	}
	if err != nil {
		return submitted{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s := submitted{status: resp.StatusCode}
	if resp.StatusCode < 300 {
		err = json.Unmarshal(b, &s.receipt)
		if h, ok := s.receipt["height"].(float64); ok {
			for {
				old := lastCommitted.Load()
				if int64(h) <= old || lastCommitted.CompareAndSwap(old, int64(h)) {
					break
				}
			}
		}
	} else {
		err = json.Unmarshal(b, &s.problem)
	}
	if err != nil {
		return s, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return s, nil
}

// lastCommitted is the highest block a submitted transaction went into;
// queries read from at least there, so they see what was written.
var lastCommitted atomic.Int64

func getJSON(ctx context.Context, c *client.Client, path string, out any) error {
	return c.Do(ctx, http.MethodGet, path, nil, "", out)
}

func query(t *testing.T, c *client.Client, network, path string, data any, out any) api.QueryAnswer {
	t.Helper()
	d, _ := json.Marshal(data)
	var ans api.QueryAnswer
	if err := getJSON(t.Context(), c, "/api/v1/networks/"+network+"/query?path="+url.QueryEscape(path)+"&data="+url.QueryEscape(string(d))+fmt.Sprintf("&minHeight=%d", lastCommitted.Load()), &ans); err != nil {
		t.Fatalf("query %s: %v", path, err)
	}
	if out != nil && ans.Code == 0 {
		if err := json.Unmarshal(ans.Value, out); err != nil {
			t.Fatalf("query %s: %v in %s", path, err, ans.Value)
		}
	}
	return ans
}

// TestApplication is the application layer end to end on four validators
// running ChainDock's application: notarisations proved against signed
// headers, assets issued and transferred, bad transactions refused with
// no state change, every acknowledged transaction on chain once after a
// validator is killed mid-load, and the explorer finding everything after
// the server restarts.
func TestApplication(t *testing.T) {
	binDir, dataDir := setup(t)
	if _, err := os.Stat(filepath.Join(binDir, "chaindock-app")); err != nil {
		t.Skipf("%s has no chaindock-app: run `make build`", binDir)
	}
	keepCommittedFloor(t)
	ctx := t.Context()
	args := []string{"--port-range", "31800-31899", "--probe-interval", "500ms", "--rate-limit", "0"}
	srv := startServer(t, binDir, dataDir, args...)
	c := srv.Client
	const name = "apps"
	spec := `apiVersion: chaindock/v1
kind: Network
metadata: {name: apps}
spec:
  chain: cometbft
  runtime: process
  validators: 4
  consensus: {timeoutCommit: 200ms}
  cometbft: {app: chaindock, snapshotInterval: 20}
`
	if _, err := c.CreateNetwork(ctx, []byte(spec)); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.AllAtLeast(ctx, c, name, 2, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	chainID := "chaindock-" + name
	base := "/api/v1/networks/" + name

	// Notarise 1,000 documents from 50 accounts, 20 each, in parallel.
	const accounts, perAccount = 50, 20
	type notarised struct {
		doc, tx string
		owner   string
	}
	var mu sync.Mutex
	var docs []notarised
	var wg sync.WaitGroup
	errs := make(chan error, accounts)
	for i := range accounts {
		acct := newAccount(t)
		wg.Go(func() {
			for j := range perAccount {
				sum := sha256.Sum256(fmt.Appendf(nil, "document %d of account %d", j, i))
				doc := hex.EncodeToString(sum[:])
				acct.nonce++
				tx := acct.sign(t, apptx.Notarize(chainID, acct.pub, acct.nonce, doc, []string{"contract"}, map[string]string{"n": fmt.Sprint(j)}))
				s, err := submitTx(ctx, c, name, tx)
				if err != nil || s.status != http.StatusOK {
					errs <- fmt.Errorf("notarise %s: %v %+v", doc, err, s) //nolint:errorlint // the error is told, not matched
					return
				}
				mu.Lock()
				docs = append(docs, notarised{doc: doc, tx: s.receipt["hash"].(string), owner: acct.addr()})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(docs) != accounts*perAccount {
		t.Fatalf("notarised %d documents, want %d", len(docs), accounts*perAccount)
	}
	// Each is proved against the validators' signed header.
	for _, d := range docs {
		var p api.NotarisationProof
		if err := getJSON(ctx, c, base+"/notary/"+d.doc, &p); err != nil {
			t.Fatalf("proof of %s: %v", d.doc, err)
		}
		if !p.Verified || p.Record == nil || p.Record.Owner != d.owner || p.Record.TxHash != d.tx || p.HeaderHeight != p.Record.Height+1 {
			t.Fatalf("proof of %s: %+v", d.doc, p)
		}
		appHash, _ := hex.DecodeString(p.AppHash)
		if err := apptx.VerifyProof(p.Proof, appHash); err != nil {
			t.Fatalf("the client's own check of %s: %v", d.doc, err)
		}
	}
	// A document nobody notarised has no proof.
	if err := getJSON(ctx, c, base+"/notary/"+hex.EncodeToString(make([]byte, 32)), nil); !client.IsNotFound(err) {
		t.Fatalf("proof of an unknown document: %v", err)
	}

	// Assets: issue, transfer, balances and history.
	alice, bob := newAccount(t), newAccount(t)
	alice.nonce++
	if s, err := submitTx(ctx, c, name, alice.sign(t, apptx.Issue(chainID, alice.pub, alice.nonce, "CDT", 1000))); err != nil || s.status != http.StatusOK {
		t.Fatalf("issue: %v %+v", err, s)
	}
	alice.nonce++
	transfer := alice.sign(t, apptx.Transfer(chainID, alice.pub, alice.nonce, "CDT", bob.addr(), 300))
	first, err := submitTx(ctx, c, name, transfer)
	if err != nil || first.status != http.StatusOK {
		t.Fatalf("transfer: %v %+v", err, first)
	}
	balance := func(a *account) uint64 {
		var b apptx.Balance
		if ans := query(t, c, name, "/asset/balance", map[string]string{"address": a.addr(), "asset": "CDT"}, &b); ans.Code != 0 {
			t.Fatalf("balance of %s: %+v", a.addr(), ans)
		}
		return b.Amount
	}
	if a, b := balance(alice), balance(bob); a != 700 || b != 300 {
		t.Fatalf("balances after the transfer: alice %d bob %d", a, b)
	}

	// Refused transactions: each names its reason and changes nothing.
	var before apptx.Account
	query(t, c, name, "/account", map[string]string{"address": alice.addr()}, &before)
	overspend := alice.sign(t, apptx.Transfer(chainID, alice.pub, alice.nonce+1, "CDT", bob.addr(), 701))
	unsigned, _ := apptx.Encode(apptx.Transfer(chainID, alice.pub, alice.nonce+1, "CDT", bob.addr(), 1))
	otherChain := alice.sign(t, apptx.Transfer("another-chain", alice.pub, alice.nonce+1, "CDT", bob.addr(), 1))
	sameNonce := alice.sign(t, apptx.Transfer(chainID, alice.pub, alice.nonce, "CDT", bob.addr(), 2))
	forged := bytes.Replace(alice.sign(t, apptx.Transfer(chainID, alice.pub, alice.nonce+1, "CDT", bob.addr(), 1)), []byte(`"amount":1`), []byte(`"amount":9`), 1)
	for _, tc := range []struct {
		what string
		tx   []byte
		code uint32
	}{
		{"an over-spend", overspend, apptx.CodeInsufficientFunds},
		{"an unsigned transfer", unsigned, apptx.CodeUnsigned},
		{"another chain's transfer", otherChain, apptx.CodeWrongChain},
		{"a used nonce", sameNonce, apptx.CodeBadNonce},
		{"a forged amount", forged, apptx.CodeBadSignature},
		{"malformed bytes", []byte(`{"type":`), apptx.CodeMalformed},
		{"an unknown type", []byte(`{"chainID":"` + chainID + `","type":"mint","from":"00","nonce":1,"body":{},"sig":""}`), apptx.CodeUnknownType},
	} {
		s, err := submitTx(ctx, c, name, tc.tx)
		if err != nil || s.status != http.StatusUnprocessableEntity || s.problem.Refusal == nil || s.problem.Refusal.Code != tc.code {
			t.Errorf("%s: want 422 with code %d, got %v %+v", tc.what, tc.code, err, s)
		}
	}
	// The same bytes again are the same transaction: its first receipt,
	// not a second transfer.
	again, err := submitTx(ctx, c, name, transfer)
	if err != nil || again.status != http.StatusOK || again.receipt["height"] != first.receipt["height"] {
		t.Errorf("a replayed transfer: %v %+v (first %+v)", err, again, first)
	}
	var after apptx.Account
	query(t, c, name, "/account", map[string]string{"address": alice.addr()}, &after)
	if after.Nonce != before.Nonce || balance(alice) != 700 || balance(bob) != 300 {
		t.Fatalf("refused transactions changed the state: nonce %d → %d, balances %d/%d", before.Nonce, after.Nonce, balance(alice), balance(bob))
	}
	var hist apptx.History
	query(t, c, name, "/asset/history", map[string]string{"address": bob.addr()}, &hist)
	if len(hist.Entries) != 1 || hist.Entries[0].Amount != 300 {
		t.Errorf("bob's history: %+v", hist)
	}

	// Kill -9 a validator during a load of transfers: every acknowledged
	// transfer is on chain exactly once.
	n, err := c.GetNetwork(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	victim, _ := framework.NodeByName(n, "validator-1")
	const senders, perSender = 8, 25
	sink := newAccount(t)
	acked := make([][]string, senders)
	var lwg sync.WaitGroup
	for i := range senders {
		acct := newAccount(t)
		asset := fmt.Sprintf("L%d", i)
		acct.nonce++
		if s, err := submitTx(ctx, c, name, acct.sign(t, apptx.Issue(chainID, acct.pub, acct.nonce, asset, 1000))); err != nil || s.status != http.StatusOK {
			t.Fatalf("issue %s: %v %+v", asset, err, s)
		}
		lwg.Go(func() {
			for range perSender {
				tx := acct.sign(t, apptx.Transfer(chainID, acct.pub, acct.nonce+1, asset, sink.addr(), 1))
				s, err := submitTx(ctx, c, name, tx)
				if err == nil && s.status == http.StatusOK {
					acct.nonce++
					acked[i] = append(acked[i], s.receipt["hash"].(string))
				}
			}
		})
	}
	time.Sleep(time.Second)
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill validator-1: %v", err)
	}
	lwg.Wait()
	total := 0
	for i := range senders {
		total += len(acked[i])
		var b apptx.Balance
		query(t, c, name, "/asset/balance", map[string]string{"address": sink.addr(), "asset": fmt.Sprintf("L%d", i)}, &b)
		if b.Amount != uint64(len(acked[i])) {
			t.Errorf("sender %d: %d transfers acknowledged, %d on chain", i, len(acked[i]), b.Amount)
		}
	}
	if total < senders*perSender/2 {
		t.Errorf("only %d of %d transfers were acknowledged with one validator down", total, senders*perSender)
	}

	// All nodes agree: the same app hash in every node's header.
	n, err = framework.AllAtLeast(ctx, c, name, 0, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := framework.MinHeight(n) - 1
	var appHash string
	for _, node := range n.Status.Nodes {
		rc, err := rpchttp.New(node.Endpoints["rpc"], "/websocket")
		if err != nil {
			t.Fatal(err)
		}
		com, err := rc.Commit(ctx, &h)
		if err != nil {
			t.Fatalf("commit %d from %s: %v", h, node.Name, err)
		}
		if appHash == "" {
			appHash = com.AppHash.String()
		} else if com.AppHash.String() != appHash {
			t.Fatalf("%s has app hash %s at height %d, another node %s", node.Name, com.AppHash, h, appHash)
		}
	}

	// The explorer catches up and finds every acknowledged transaction.
	waitIndexed := func() {
		t.Helper()
		err := framework.Poll(ctx, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
			var st api.ExplorerStatus
			if err := getJSON(ctx, c, base+"/explorer", &st); err != nil {
				return false, err.Error()
			}
			return st.ChainHeight > 0 && st.Lag <= 2, fmt.Sprintf("%+v", st)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	checkExplorer := func() {
		t.Helper()
		for i := range senders {
			for _, hash := range acked[i] {
				var tx api.Tx
				if err := framework.Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
					err := getJSON(ctx, c, base+"/transactions/"+hash, &tx)
					return err == nil, fmt.Sprint(err)
				}); err != nil {
					t.Fatalf("transaction %s: %v", hash, err)
				}
				if tx.Code != 0 || tx.Type != "transfer" {
					t.Fatalf("transaction %s: %+v", hash, tx)
				}
				var found api.SearchResult
				if err := getJSON(ctx, c, base+"/search?q="+hash, &found); err != nil || found.Tx == nil || found.Tx.Hash != hash {
					t.Fatalf("search %s: %v %+v", hash, err, found)
				}
				var blk api.SearchResult
				if err := getJSON(ctx, c, base+fmt.Sprintf("/search?q=%d", tx.Height), &blk); err != nil || blk.Block == nil {
					t.Fatalf("search height %d: %v %+v", tx.Height, err, blk)
				}
				var byHash api.SearchResult
				if err := getJSON(ctx, c, base+"/search?q="+blk.Block.Hash, &byHash); err != nil || byHash.Block == nil || byHash.Block.Height != tx.Height {
					t.Fatalf("search block %s: %v %+v", blk.Block.Hash, err, byHash)
				}
			}
		}
		// Paging through every transaction: no gap, no duplicate.
		seen := map[string]bool{}
		next := ""
		for {
			var page api.TxList
			if err := getJSON(ctx, c, base+"/transactions?limit=100&before="+next, &page); err != nil {
				t.Fatal(err)
			}
			for _, tx := range page.Items {
				if seen[tx.Hash] {
					t.Fatalf("transaction %s listed twice", tx.Hash)
				}
				seen[tx.Hash] = true
			}
			if page.Next == "" {
				break
			}
			next = page.Next
		}
		for _, d := range docs {
			if !seen[d.tx] {
				t.Fatalf("notarisation %s missing from the listing of %d transactions", d.tx, len(seen))
			}
		}
	}
	waitIndexed()
	checkExplorer()

	// After a restart of the server the index is still there and grows.
	var st1 api.ExplorerStatus
	if err := getJSON(ctx, c, base+"/explorer", &st1); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	srv = startServer(t, binDir, dataDir, args...)
	c = srv.Client
	// The status read at once may still be the old server's last word:
	// the index must grow past it.
	if err := framework.Poll(ctx, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		var st2 api.ExplorerStatus
		err := getJSON(ctx, c, base+"/explorer", &st2)
		return err == nil && st2.IndexedHeight > st1.IndexedHeight, fmt.Sprintf("%+v (before the restart: %+v) %v", st2, st1, err)
	}); err != nil {
		t.Fatalf("index after the restart: %v", err)
	}
	waitIndexed()
	checkExplorer()
	checkContracts(t, binDir, dataDir, c, name, chainID)

	if _, err := c.DeleteNetwork(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, name, time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
}
