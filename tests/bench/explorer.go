package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/server"
	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/internal/store/postgres"
	"github.com/chaindock/chaindock/internal/store/sqlite"
	"github.com/chaindock/chaindock/internal/store/sqlstore"
	"github.com/chaindock/chaindock/internal/store/storetest"
	"github.com/chaindock/chaindock/pkg/apptx"
	"github.com/chaindock/chaindock/tests/framework"
)

// The explorer's index: explorerTxs transactions from explorerSenders
// accounts in blocks of explorerPerBlock, written explorerPerPut blocks per
// PutBlocks call as the indexer writes them (it takes up to 100 blocks at
// once), by explorerPostgresWriters writers side by side on PostgreSQL.
const (
	explorerTxs             = 1_000_000
	explorerPerBlock        = 100
	explorerPerPut          = 100
	explorerPostgresWriters = 4
	explorerSenders         = 1000
	explorerLookups         = 2000
	explorerNetwork         = "explored"
)

// sqliteFile is the server's database file in its data directory
// (internal/server).
const sqliteFile = "chaindock.db"

var explorerGenesis = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// explorerTx is the k-th transaction of the index: a notarisation as the
// application's clients send it. Its signature is not a real one, which
// the explorer neither checks nor needs.
func explorerTx(chainID string, k int) ([]byte, error) {
	from, _ := hex.DecodeString(hexSum(fmt.Sprint("sender ", k%explorerSenders)))
	doc := hexSum(fmt.Sprint("document ", k))
	tx := apptx.Notarize(chainID, ed25519.PublicKey(from), uint64(k/explorerSenders+1), doc, []string{"contract"}, nil) //nolint:gosec // k is not negative
	sig := sha512.Sum512([]byte(doc))
	tx.Sig = sig[:]
	return apptx.Encode(tx)
}

// benchExplorerStores runs benchExplorer on SQLite and, when a server is at
// hand, on PostgreSQL.
func benchExplorerStores(ctx context.Context, binDir string) error {
	if err := benchExplorer(ctx, binDir, "sqlite", ""); err != nil {
		return fmt.Errorf("explorer on sqlite: %w", err)
	}
	admin := os.Getenv(storetest.EnvPostgresDSN)
	if admin == "" {
		fmt.Fprintln(os.Stderr, "bench: "+storetest.EnvPostgresDSN+" is not set, so the explorer figures on PostgreSQL are left out (make bench sets it)")
		return nil
	}
	dsn, drop, err := storetest.NewPostgresDatabase(ctx, admin)
	if err != nil {
		return err
	}
	defer drop()
	if err := benchExplorer(ctx, binDir, "postgres", dsn); err != nil {
		return fmt.Errorf("explorer on postgres: %w", err)
	}
	return nil
}

// benchExplorer fills a store with one network's index of explorerTxs
// transactions, then starts a server on it and looks transactions up by
// hash through the API.
func benchExplorer(ctx context.Context, binDir, storeName, dsn string) error {
	tmp, err := os.MkdirTemp("", "chaindock-bench-explorer")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dataDir := filepath.Join(tmp, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	fill, writers, err := fillExplorer(ctx, dataDir, dsn)
	if err != nil {
		return err
	}
	emit(figure{Metric: "explorer_fill_s", Store: storeName, Value: round(fill.Seconds()), Unit: "s",
		Note: fmt.Sprintf("store.PutBlocks of %d transactions, %d per block and %d blocks per call, by %d writer(s) side by side: %.0f transactions/s",
			explorerTxs, explorerPerBlock, explorerPerPut, writers, explorerTxs/fill.Seconds())})

	// Without its controller the server neither deploys the network nor
	// runs the indexer: the index stays exactly as filled.
	args := []string{"--controller=false", "--rate-limit", "0", "--log-level", "warn"}
	if dsn != "" {
		args = append(args, "--store-dsn", dsn)
	}
	srv, err := framework.StartServer(ctx, binDir, dataDir, args...)
	if err != nil {
		return err
	}
	defer srv.Stop()
	tok, err := os.ReadFile(filepath.Join(dataDir, server.TokenFile))
	if err != nil {
		return err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 2 * concurrency
	c := &http.Client{Transport: bearerRT{token: strings.TrimSpace(string(tok)), base: t}}

	chainID := "chaindock-" + explorerNetwork
	rnd := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // which transactions are looked up need not be secret
	urls := make([]string, explorerLookups+100)
	for i := range urls {
		data, err := explorerTx(chainID, rnd.IntN(explorerTxs))
		if err != nil {
			return err
		}
		urls[i] = srv.Addr + "/api/v1/networks/" + explorerNetwork + "/transactions/" + apptx.Hash(data)
	}
	get := func(i int) error { return request(ctx, c, http.MethodGet, urls[i], "", nil, http.StatusOK) }
	// The first hundred open the connections, and are not counted.
	if _, _, err := measure(100, func(i int) error { return get(explorerLookups + i) }); err != nil {
		return err
	}
	lat, took, err := measure(explorerLookups, get)
	if err != nil {
		return err
	}
	emitLatency(latency{Metric: "explorer_tx_by_hash", Store: storeName, P50ms: pct(lat, 0.5), P99ms: pct(lat, 0.99), PerSec: round(float64(len(lat)) / took.Seconds()), Count: len(lat), Workers: concurrency,
		Note: fmt.Sprintf("GET /api/v1/networks/NAME/transactions/HASH of random transactions as the admin, %d indexed for the network, from a server without its controller (no indexer writing meanwhile)", explorerTxs)})
	srv.Stop()
	return benchForget(ctx, dataDir, dsn, storeName)
}

// benchForget deletes the filled network from the store while a reader
// reads another object in a loop, and reports how long the deletion took
// and the longest the reader waited meanwhile: the time the deletion
// held the store.
func benchForget(ctx context.Context, dataDir, dsn, storeName string) error {
	st, err := openStore(ctx, dataDir, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	o, err := st.Get(ctx, apis.KindNetwork, explorerNetwork)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	waits := make(chan []time.Duration, 1)
	go func() {
		var lat []time.Duration
		for {
			select {
			case <-done:
				waits <- lat
				return
			default:
			}
			start := time.Now()
			if _, err := st.List(ctx, apis.KindNetwork); err != nil {
				waits <- nil
				return
			}
			lat = append(lat, time.Since(start))
		}
	}()
	start := time.Now()
	err = st.Delete(ctx, apis.KindNetwork, o.Name, o.UID)
	took := time.Since(start)
	close(done)
	lat := <-waits
	if err != nil {
		return err
	}
	if len(lat) == 0 {
		return errors.New("the reader beside the deletion failed")
	}
	emit(figure{Metric: "explorer_delete_s", Store: storeName, Value: round(took.Seconds()), Unit: "s",
		Note: fmt.Sprintf("store.Delete of the network with its %d indexed transactions, while a reader listed networks in a loop: %d reads, p50 %.2f ms, longest %.1f ms", explorerTxs, len(lat), pct(lat, 0.5), pct(lat, 1))})
	return nil
}

// openStore opens the SQLite store in dataDir, or the PostgreSQL one at dsn
// when that is set.
func openStore(ctx context.Context, dataDir, dsn string) (*sqlstore.Store, error) {
	if dsn == "" {
		return sqlite.Open(ctx, filepath.Join(dataDir, sqliteFile))
	}
	return postgres.Open(ctx, dsn)
}

// fillExplorer writes the network and its index into the store the server
// will open, and reports how long writing the index took and with how many
// writers.
func fillExplorer(ctx context.Context, dataDir, dsn string) (time.Duration, int, error) {
	st, err := openStore(ctx, dataDir, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()

	n, err := apis.DecodeNetwork(fmt.Appendf(nil, `apiVersion: chaindock/v1
kind: Network
metadata: {name: %s}
spec: {chain: cometbft, runtime: process, validators: 4, cometbft: {app: chaindock}}
`, explorerNetwork))
	if err != nil {
		return 0, 0, err
	}
	apis.SetDefaults(n)
	n.Status = apis.NetworkStatus{Phase: apis.PhasePending}
	o, err := store.NetworkToObject(n)
	if err != nil {
		return 0, 0, err
	}
	created, err := st.Create(ctx, o)
	if err != nil {
		return 0, 0, err
	}
	uid, chainID := created.UID, "chaindock-"+explorerNetwork

	// One goroutine builds the batches ahead of the writers, so that the
	// time is the store's. SQLite's store has one connection, which more
	// writers would only queue on; PostgreSQL's has a pool, and its
	// PutBlocks costs a round trip per row, so writers side by side fill
	// it faster. Their batches are out of order for a moment, which
	// nothing sees: no server runs yet.
	writers := 1
	if dsn != "" {
		writers = explorerPostgresWriters
	}
	batches := make(chan []store.Block, writers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	built := make(chan error, 1)
	go func() {
		defer close(batches)
		built <- buildExplorer(ctx, uid, chainID, batches)
	}()
	errs := make(chan error, writers)
	start := time.Now()
	for range writers {
		go func() {
			for b := range batches {
				if err := st.PutBlocks(ctx, b); err != nil {
					cancel()
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var werr error
	for range writers {
		werr = errors.Join(werr, <-errs)
	}
	took := time.Since(start)
	cancel() // a producer that no writer drains any more
	if err := errors.Join(werr, <-built); err != nil {
		return 0, 0, err
	}
	return took, writers, nil
}

// buildExplorer sends the index's blocks with their transactions to out,
// explorerPerPut blocks at a time.
func buildExplorer(ctx context.Context, uid, chainID string, out chan<- []store.Block) error {
	blocks := explorerTxs / explorerPerBlock
	for first := 1; first <= blocks; first += explorerPerPut {
		batch := make([]store.Block, 0, explorerPerPut)
		for h := first; h < first+explorerPerPut && h <= blocks; h++ {
			b := store.Block{
				NetworkUID: uid, Height: int64(h), Time: explorerGenesis.Add(time.Duration(h) * time.Second),
				Hash:     strings.ToUpper(hexSum(fmt.Sprint("block ", h))),
				Proposer: strings.ToUpper(hexSum(fmt.Sprint("validator ", h%4))[:40]),
				AppHash:  strings.ToUpper(hexSum(fmt.Sprint("state ", h))),
				NumTxs:   explorerPerBlock,
			}
			for i := range explorerPerBlock {
				data, err := explorerTx(chainID, (h-1)*explorerPerBlock+i)
				if err != nil {
					return err
				}
				b.Txs = append(b.Txs, store.Tx{NetworkUID: uid, Hash: apptx.Hash(data), Height: b.Height, Index: i, Time: b.Time,
					Type: string(apptx.TypeNotarize), Data: data})
			}
			batch = append(batch, b)
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
