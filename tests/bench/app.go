package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/gateway"
	"github.com/chaindock/chaindock/internal/server"
	"github.com/chaindock/chaindock/pkg/apptx"
	"github.com/chaindock/chaindock/tests/framework"
)

// The application-layer measurements. The port range is apart from the
// one of run() (33000-33999) and from every end-to-end test's, so that a
// bench beside `make test` takes no port a test expects.
const (
	appPortRange     = "34000-34099"
	appTimeoutCommit = "200ms"
	appSequential    = 100  // transactions submitted one at a time
	appWorkers       = 16   // concurrent clients
	appPerWorker     = 25   // transactions per concurrent client
	appNotarisations = 2000 // for notarisations committed per second
	appWarmUp        = 5    // unmeasured transactions before each series
)

// appNetwork is a network running ChainDock's application, reached through
// a server's gateway and directly through one node's CometBFT RPC.
type appNetwork struct {
	chainID string
	base    string       // the server's /api/v1/networks/NAME
	api     *http.Client // carries the admin token
	rpcAddr string       // validator-0's RPC
	rpc     *http.Client
}

// notarisation signs the notarisation of a document never seen before,
// by an account of its own. Accounts are not reused: the gateway hands
// each transaction to the next node in turn, which may not have committed
// the block with the account's previous nonce yet, and would refuse the
// next one.
func notarisation(chainID string) ([]byte, error) {
	pub, priv, err := apptx.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	doc := make([]byte, 32)
	if _, err := rand.Read(doc); err != nil {
		return nil, err
	}
	tx := apptx.Notarize(chainID, pub, 1, hex.EncodeToString(doc), nil, nil)
	if err := apptx.Sign(tx, priv); err != nil {
		return nil, err
	}
	return apptx.Encode(tx)
}

// signBatches signs, ahead of the clock, perWorker notarisations for each
// of workers clients.
func signBatches(chainID string, workers, perWorker int) ([][][]byte, error) {
	out := make([][][]byte, workers)
	for w := range out {
		for range perWorker {
			tx, err := notarisation(chainID)
			if err != nil {
				return nil, err
			}
			out[w] = append(out[w], tx)
		}
	}
	return out, nil
}

// perWorker runs each worker's transactions in order, the workers side by
// side, and reports every transaction's latency and the elapsed time. The
// first error stops the workers.
func perWorker(ctx context.Context, batches [][][]byte, do func(ctx context.Context, w int, tx []byte) error) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for w, txs := range batches {
		wg.Go(func() {
			for _, tx := range txs {
				t0 := time.Now()
				err := do(ctx, w, tx)
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start), first
}

// submit posts tx to the gateway; wait is "commit" or "none".
func (n *appNetwork) submit(ctx context.Context, tx []byte, wait string) (gateway.Receipt, error) {
	var rc gateway.Receipt
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.base+"/transactions?wait="+wait, bytes.NewReader(tx))
	if err != nil {
		return rc, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.api.Do(req)
	if err != nil {
		return rc, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := http.StatusOK
	if wait == "none" {
		want = http.StatusAccepted
	}
	if resp.StatusCode != want {
		return rc, fmt.Errorf("submit through the gateway: HTTP %d: %s", resp.StatusCode, b)
	}
	return rc, json.Unmarshal(b, &rc)
}

// rpcClient is a client of validator-0's RPC on the bench's own
// connection pool.
func (n *appNetwork) rpcClient() (*rpchttp.HTTP, error) {
	return rpchttp.NewWithClient(n.rpcAddr, "/websocket", n.rpc)
}

// broadcastCommit sends tx straight to the node with broadcast_tx_commit.
func broadcastCommit(ctx context.Context, c *rpchttp.HTTP, tx []byte) error {
	res, err := c.BroadcastTxCommit(ctx, tx)
	if err != nil {
		return fmt.Errorf("broadcast_tx_commit: %w", err)
	}
	if res.CheckTx.Code != 0 || res.TxResult.Code != 0 {
		return fmt.Errorf("broadcast_tx_commit: refused: check %d %q, block %d %q", res.CheckTx.Code, res.CheckTx.Log, res.TxResult.Code, res.TxResult.Log)
	}
	return nil
}

// benchApp measures the application layer: the gateway against direct
// submission on one network, then the explorer's lookups on a large index.
func benchApp(ctx context.Context, binDir string) error {
	if err := benchGateway(ctx, binDir); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return benchExplorerStores(ctx, binDir)
}

// benchGateway deploys four validators running ChainDock's application
// through a real server (SQLite store) and measures, on that network,
// submission through the gateway and straight to a node, and how many
// notarisations the chain commits per second.
func benchGateway(ctx context.Context, binDir string) (err error) {
	srv, dataDir, stop, err := benchServer(ctx, binDir, "app",
		"--port-range", appPortRange, "--rate-limit", "0", "--gateway-rate", "0", "--log-level", "warn")
	if err != nil {
		return err
	}
	defer stop()
	c := srv.Client

	const name = "bench-app"
	spec := fmt.Appendf(nil, `apiVersion: chaindock/v1
kind: Network
metadata: {name: %s}
spec:
  chain: cometbft
  runtime: process
  validators: 4
  consensus: {timeoutCommit: %s}
  cometbft: {app: chaindock}
`, name, appTimeoutCommit)
	if _, err := c.CreateNetwork(ctx, spec); err != nil {
		return err
	}
	defer func() {
		if _, derr := c.DeleteNetwork(ctx, name); derr != nil {
			err = errors.Join(err, derr)
			return
		}
		err = errors.Join(err, framework.WaitGone(ctx, c, name, time.Minute))
		if left := framework.ProcessesUnder(filepath.Join(dataDir, "runtime")); len(left) > 0 {
			err = errors.Join(err, fmt.Errorf("processes left after deleting %s: %v", name, left))
		}
	}()
	if _, err := framework.AllAtLeast(ctx, c, name, 2, 2*time.Minute); err != nil {
		return fmt.Errorf("deploy %s: %w", name, err)
	}

	tok, err := os.ReadFile(filepath.Join(dataDir, server.TokenFile))
	if err != nil {
		return err
	}
	pool := func() *http.Transport {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 2 * appWorkers
		return t
	}
	n := &appNetwork{
		chainID: "chaindock-" + name,
		base:    srv.Addr + "/api/v1/networks/" + name,
		api:     &http.Client{Transport: bearerRT{token: strings.TrimSpace(string(tok)), base: pool()}},
		rpc:     &http.Client{Transport: pool()},
	}
	// validator-0's RPC address, as the API reports it.
	var nodes api.NodeList
	if err := c.Do(ctx, http.MethodGet, "/api/v1/networks/"+name+"/nodes", nil, "", &nodes); err != nil {
		return err
	}
	for _, s := range nodes.Items {
		if s.Name == "validator-0" {
			n.rpcAddr = s.Endpoints["rpc"]
		}
	}
	if n.rpcAddr == "" {
		return fmt.Errorf("validator-0 of %s has no rpc endpoint in %+v", name, nodes.Items)
	}

	if err := benchSubmit(ctx, n); err != nil {
		return err
	}
	return benchNotarisations(ctx, n)
}

// benchSubmit compares the gateway with broadcast_tx_commit to one node:
// one transaction at a time for latency, appWorkers at a time for
// throughput.
func benchSubmit(ctx context.Context, n *appNetwork) error {
	viaGateway := func(ctx context.Context, _ int, tx []byte) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := n.submit(ctx, tx, "commit")
		return err
	}
	direct := make([]*rpchttp.HTTP, appWorkers)
	for i := range direct {
		rc, err := n.rpcClient()
		if err != nil {
			return err
		}
		direct[i] = rc
	}
	viaNode := func(ctx context.Context, w int, tx []byte) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return broadcastCommit(ctx, direct[w], tx)
	}
	series := func(workers, each int, do func(context.Context, int, []byte) error) ([]time.Duration, time.Duration, error) {
		batches, err := signBatches(n.chainID, workers, appWarmUp+each)
		if err != nil {
			return nil, 0, err
		}
		warm, rest := make([][][]byte, workers), make([][][]byte, workers)
		for w, b := range batches {
			warm[w], rest[w] = b[:appWarmUp], b[appWarmUp:]
		}
		if _, _, err := perWorker(ctx, warm, do); err != nil {
			return nil, 0, err
		}
		return perWorker(ctx, rest, do)
	}

	// The chain's pace over all four series, for the notes.
	status, err := n.rpcClient()
	if err != nil {
		return err
	}
	st0, err := status.Status(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	gwSeq, _, err := series(1, appSequential, viaGateway)
	if err != nil {
		return fmt.Errorf("sequential through the gateway: %w", err)
	}
	dSeq, _, err := series(1, appSequential, viaNode)
	if err != nil {
		return fmt.Errorf("sequential to validator-0: %w", err)
	}
	gwPar, gwTook, err := series(appWorkers, appPerWorker, viaGateway)
	if err != nil {
		return fmt.Errorf("concurrent through the gateway: %w", err)
	}
	dPar, dTook, err := series(appWorkers, appPerWorker, viaNode)
	if err != nil {
		return fmt.Errorf("concurrent to validator-0: %w", err)
	}

	st1, err := status.Status(ctx)
	if err != nil {
		return err
	}
	interval := time.Since(t0).Seconds() * 1000 / float64(st1.SyncInfo.LatestBlockHeight-st0.SyncInfo.LatestBlockHeight)
	chainNote := fmt.Sprintf("4 validators running the chaindock application, timeoutCommit %s (a block every %.0f ms on average meanwhile)", appTimeoutCommit, interval)
	seqNote := func(how string) string {
		return fmt.Sprintf("%d signed notarisations (a fresh account each) one at a time, each until committed, %s; %s; after %d unmeasured", appSequential, how, chainNote, appWarmUp)
	}
	gwHow := "POST /api/v1/networks/NAME/transactions?wait=commit to the server (SQLite store), which hands them to the nodes in turn"
	dHow := "broadcast_tx_commit to validator-0's CometBFT RPC"
	emit(figure{Metric: "app_gateway_submit_p50_ms", Value: pct(gwSeq, 0.5), Unit: "ms", Note: seqNote(gwHow)})
	emit(figure{Metric: "app_gateway_submit_p99_ms", Value: pct(gwSeq, 0.99), Unit: "ms", Note: seqNote(gwHow)})
	emit(figure{Metric: "app_direct_submit_p50_ms", Value: pct(dSeq, 0.5), Unit: "ms", Note: seqNote(dHow)})
	emit(figure{Metric: "app_direct_submit_p99_ms", Value: pct(dSeq, 0.99), Unit: "ms", Note: seqNote(dHow)})
	parNote := func(how string, lat []time.Duration) string {
		return fmt.Sprintf("%d notarisations (a fresh account each) from %d concurrent clients, each waiting for its transaction to be committed before sending the next, %s; %s; p50 %.1f ms, p99 %.1f ms",
			appWorkers*appPerWorker, appWorkers, how, chainNote, pct(lat, 0.5), pct(lat, 0.99))
	}
	gwTPS := float64(len(gwPar)) / gwTook.Seconds()
	dTPS := float64(len(dPar)) / dTook.Seconds()
	emit(figure{Metric: "app_gateway_submit_tps", Value: round(gwTPS), Unit: "tx/s", Note: parNote(gwHow, gwPar)})
	emit(figure{Metric: "app_direct_submit_tps", Value: round(dTPS), Unit: "tx/s", Note: parNote(dHow, dPar)})
	emit(figure{Metric: "app_gateway_vs_direct_latency_ratio", Value: round(pct(gwSeq, 0.5) / pct(dSeq, 0.5)), Unit: "x",
		Note: "app_gateway_submit_p50_ms / app_direct_submit_p50_ms"})
	emit(figure{Metric: "app_gateway_vs_direct_tps_ratio", Value: round(gwTPS / dTPS), Unit: "x",
		Note: "app_gateway_submit_tps / app_direct_submit_tps"})
	return nil
}

// benchNotarisations submits appNotarisations notarisations through the
// gateway without waiting for their blocks, and watches validator-0's
// chain until every one is committed.
func benchNotarisations(ctx context.Context, n *appNetwork) error {
	batches, err := signBatches(n.chainID, appWorkers, appNotarisations/appWorkers)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, b := range batches {
		for _, tx := range b {
			want[apptx.Hash(tx)] = true
		}
	}
	rc, err := n.rpcClient()
	if err != nil {
		return err
	}
	st, err := rc.Status(ctx)
	if err != nil {
		return err
	}
	from := st.SyncInfo.LatestBlockHeight

	type done struct {
		at     time.Time
		height int64
		err    error
	}
	wctx, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	watched := make(chan done, 1)
	go func() {
		at, h, err := watchCommitted(wctx, rc, from, want)
		watched <- done{at, h, err}
	}()
	start := time.Now()
	_, took, err := perWorker(ctx, batches, func(ctx context.Context, _ int, tx []byte) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := n.submit(ctx, tx, "none")
		return err
	})
	if err != nil {
		stop()
		<-watched
		return fmt.Errorf("notarisations with wait=none: %w", err)
	}
	d := <-watched
	if d.err != nil {
		return fmt.Errorf("notarisations with wait=none: %w", d.err)
	}
	committed := d.at.Sub(start)
	emit(figure{Metric: "app_notarisations_per_s", Value: round(appNotarisations / committed.Seconds()), Unit: "tx/s",
		Note: fmt.Sprintf("%d notarisations (a fresh account each) from %d concurrent clients through the gateway with wait=none, counted from the first submission until validator-0 has committed the last (%.2fs; the gateway admitted them all in %.2fs, %.0f/s); 4 validators, timeoutCommit %s, blocks %d-%d",
			appNotarisations, appWorkers, committed.Seconds(), took.Seconds(), appNotarisations/took.Seconds(), appTimeoutCommit, from+1, d.height)})

	// The explorer: how long after the last commit the index has it.
	err = framework.Poll(ctx, time.Minute, 20*time.Millisecond, func() (bool, string) {
		var ex api.ExplorerStatus
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.base+"/explorer", nil)
		resp, err := n.api.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&ex); err != nil {
			return false, err.Error()
		}
		return ex.IndexedHeight >= d.height, fmt.Sprintf("%+v, want height %d", ex, d.height)
	})
	if err != nil {
		return fmt.Errorf("explorer after the notarisations: %w", err)
	}
	emit(figure{Metric: "app_explorer_index_lag_s", Value: round(time.Since(d.at).Seconds()), Unit: "s",
		Note: fmt.Sprintf("from the commit of the last of the %d notarisations until GET .../explorer reports its block indexed (the indexer looks every 0.5s once caught up)", appNotarisations)})
	return nil
}

// watchCommitted follows the node's chain from height from+1 until it has
// seen every transaction of want applied in a block, and returns when it
// saw the block that completed them, and its height. A block whose results
// the node has yet to store (it stores the block first) is read again at
// the next look.
func watchCommitted(ctx context.Context, c *rpchttp.HTTP, from int64, want map[string]bool) (time.Time, int64, error) {
	seen := 0
	for h := from; ; {
		st, err := c.Status(ctx)
		if err != nil {
			return time.Time{}, 0, fmt.Errorf("status: %w", err)
		}
		for ; h < st.SyncInfo.LatestBlockHeight; h++ {
			height := h + 1
			res, err := c.BlockResults(ctx, &height)
			if err != nil {
				if strings.Contains(err.Error(), "could not find results") {
					break
				}
				return time.Time{}, 0, fmt.Errorf("results of block %d: %w", height, err)
			}
			b, err := c.Block(ctx, &height)
			if err != nil {
				return time.Time{}, 0, fmt.Errorf("block %d: %w", height, err)
			}
			for i, tx := range b.Block.Txs {
				if !want[fmt.Sprintf("%X", tx.Hash())] {
					continue
				}
				if r := res.TxsResults[i]; r.Code != 0 {
					return time.Time{}, 0, fmt.Errorf("transaction %X refused in block %d: code %d: %s", tx.Hash(), height, r.Code, r.Log)
				}
				seen++
			}
			if seen == len(want) {
				return time.Now(), height, nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, 0, fmt.Errorf("%d of %d transactions committed by height %d: %w", seen, len(want), h, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
