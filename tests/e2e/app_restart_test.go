package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	coretypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/pkg/apptx"
	"github.com/chaindock/chaindock/tests/framework"
)

// sentTx is one notarisation a notaryLoad sent.
type sentTx struct {
	hash  string // upper-case hex, as the chain shows it
	doc   string
	owner string
	phase string
	// height is where the receipt put it; 0 when no receipt came back
	// (an earlier attempt went in while its answer was lost).
	height int64
}

// notaryLoad notarises documents from a fixed set of accounts. Each account
// sends one transaction at a time and retries the very same bytes until they
// are in a block, so its nonces never get out of step with the chain however
// many nodes or servers go down meanwhile.
type notaryLoad struct {
	chainID  string
	accounts []*account
	seq      int
	mu       sync.Mutex
	sent     []sentTx
	// top is the highest block a receipt named: a node that has it has
	// every transaction acknowledged so far.
	top atomic.Int64
}

func newNotaryLoad(t *testing.T, chainID string, accounts int) *notaryLoad {
	t.Helper()
	l := &notaryLoad{chainID: chainID}
	for range accounts {
		l.accounts = append(l.accounts, newAccount(t))
	}
	return l
}

type signedDoc struct {
	doc   string
	owner string
	nonce uint64
	tx    []byte
}

// sign prepares n notarisations spread over the accounts, signed in nonce
// order per account.
func (l *notaryLoad) sign(t *testing.T, n int) [][]signedDoc {
	t.Helper()
	out := make([][]signedDoc, len(l.accounts))
	for i := range n {
		k := i % len(l.accounts)
		a := l.accounts[k]
		l.seq++
		// Distinct from any other load's documents: the first account is
		// this load's alone.
		sum := sha256.Sum256(fmt.Appendf(nil, "%s document %d of %s", t.Name(), l.seq, l.accounts[0].addr()))
		doc := hex.EncodeToString(sum[:])
		a.nonce++
		tx := a.sign(t, apptx.Notarize(l.chainID, a.pub, a.nonce, doc, []string{"restart"}, map[string]string{"seq": fmt.Sprint(l.seq)}))
		out[k] = append(out[k], signedDoc{doc: doc, owner: a.addr(), nonce: a.nonce, tx: tx})
	}
	return out
}

func (l *notaryLoad) record(s sentTx) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, s)
}

// send submits n notarisations through the gateway, the accounts in
// parallel, and returns when every one is in a block.
func (l *notaryLoad) send(t *testing.T, c *client.Client, network, phase string, n int) {
	t.Helper()
	l.parallel(t, phase, n, func(ctx context.Context, d signedDoc) (int64, error) {
		return l.submitCommitted(ctx, c, network, d)
	})
}

// sendDirect is send straight to a node's RPC, with no server in between.
func (l *notaryLoad) sendDirect(t *testing.T, rpcAddr, phase string, n int) {
	t.Helper()
	rc, err := rpchttp.New(rpcAddr, "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	l.parallel(t, phase, n, func(ctx context.Context, d signedDoc) (int64, error) {
		return broadcastCommitted(ctx, rc, d.tx)
	})
}

func (l *notaryLoad) parallel(t *testing.T, phase string, n int, submit func(context.Context, signedDoc) (int64, error)) {
	t.Helper()
	ctx := t.Context()
	batches := l.sign(t, n)
	errs := make(chan error, len(batches))
	var wg sync.WaitGroup
	for _, batch := range batches {
		wg.Go(func() {
			for _, d := range batch {
				h, err := submit(ctx, d)
				if err != nil {
					errs <- fmt.Errorf("%s: notarise %s: %w", phase, d.doc, err)
					return
				}
				raise(&l.top, h)
				l.record(sentTx{hash: apptx.Hash(d.tx), doc: d.doc, owner: d.owner, phase: phase, height: h})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// keepCommittedFloor restores lastCommitted when the test ends: submitTx
// raises it to this test's heights, which mean nothing on another test's
// network, where query would wait for a node to reach them.
func keepCommittedFloor(t *testing.T) {
	t.Helper()
	prev := lastCommitted.Load()
	t.Cleanup(func() { lastCommitted.Store(prev) })
}

// raise sets v to h if h is higher.
func raise(v *atomic.Int64, h int64) {
	for old := v.Load(); h > old; old = v.Load() {
		if v.CompareAndSwap(old, h) {
			return
		}
	}
}

// submitCommitted submits d through the gateway until it is in a block,
// resending the same bytes while nodes or the server come and go.
//
// A refusal for a bad nonce is checked against the account's nonce on a
// node that has every acknowledged block. One less than d's means the
// gateway reported as final the refusal of a node that had not yet applied
// the sender's previous transaction (one just restarted, a block behind),
// although another node would have admitted it: that fails the test. d's
// own nonce means an earlier attempt of d went in: the chain is asked later
// where.
func (l *notaryLoad) submitCommitted(ctx context.Context, c *client.Client, network string, d signedDoc) (int64, error) {
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for attempt := 1; ; attempt++ {
		s, err := submitTx(ctx, c, network, d.tx)
		switch {
		case err == nil && s.status == http.StatusOK:
			h, _ := s.receipt["height"].(float64)
			if h <= 0 {
				return 0, fmt.Errorf("a receipt with no height: %+v", s.receipt)
			}
			return int64(h), nil
		case err == nil && s.status == http.StatusUnprocessableEntity:
			if s.problem.Refusal == nil || s.problem.Refusal.Code != apptx.CodeBadNonce {
				return 0, fmt.Errorf("refused on attempt %d: %+v", attempt, s.problem)
			}
			nonce, err := l.chainNonce(ctx, c, network, d.owner)
			switch {
			case err != nil:
				last = err.Error()
			case nonce == d.nonce-1:
				return 0, fmt.Errorf("refused on attempt %d although the account is at nonce %d, one below: a lagging node's refusal was final: %+v", attempt, nonce, s.problem)
			case nonce == d.nonce && attempt > 1:
				return 0, nil
			default:
				return 0, fmt.Errorf("refused on attempt %d with the account at nonce %d: %+v", attempt, nonce, s.problem)
			}
		case err != nil:
			last = err.Error()
		default:
			last = fmt.Sprintf("HTTP %d: %s", s.status, s.problem.Detail)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not committed after %d attempts: %s", attempt, last)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// chainNonce is an account's nonce as a node that has every acknowledged
// block sees it.
func (l *notaryLoad) chainNonce(ctx context.Context, c *client.Client, network, addr string) (uint64, error) {
	data, _ := json.Marshal(map[string]string{"address": addr})
	var ans api.QueryAnswer
	path := fmt.Sprintf("/api/v1/networks/%s/query?path=%s&data=%s&minHeight=%d", network,
		url.QueryEscape(apptx.PathAccount), url.QueryEscape(string(data)), l.top.Load())
	if err := getJSON(ctx, c, path, &ans); err != nil {
		return 0, err
	}
	var acct apptx.Account
	if ans.Code != 0 || json.Unmarshal(ans.Value, &acct) != nil {
		return 0, fmt.Errorf("account %s: %+v", addr, ans)
	}
	return acct.Nonce, nil
}

// broadcastCommitted is submitCommitted against a node's RPC.
func broadcastCommitted(ctx context.Context, rc *rpchttp.HTTP, tx []byte) (int64, error) {
	hash := sha256.Sum256(tx)
	deadline := time.Now().Add(time.Minute)
	for attempt := 1; ; attempt++ {
		res, err := rc.BroadcastTxCommit(ctx, tx)
		switch {
		case err == nil && res.CheckTx.Code == 0 && res.TxResult.Code == 0 && res.Height > 0:
			return res.Height, nil
		case err == nil && attempt > 1 && res.CheckTx.Code == apptx.CodeBadNonce:
			return 0, nil
		case err == nil:
			return 0, fmt.Errorf("refused: check %d %q, deliver %d %q", res.CheckTx.Code, res.CheckTx.Log, res.TxResult.Code, res.TxResult.Log)
		}
		// The node may hold an earlier attempt ("tx already exists in
		// cache") or have committed it while the answer timed out.
		if found, terr := rc.Tx(ctx, hash[:], false); terr == nil {
			if found.TxResult.Code != 0 {
				return 0, fmt.Errorf("refused in block %d: %d %q", found.Height, found.TxResult.Code, found.TxResult.Log)
			}
			return found.Height, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not committed after %d attempts: %w", attempt, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitHealed waits until the platform has restarted node (its status was
// before) and the node is back at the head of the chain.
func waitHealed(t *testing.T, c *client.Client, dataDir, network string, before apis.NodeStatus) apis.NodeStatus {
	t.Helper()
	ctx := t.Context()
	var healed apis.NodeStatus
	err := framework.Poll(ctx, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		n, err := c.GetNetwork(ctx, network)
		if err != nil {
			return false, err.Error()
		}
		healed, _ = framework.NodeByName(n, before.Name)
		var maxH int64
		for _, s := range n.Status.Nodes {
			maxH = max(maxH, s.Height)
		}
		ok := healed.Restarts > before.Restarts && healed.PID != before.PID && framework.Alive(healed.PID) &&
			healed.Phase == apis.NodeRunning && n.Status.Phase == apis.PhaseRunning &&
			healed.Height > before.Height && healed.Height >= maxH-1
		return ok, framework.Describe(n)
	})
	if err != nil {
		logNodeTails(t, dataDir, network, before.Name)
		t.Fatalf("%s was not healed: %v", before.Name, err)
	}
	return healed
}

// logNodeTails logs the end of every log file of a node.
func logNodeTails(t *testing.T, dataDir, network, node string) {
	t.Helper()
	dir := filepath.Join(dataDir, "runtime", "process", network+"."+node)
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, p := range append(logs, filepath.Join(dir, "state.json"), filepath.Join(dir, "exit.json")) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Logf("%s: %v", p, err)
			continue
		}
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		t.Logf("--- end of %s ---\n%s", p, b)
	}
}

// cmdline is a process's command line, arguments joined by spaces.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ")
}

// chainHeight is the highest height any node of the network reports.
func chainHeight(t *testing.T, c *client.Client, network string) int64 {
	t.Helper()
	n, err := c.GetNetwork(t.Context(), network)
	if err != nil {
		t.Fatal(err)
	}
	var h int64
	for _, s := range n.Status.Nodes {
		h = max(h, s.Height)
	}
	return h
}

// blockWithTxs is GET /blocks/{block}.
type blockWithTxs struct {
	api.Block
	Txs []api.Tx `json:"transactions"`
}

// TestExplorerAfterNodeRestart: the explorer indexes every block once and
// finds every transaction by hash, by its block's height and through search,
// although a validator is killed, the server is stopped and killed, and
// blocks are made while no server runs.
func TestExplorerAfterNodeRestart(t *testing.T) {
	binDir, dataDir := setup(t)
	if _, err := os.Stat(filepath.Join(binDir, "chaindock-app")); err != nil {
		t.Skipf("%s has no chaindock-app: run `make build`", binDir)
	}
	keepCommittedFloor(t)
	ctx := t.Context()
	args := []string{"--port-range", "31900-31924", "--probe-interval", "500ms", "--rate-limit", "0"}
	srv := startServer(t, binDir, dataDir, args...)
	c := srv.Client
	const name = "restarts"
	spec := `apiVersion: chaindock/v1
kind: Network
metadata: {name: restarts}
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
	n, err := framework.AllAtLeast(ctx, c, name, 2, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	base := "/api/v1/networks/" + name
	load := newNotaryLoad(t, "chaindock-"+name, 10)
	// validator-2 is never restarted: it is the witness of the chain.
	witness, _ := framework.NodeByName(n, "validator-2")
	witnessRPC, err := rpchttp.New(witness.Endpoints["rpc"], "/websocket")
	if err != nil {
		t.Fatal(err)
	}

	load.send(t, c, name, "all up", 100)

	// kill -9 the node process of validator-0 in the middle of a load.
	n, err = c.GetNetwork(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	v0, _ := framework.NodeByName(n, "validator-0")
	if !strings.Contains(cmdline(v0.PID), "cometbft") {
		t.Fatalf("validator-0's PID %d runs %q, not cometbft", v0.PID, cmdline(v0.PID))
	}
	killed := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		killed <- syscall.Kill(v0.PID, syscall.SIGKILL)
	}()
	load.send(t, c, name, "validator-0 killed", 60)
	if err := <-killed; err != nil {
		t.Fatalf("kill validator-0: %v", err)
	}
	waitHealed(t, c, dataDir, name, v0)

	// Stop the server: the nodes go on making blocks, which the next server
	// indexes.
	restartServer := func(how string, stop func()) {
		t.Helper()
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		stop()
		for _, s := range n.Status.Nodes {
			if !framework.Alive(s.PID) {
				t.Fatalf("%s (pid %d) died when the server was %s", s.Name, s.PID, how)
			}
		}
		load.sendDirect(t, witness.Endpoints["rpc"], "server "+how, 20)
		srv = startServer(t, binDir, dataDir, args...)
		c = srv.Client
		if _, err := framework.AllAtLeast(ctx, c, name, 0, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		load.send(t, c, name, "after the server was "+how, 30)
	}
	restartServer("stopped", srv.Stop)
	restartServer("killed", srv.Kill)

	// The chain's own account of every transaction sent. The last
	// receipts may name a block the witness has not committed, or not
	// indexed, yet.
	type onChain struct {
		height int64
		index  int
	}
	truth := map[string]onChain{}
	for _, s := range load.sent {
		b, _ := hex.DecodeString(s.hash)
		var res *coretypes.ResultTx
		if err := framework.Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
			var err error
			res, err = witnessRPC.Tx(ctx, b, false)
			return err == nil, fmt.Sprint(err)
		}); err != nil {
			t.Fatalf("transaction %s (%s) is not on chain: %v", s.hash, s.phase, err)
		}
		if res.TxResult.Code != 0 || (s.height != 0 && res.Height != s.height) {
			t.Fatalf("transaction %s (%s): on chain at %d with code %d, receipt said %d", s.hash, s.phase, res.Height, res.TxResult.Code, s.height)
		}
		truth[s.hash] = onChain{height: res.Height, index: int(res.Index)}
	}
	if want := 100 + 60 + 2*(20+30); len(truth) != want {
		t.Fatalf("%d distinct transactions on chain, want %d", len(truth), want)
	}

	// The index catches up with the chain as it was when the load ended.
	wst, err := witnessRPC.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	top := max(wst.SyncInfo.LatestBlockHeight, chainHeight(t, c, name))
	var st api.ExplorerStatus
	start := time.Now()
	if err := framework.Poll(ctx, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		if err := getJSON(ctx, c, base+"/explorer", &st); err != nil {
			return false, err.Error()
		}
		return st.IndexedHeight >= top, fmt.Sprintf("chain at %d when the load ended, explorer %+v", top, st)
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d transactions in %d blocks; the index reached block %d %s after the load ended", len(truth), top, top, time.Since(start).Round(time.Millisecond))

	// Every block from 1 up is indexed once, as the chain has it.
	var heights []int64
	indexed := map[int64]api.Block{}
	for before := ""; ; {
		var page api.BlockList
		if err := getJSON(ctx, c, base+"/blocks?limit=100&before="+before, &page); err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Items {
			if _, dup := indexed[b.Height]; dup {
				t.Fatalf("block %d listed twice", b.Height)
			}
			indexed[b.Height] = b
			heights = append(heights, b.Height)
		}
		if page.Next == "" {
			break
		}
		before = page.Next
	}
	if len(heights) == 0 || heights[0] < top {
		t.Fatalf("the listing starts at %v, below the chain's %d", heights[:min(1, len(heights))], top)
	}
	for i, h := range heights {
		if want := heights[0] - int64(i); h != want {
			t.Fatalf("listing: block %d where %d should be (newest %d): a gap or a block out of order", h, want, heights[0])
		}
	}
	if last := heights[len(heights)-1]; last != 1 {
		t.Fatalf("the listing ends at block %d, not 1", last)
	}
	// Hashes and transaction counts against the witness, 20 blocks a call.
	// The index may have the newest block from a node the witness has not
	// heard from yet: wait for the witness to have it too.
	if err := framework.Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		st, err := witnessRPC.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		return st.SyncInfo.LatestBlockHeight >= heights[0], fmt.Sprintf("validator-2 at %d, the index at %d", st.SyncInfo.LatestBlockHeight, heights[0])
	}); err != nil {
		t.Fatal(err)
	}
	for hi := heights[0]; hi >= 1; hi -= 20 {
		lo := max(1, hi-19)
		res, err := witnessRPC.BlockchainInfo(ctx, lo, hi)
		if err != nil {
			t.Fatalf("blocks %d-%d from validator-2: %v", lo, hi, err)
		}
		if len(res.BlockMetas) != int(hi-lo+1) {
			t.Fatalf("validator-2 has %d of blocks %d-%d", len(res.BlockMetas), lo, hi)
		}
		for _, m := range res.BlockMetas {
			b := indexed[m.Header.Height]
			if b.Hash != m.BlockID.Hash.String() || b.NumTxs != m.NumTxs || b.AppHash != m.Header.AppHash.String() {
				t.Fatalf("block %d: indexed %+v, the chain has hash %s, %d transactions, app hash %s",
					m.Header.Height, b, m.BlockID.Hash, m.NumTxs, m.Header.AppHash)
			}
		}
	}

	// Every transaction by hash, in its block, and through search by its
	// hash, its block's height and its block's hash.
	for _, s := range load.sent {
		want := truth[s.hash]
		var tx api.Tx
		if err := getJSON(ctx, c, base+"/transactions/"+s.hash, &tx); err != nil {
			t.Fatalf("transaction %s (%s): %v", s.hash, s.phase, err)
		}
		if tx.Hash != s.hash || tx.Height != want.height || tx.Index != want.index || tx.Code != 0 || tx.Type != string(apptx.TypeNotarize) {
			t.Fatalf("transaction %s (%s): %+v, the chain has it at %d.%d", s.hash, s.phase, tx, want.height, want.index)
		}
		var blk blockWithTxs
		if err := getJSON(ctx, c, fmt.Sprintf("%s/blocks/%d", base, want.height), &blk); err != nil {
			t.Fatalf("block %d: %v", want.height, err)
		}
		if blk.Height != want.height || want.index >= len(blk.Txs) || blk.Txs[want.index].Hash != s.hash || len(blk.Txs) != blk.NumTxs {
			t.Fatalf("block %d does not hold transaction %s at %d: %+v", want.height, s.hash, want.index, blk)
		}
		var byTx, byHeight, byBlockHash api.SearchResult
		if err := getJSON(ctx, c, base+"/search?q="+strings.ToLower(s.hash), &byTx); err != nil || byTx.Kind != "transaction" || byTx.Tx == nil || byTx.Tx.Hash != s.hash || byTx.Tx.Height != want.height {
			t.Fatalf("search %s: %v %+v", s.hash, err, byTx)
		}
		if err := getJSON(ctx, c, fmt.Sprintf("%s/search?q=%d", base, want.height), &byHeight); err != nil || byHeight.Kind != "block" || byHeight.Block == nil || byHeight.Block.Hash != blk.Hash {
			t.Fatalf("search height %d: %v %+v", want.height, err, byHeight)
		}
		if err := getJSON(ctx, c, base+"/search?q="+blk.Hash, &byBlockHash); err != nil || byBlockHash.Kind != "block" || byBlockHash.Block == nil || byBlockHash.Block.Height != want.height {
			t.Fatalf("search block %s: %v %+v", blk.Hash, err, byBlockHash)
		}
	}

	// Paging through the transactions lists each of them once.
	listed := map[string]int{}
	for before := ""; ; {
		var page api.TxList
		if err := getJSON(ctx, c, base+"/transactions?limit=100&before="+before, &page); err != nil {
			t.Fatal(err)
		}
		for _, tx := range page.Items {
			listed[tx.Hash]++
		}
		if page.Next == "" {
			break
		}
		before = page.Next
	}
	var missing, twice []string
	for h := range truth {
		switch listed[h] {
		case 0:
			missing = append(missing, h)
		case 1:
		default:
			twice = append(twice, h)
		}
	}
	if len(missing) > 0 || len(twice) > 0 {
		slices.Sort(missing)
		t.Fatalf("transaction listing: %d missing %v, %d listed more than once %v", len(missing), missing, len(twice), twice)
	}

	if _, err := c.DeleteNetwork(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, name, time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if left := framework.ProcessesUnder(dataDir); len(left) > 0 {
		t.Fatalf("processes left under %s: %v", dataDir, left)
	}
}
