package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/store"
)

// RunExplorer runs the explorer part of the suite.
func RunExplorer(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	t.Run("PutAndRead", func(t *testing.T) { testPutAndRead(t, open(t)) })
	t.Run("PutAgain", func(t *testing.T) { testPutAgain(t, open(t)) })
	t.Run("BlockPages", func(t *testing.T) { testBlockPages(t, open(t)) })
	t.Run("TxPages", func(t *testing.T) { testTxPages(t, open(t)) })
	t.Run("NetworksApart", func(t *testing.T) { testNetworksApart(t, open(t)) })
	t.Run("ForgetChain", func(t *testing.T) { testForgetChain(t, open(t)) })
	t.Run("ForgetChainLetsOthersIn", func(t *testing.T) { testForgetChainLetsOthersIn(t, open(t)) })
	t.Run("ForgetChainResumes", func(t *testing.T) { testForgetChainResumes(t, open(t)) })
	t.Run("ForgetChainWhileWritten", func(t *testing.T) { testForgetChainWhileWritten(t, open(t)) })
	t.Run("DeleteTakesTheChain", func(t *testing.T) { testDeleteTakesChain(t, open(t)) })
	t.Run("ChannelLedgers", func(t *testing.T) { testChannelLedgers(t, open(t)) })
}

// genesis is the time of block 1; it has nanoseconds, which must survive.
var genesis = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

func blockHash(net string, h int64) string { return fmt.Sprintf("%X", net+fmt.Sprint("/b", h)) }
func txHash(net string, h int64, i int) string {
	return fmt.Sprintf("%X", net+fmt.Sprint("/t", h, "/", i))
}

// chain makes blocks from..to of network net; block h holds h%4
// transactions, so some blocks are empty.
func chain(net string, from, to int64) []store.Block {
	var out []store.Block
	for h := from; h <= to; h++ {
		at := genesis.Add(time.Duration(h) * time.Second)
		b := store.Block{NetworkUID: net, Height: h, Hash: blockHash(net, h), Time: at,
			Proposer: fmt.Sprintf("VAL%d", h%3), AppHash: fmt.Sprintf("APP%d", h), NumTxs: int(h % 4)}
		for i := range b.NumTxs {
			b.Txs = append(b.Txs, store.Tx{Hash: txHash(net, h, i), Index: i, Code: uint32(i), //nolint:gosec // i < 4
				Log: fmt.Sprint("log ", h, i), Type: "/bank.MsgSend", Data: []byte{0, byte(h), byte(i), 255}})
		}
		// Odd blocks' first transactions emitted events: one with
		// attributes (and text beyond ASCII), one with none.
		if h%2 == 1 && b.NumTxs > 0 {
			b.Txs[0].Events = []store.Event{
				{Type: "0xDDF252AD", Contract: fmt.Sprintf("0xC0%d", h), Attributes: []store.EventAttribute{
					{Key: "topic1", Value: fmt.Sprint("from ", h)}, {Key: "data", Value: "€ 0x00"}}},
				{Type: "refund"},
			}
		}
		out = append(out, b)
	}
	return out
}

// read is what a block reads back as: without its transactions.
func read(b store.Block) store.Block {
	b.Txs = nil
	return b
}

// readTx is what a transaction of b reads back as.
func readTx(b store.Block, i int) store.Tx {
	t := b.Txs[i]
	t.NetworkUID, t.Height, t.Time = b.NetworkUID, b.Height, b.Time
	return t
}

func testPutAndRead(t *testing.T, s store.Store) {
	ctx := t.Context()
	if h, err := s.IndexedHeight(ctx, "net"); err != nil || h != 0 {
		t.Fatalf("indexed height of an empty chain: %d %v", h, err)
	}
	blocks := chain("net", 1, 7)
	// A code above what a signed 32-bit column holds, and an empty body.
	blocks[6].Txs[2].Code = 1<<32 - 1
	blocks[6].Txs[1].Data = nil
	must(t, s.PutBlocks(ctx, blocks))
	if h, err := s.IndexedHeight(ctx, "net"); err != nil || h != 7 {
		t.Fatalf("indexed height: %d %v", h, err)
	}
	for _, want := range blocks {
		got, err := s.BlockByHeight(ctx, "net", want.Height)
		if err != nil || !reflect.DeepEqual(*got, read(want)) {
			t.Fatalf("block %d by height:\n got %+v %v\nwant %+v", want.Height, got, err, read(want))
		}
		got, err = s.BlockByHash(ctx, "net", want.Hash)
		if err != nil || !reflect.DeepEqual(*got, read(want)) {
			t.Fatalf("block %d by hash:\n got %+v %v\nwant %+v", want.Height, got, err, read(want))
		}
		for i := range want.Txs {
			got, err := s.TxByHash(ctx, "net", want.Txs[i].Hash)
			if err != nil || !sameTx(*got, readTx(want, i)) {
				t.Fatalf("tx %d/%d by hash:\n got %+v %v\nwant %+v", want.Height, i, got, err, readTx(want, i))
			}
		}
	}
	for _, miss := range []func() error{
		func() error { _, err := s.BlockByHeight(ctx, "net", 8); return err },
		func() error { _, err := s.BlockByHash(ctx, "net", "NOPE"); return err },
		func() error { _, err := s.BlockByHash(ctx, "net", strings.ToLower(blocks[0].Hash)); return err },
		func() error { _, err := s.TxByHash(ctx, "net", "NOPE"); return err },
		func() error { _, err := s.BlockByHeight(ctx, "other", 1); return err },
	} {
		if err := miss(); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "network") {
			t.Fatalf("missing lookup: want ErrNotFound naming the network, got %v", err)
		}
	}
	// The same transaction again in a later block is found there.
	later := chain("net", 8, 10)
	later[2].Txs[1].Hash = blocks[1].Txs[0].Hash
	must(t, s.PutBlocks(ctx, later))
	if got, err := s.TxByHash(ctx, "net", blocks[1].Txs[0].Hash); err != nil || got.Height != 10 || got.Index != 1 {
		t.Fatalf("a transaction included twice: %+v %v", got, err)
	}
	// Height 6 holds two transactions, newest first.
	txs, err := s.Txs(ctx, "net", 6, nil, 0)
	if err != nil || len(txs) != 2 || !sameTx(txs[0], readTx(blocks[5], 1)) || !sameTx(txs[1], readTx(blocks[5], 0)) {
		t.Fatalf("transactions of block 6: %+v %v", txs, err)
	}
	if txs, err := s.Txs(ctx, "net", 4, nil, 0); err != nil || len(txs) != 0 {
		t.Fatalf("transactions of the empty block 4: %+v %v", txs, err)
	}
	if txs, err := s.Txs(ctx, "net", 6, &store.TxCursor{Height: 6, Index: 1}, 0); err != nil || len(txs) != 1 || txs[0].Index != 0 {
		t.Fatalf("transactions of block 6 before its second: %+v %v", txs, err)
	}
}

// sameTx compares transactions, an empty body equal to none.
func sameTx(a, b store.Tx) bool {
	if len(a.Data) == 0 && len(b.Data) == 0 {
		a.Data, b.Data = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func testPutAgain(t *testing.T, s store.Store) {
	ctx := t.Context()
	blocks := chain("net", 1, 10)
	must(t, s.PutBlocks(ctx, blocks[:6]))
	// A crash after the commit and before the caller learnt of it: the
	// batch comes again, overlapping the next one, with different content
	// that must not replace what is stored.
	again := chain("net", 1, 10)
	again[2].Proposer = "OTHER"
	again[2].Txs[0].Log = "other"
	must(t, s.PutBlocks(ctx, again))
	must(t, s.PutBlocks(ctx, nil))
	if h, err := s.IndexedHeight(ctx, "net"); err != nil || h != 10 {
		t.Fatalf("indexed height: %d %v", h, err)
	}
	all, err := s.Blocks(ctx, "net", 0, 1000)
	if err != nil || len(all) != 10 {
		t.Fatalf("blocks after a second put: %d %v", len(all), err)
	}
	if b, _ := s.BlockByHeight(ctx, "net", 3); b.Proposer != blocks[2].Proposer {
		t.Fatalf("a second put replaced block 3: %+v", b)
	}
	if tx, _ := s.TxByHash(ctx, "net", blocks[2].Txs[0].Hash); tx.Log != blocks[2].Txs[0].Log {
		t.Fatalf("a second put replaced a transaction: %+v", tx)
	}
	txs, err := s.Txs(ctx, "net", 0, nil, 1000)
	if err != nil || len(txs) != countTxs(blocks) {
		t.Fatalf("transactions after a second put: %d, want %d, %v", len(txs), countTxs(blocks), err)
	}
	// A transaction out of its place is refused, and the batch with it.
	bad := chain("net", 11, 12)
	bad[0].Txs[0].Index = 1
	if err := s.PutBlocks(ctx, bad); err == nil {
		t.Fatal("a block with two transactions at index 1 was stored")
	}
	if h, _ := s.IndexedHeight(ctx, "net"); h != 10 {
		t.Fatalf("indexed height after a refused batch: %d", h)
	}
}

func countTxs(blocks []store.Block) int {
	n := 0
	for _, b := range blocks {
		n += len(b.Txs)
	}
	return n
}

func testBlockPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.PutBlocks(ctx, chain("net", 1, 250)))
	if got, err := s.Blocks(ctx, "net", 0, 0); err != nil || len(got) != 100 || got[0].Height != 250 {
		t.Fatalf("default page: %d blocks from %v, %v", len(got), got[0].Height, err)
	}
	for _, limit := range []int{1, 7, 100, 5000} {
		want := int64(250)
		before := int64(0)
		for {
			page, err := s.Blocks(ctx, "net", before, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, b := range page {
				if b.Height != want {
					t.Fatalf("limit %d: got block %d, want %d", limit, b.Height, want)
				}
				want--
			}
			before = page[len(page)-1].Height
		}
		if want != 0 {
			t.Fatalf("limit %d: pages stopped at %d", limit, want)
		}
	}
	if got, _ := s.Blocks(ctx, "net", 3, 10); len(got) != 2 || got[0].Height != 2 {
		t.Fatalf("blocks before 3: %+v", got)
	}
}

func testTxPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	blocks := chain("net", 1, 1500)
	must(t, s.PutBlocks(ctx, blocks))
	var want []string // newest first
	for h := len(blocks) - 1; h >= 0; h-- {
		for i := len(blocks[h].Txs) - 1; i >= 0; i-- {
			want = append(want, fmt.Sprint(blocks[h].Height, "/", i))
		}
	}
	if got, err := s.Txs(ctx, "net", 0, nil, 5000); err != nil || len(got) != 1000 {
		t.Fatalf("a page above the largest size: %d %v", len(got), err)
	}
	if got, err := s.Txs(ctx, "net", 0, nil, 0); err != nil || len(got) != 100 {
		t.Fatalf("default page: %d %v", len(got), err)
	}
	for _, limit := range []int{1, 10, 333, 1000} {
		var got []string
		var before *store.TxCursor
		for {
			page, err := s.Txs(ctx, "net", 0, before, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, tx := range page {
				got = append(got, fmt.Sprint(tx.Height, "/", tx.Index))
			}
			last := page[len(page)-1]
			before = &store.TxCursor{Height: last.Height, Index: last.Index}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("limit %d: %d transactions over the pages, want %d, or out of order", limit, len(got), len(want))
		}
	}
	// One block's transactions, a page at a time.
	page, err := s.Txs(ctx, "net", 1499, nil, 2)
	if err != nil || len(page) != 2 || page[0].Index != 2 || page[1].Index != 1 {
		t.Fatalf("first page of block 1499: %+v %v", page, err)
	}
	page, err = s.Txs(ctx, "net", 1499, &store.TxCursor{Height: 1499, Index: 1}, 2)
	if err != nil || len(page) != 1 || page[0].Height != 1499 || page[0].Index != 0 {
		t.Fatalf("second page of block 1499: %+v %v", page, err)
	}
}

func testNetworksApart(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.PutBlocks(ctx, chain("a", 1, 5)))
	must(t, s.PutBlocks(ctx, chain("b", 1, 3)))
	// The same hashes on two chains, as when one is a copy of the other.
	copied := chain("a", 6, 6)
	for i := range copied {
		copied[i].NetworkUID = "b"
		copied[i].Height = 4
	}
	must(t, s.PutBlocks(ctx, copied))
	if h, _ := s.IndexedHeight(ctx, "a"); h != 5 {
		t.Fatalf("indexed height of a: %d", h)
	}
	if h, _ := s.IndexedHeight(ctx, "b"); h != 4 {
		t.Fatalf("indexed height of b: %d", h)
	}
	if blocks, _ := s.Blocks(ctx, "b", 0, 0); len(blocks) != 4 {
		t.Fatalf("blocks of b: %+v", blocks)
	}
	if b, err := s.BlockByHash(ctx, "b", blockHash("a", 6)); err != nil || b.NetworkUID != "b" || b.Height != 4 {
		t.Fatalf("copied block on b: %+v %v", b, err)
	}
	if _, err := s.BlockByHash(ctx, "a", blockHash("a", 6)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b's block found on a: %v", err)
	}
	if _, err := s.TxByHash(ctx, "b", txHash("a", 5, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a's transaction found on b: %v", err)
	}
	txs, _ := s.Txs(ctx, "a", 0, nil, 0)
	for _, tx := range txs {
		if tx.NetworkUID != "a" {
			t.Fatalf("transactions of a include %+v", tx)
		}
	}
	if len(txs) != countTxs(chain("a", 1, 5)) {
		t.Fatalf("transactions of a: %d", len(txs))
	}
}

func testForgetChain(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.PutBlocks(ctx, chain("a", 1, 5)))
	must(t, s.PutBlocks(ctx, chain("b", 1, 5)))
	must(t, s.ForgetChain(ctx, "a"))
	must(t, s.ForgetChain(ctx, "a"))
	assertNoChain(t, s, "a")
	if h, _ := s.IndexedHeight(ctx, "b"); h != 5 {
		t.Fatalf("forgetting a took b's blocks: %d", h)
	}
	// Indexed again from its first block, with what the chain says now.
	again := chain("a", 1, 2)
	again[1].AppHash = "NEW"
	must(t, s.PutBlocks(ctx, again))
	if b, err := s.BlockByHeight(ctx, "a", 2); err != nil || b.AppHash != "NEW" {
		t.Fatalf("block 2 indexed again: %+v %v", b, err)
	}
}

func assertNoChain(t *testing.T, s store.Store, net string) {
	t.Helper()
	ctx := t.Context()
	if h, err := s.IndexedHeight(ctx, net); err != nil || h != 0 {
		t.Fatalf("indexed height of %s: %d %v", net, h, err)
	}
	if b, err := s.Blocks(ctx, net, 0, 0); err != nil || len(b) != 0 {
		t.Fatalf("blocks of %s: %+v %v", net, b, err)
	}
	if txs, err := s.Txs(ctx, net, 0, nil, 0); err != nil || len(txs) != 0 {
		t.Fatalf("transactions of %s: %+v %v", net, txs, err)
	}
	if _, err := s.TxByHash(ctx, net, txHash(net, 1, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("transaction of %s: %v", net, err)
	}
}

// wideChain makes blocks from..to of network net with ten transactions
// each. Stores delete a chain a few thousand rows at a time (sqlstore:
// about 5,000 a step), so that a few thousand such blocks take several
// steps.
func wideChain(net string, from, to int64) []store.Block {
	var out []store.Block
	for h := from; h <= to; h++ {
		b := store.Block{NetworkUID: net, Height: h, Hash: blockHash(net, h), Time: genesis.Add(time.Duration(h) * time.Second),
			Proposer: "VAL", AppHash: fmt.Sprint("APP", h), NumTxs: 10}
		for i := range b.NumTxs {
			b.Txs = append(b.Txs, store.Tx{Hash: txHash(net, h, i), Index: i, Type: "/bank.MsgSend", Data: []byte{byte(h), byte(i)}})
		}
		out = append(out, b)
	}
	return out
}

// leftOf is the lowest and the highest height of what is left of the
// chain of net (0, 0 for nothing), once checked that it is whole: every
// block between them, each with all its transactions, and IndexedHeight
// the highest. The chain must not be changing.
func leftOf(t *testing.T, s store.Store, net string) (low, high int64) {
	t.Helper()
	ctx := t.Context()
	txs := 0
	for before := int64(0); ; {
		page, err := s.Blocks(ctx, net, before, 1000)
		must(t, err)
		if len(page) == 0 {
			break
		}
		for _, b := range page {
			if high == 0 {
				high = b.Height
			} else if b.Height != low-1 {
				t.Fatalf("chain of %s has block %d below block %d", net, b.Height, low)
			}
			low = b.Height
			txs += b.NumTxs
		}
		before = page[len(page)-1].Height
	}
	n := 0
	var cur *store.TxCursor
	for {
		page, err := s.Txs(ctx, net, 0, cur, 1000)
		must(t, err)
		if len(page) == 0 {
			break
		}
		n += len(page)
		last := page[len(page)-1]
		cur = &store.TxCursor{Height: last.Height, Index: last.Index}
	}
	if n != txs {
		t.Fatalf("chain of %s, blocks %d-%d, has %d transactions, its blocks %d", net, low, high, n, txs)
	}
	if h, err := s.IndexedHeight(ctx, net); err != nil || h != high {
		t.Fatalf("chain of %s, blocks %d-%d, is indexed up to %d (%v)", net, low, high, h, err)
	}
	return low, high
}

// takeTurns limits a store with a pool of connections (PostgreSQL) to
// one, as SQLite's is: the test's calls then take turns with the steps of
// a deletion, each waiting for at most one step, instead of running beside
// them. Beside them, a deletion of a few thousand blocks can be over before
// a busy machine schedules the test's next call, and the test would see
// nothing of it.
func takeTurns(t *testing.T, s store.Store) {
	t.Helper()
	if d, ok := s.(interface{ DB() *sql.DB }); ok {
		d.DB().SetMaxOpenConns(1)
	}
}

// begun reports whether the deletion of the chain of net, from block 1
// up, has begun.
func begun(t *testing.T, s store.Store, net string) bool {
	t.Helper()
	_, err := s.BlockByHeight(t.Context(), net, 1)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err != nil
}

// inBackground runs f in a goroutine and returns its error's channel; the
// test waits for it at its end.
func inBackground(t *testing.T, f func() error) <-chan error {
	t.Helper()
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(finished)
		done <- f()
	}()
	t.Cleanup(func() { <-finished })
	return done
}

// deleteMidway runs del, which deletes the chain of net (blocks 1..top),
// and cancels its context once part of the chain is gone. It returns
// del's error, failing the test when del finished first.
func deleteMidway(t *testing.T, s store.Store, net string, top int64, del func(ctx context.Context) error) error {
	t.Helper()
	takeTurns(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := inBackground(t, func() error { return del(ctx) })
	for {
		select {
		case err := <-done:
			t.Fatalf("the deletion of %d blocks of %s ended before it could be cancelled: %v", top, net, err)
		default:
		}
		if begun(t, s, net) {
			cancel()
			return <-done
		}
	}
}

// testForgetChainLetsOthersIn forgets a chain of many more rows than a
// step deletes, and checks that other calls complete between the steps,
// while IndexedHeight stays until the chain is gone.
func testForgetChainLetsOthersIn(t *testing.T, s store.Store) {
	ctx := t.Context()
	const top = 4000
	must(t, s.PutBlocks(ctx, wideChain("a", 1, top)))
	must(t, s.PutBlocks(ctx, chain("b", 1, 5)))
	other, err := s.Create(ctx, &store.Object{Kind: apis.KindNetwork, Name: "other", Spec: []byte("{}")})
	must(t, err)
	takeTurns(t, s)

	forgot := inBackground(t, func() error { return s.ForgetChain(ctx, "a") })
	// Once block 1 is gone, a call that completes before the top block
	// goes ran while ForgetChain did, rather than wait for it to finish.
	between := map[string]int{} // calls by kind
	bTop := int64(5)
wait:
	for started, i := false, 0; ; {
		select {
		case err := <-forgot:
			must(t, err)
			break wait
		default:
		}
		if !started {
			started = begun(t, s, "a")
			continue
		}
		call := "get"
		if i++; i%2 == 0 {
			_, err = s.Get(ctx, other.Kind, other.Name)
		} else {
			call, bTop = "put", bTop+1
			err = s.PutBlocks(ctx, chain("b", bTop, bTop))
		}
		must(t, err)
		switch h, err := s.IndexedHeight(ctx, "a"); {
		case err != nil:
			t.Fatal(err)
		case h == top:
			between[call]++
		case h != 0:
			t.Fatalf("indexed height of a chain being forgotten went from %d to %d", top, h)
		}
	}
	if between["get"] == 0 || between["put"] == 0 {
		t.Fatalf("while ForgetChain took %d blocks, calls that ran between its steps: %v; want gets and puts of another chain", top, between)
	}
	assertNoChain(t, s, "a")
	if got, _ := s.IndexedHeight(ctx, "b"); got != bTop {
		t.Fatalf("indexed height of b, written while a was forgotten: %d, want %d", got, bTop)
	}
}

// testForgetChainResumes cuts ForgetChain short: what is left is the
// chain's newest blocks, whole, and the next ForgetChain takes them and
// what was written on top since.
func testForgetChainResumes(t *testing.T, s store.Store) {
	ctx := t.Context()
	const top = 1500
	must(t, s.PutBlocks(ctx, wideChain("a", 1, top)))
	must(t, s.PutBlocks(ctx, chain("b", 1, 5)))
	if err := deleteMidway(t, s, "a", top, func(ctx context.Context) error { return s.ForgetChain(ctx, "a") }); err == nil {
		t.Fatal("ForgetChain ended before its context was cancelled")
	}
	if low, high := leftOf(t, s, "a"); low <= 1 || high != top {
		t.Fatalf("a ForgetChain cut short left blocks %d-%d of 1-%d", low, high, top)
	}
	// An indexer writes the chain's new blocks on top.
	must(t, s.PutBlocks(ctx, wideChain("a", top+1, top+50)))
	if _, high := leftOf(t, s, "a"); high != top+50 {
		t.Fatalf("highest block after writing on a part-forgotten chain: %d, want %d", high, top+50)
	}
	must(t, s.ForgetChain(ctx, "a"))
	assertNoChain(t, s, "a")
	if got, _ := s.IndexedHeight(ctx, "b"); got != 5 {
		t.Fatalf("forgetting a took b's blocks: %d", got)
	}
}

// testForgetChainWhileWritten forgets a chain while its new blocks are
// written on top, as an indexer does: the deletion ends, taking them, and
// what is left is at most the batches written after its last step.
func testForgetChainWhileWritten(t *testing.T, s store.Store) {
	ctx := t.Context()
	const top, batch = 1500, 20
	must(t, s.PutBlocks(ctx, wideChain("a", 1, top)))
	takeTurns(t, s)
	forgot := inBackground(t, func() error { return s.ForgetChain(ctx, "a") })
	next, batches := int64(top+1), 0
wait:
	for {
		select {
		case err := <-forgot:
			must(t, err)
			break wait
		default:
		}
		must(t, s.PutBlocks(ctx, wideChain("a", next, next+batch-1)))
		next, batches = next+batch, batches+1
	}
	if batches < 2 {
		t.Fatalf("only %d batches were written while ForgetChain took %d blocks", batches, top)
	}
	if low, high := leftOf(t, s, "a"); low != 0 && (low <= top || (low-top-1)%batch != 0 || high != next-1) {
		t.Fatalf("left of a chain forgotten while written: blocks %d-%d, want none or the last batches, up to %d", low, high, next-1)
	}
}

func testDeleteTakesChain(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, err := s.Create(ctx, &store.Object{Kind: apis.KindNetwork, Name: "a", Spec: []byte("{}")})
	must(t, err)
	b, err := s.Create(ctx, &store.Object{Kind: apis.KindNetwork, Name: "b", Spec: []byte("{}")})
	must(t, err)
	// More than one step of ForgetChain, and Delete cut short on the way.
	const top = 1500
	must(t, s.PutBlocks(ctx, wideChain(a.UID, 1, top)))
	must(t, s.PutBlocks(ctx, chain(b.UID, 1, 5)))
	must(t, s.PutBlob(ctx, a.UID, "plan", []byte("p")))
	if err := deleteMidway(t, s, a.UID, top, func(ctx context.Context) error { return s.Delete(ctx, a.Kind, a.Name, a.UID) }); err == nil {
		t.Fatal("Delete ended before its context was cancelled")
	}
	// The network and what it owns stay until its chain is gone.
	if _, err := s.Get(ctx, a.Kind, a.Name); err != nil {
		t.Fatalf("a Delete cut short removed the network: %v", err)
	}
	if _, err := s.GetBlob(ctx, a.UID, "plan"); err != nil {
		t.Fatalf("a Delete cut short removed the network's blob: %v", err)
	}
	if low, high := leftOf(t, s, a.UID); low <= 1 || high != top {
		t.Fatalf("a Delete cut short left blocks %d-%d of 1-%d", low, high, top)
	}
	must(t, s.Delete(ctx, a.Kind, a.Name, a.UID))
	if _, err := s.Get(ctx, a.Kind, a.Name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("network after Delete: %v", err)
	}
	if _, err := s.GetBlob(ctx, a.UID, "plan"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("blob after Delete: %v", err)
	}
	assertNoChain(t, s, a.UID)
	if h, _ := s.IndexedHeight(ctx, b.UID); h != 5 {
		t.Fatalf("deleting a took b's blocks: %d", h)
	}
	if _, err := s.TxByHash(ctx, b.UID, txHash(b.UID, 1, 0)); err != nil {
		t.Fatalf("deleting a took b's transactions: %v", err)
	}
}

// testChannelLedgers keeps a network's channels apart from its shared
// ledger and from another network's channel of the same name, and
// deleting the network takes every one of its ledgers, one of them over
// more than one step of ForgetChain, and no other network's.
func testChannelLedgers(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, err := s.Create(ctx, &store.Object{Kind: apis.KindNetwork, Name: "a", Spec: []byte("{}")})
	must(t, err)
	b, err := s.Create(ctx, &store.Object{Kind: apis.KindNetwork, Name: "b", Spec: []byte("{}")})
	must(t, err)
	aPair, aTrade, bPair := store.LedgerKey(a.UID, "pair"), store.LedgerKey(a.UID, "trade"), store.LedgerKey(b.UID, "pair")
	if store.LedgerKey(a.UID, "") != a.UID || aPair != a.UID+"/pair" {
		t.Fatalf("ledger keys of %s: %q, %q", a.UID, store.LedgerKey(a.UID, ""), aPair)
	}
	must(t, s.PutBlocks(ctx, chain(a.UID, 1, 3)))
	must(t, s.PutBlocks(ctx, wideChain(aPair, 1, 1500)))
	must(t, s.PutBlocks(ctx, chain(aTrade, 1, 2)))
	must(t, s.PutBlocks(ctx, chain(b.UID, 1, 4)))
	must(t, s.PutBlocks(ctx, chain(bPair, 1, 6)))
	for key, want := range map[string]int64{a.UID: 3, aPair: 1500, aTrade: 2, b.UID: 4, bPair: 6} {
		if h, err := s.IndexedHeight(ctx, key); err != nil || h != want {
			t.Fatalf("indexed height of %s: %d %v, want %d", key, h, err, want)
		}
	}
	// Blocks and transactions are found in their own ledger only.
	if _, err := s.TxByHash(ctx, a.UID, txHash(aTrade, 1, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a channel's transaction in the shared ledger: %v", err)
	}
	if tx, err := s.TxByHash(ctx, aTrade, txHash(aTrade, 1, 0)); err != nil || tx.NetworkUID != aTrade {
		t.Fatalf("a channel's transaction: %+v %v", tx, err)
	}
	if blk, err := s.BlockByHash(ctx, aTrade, blockHash(a.UID, 2)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the shared ledger's block in a channel: %+v %v", blk, err)
	}
	if txs, err := s.Txs(ctx, bPair, 0, nil, 100); err != nil || len(txs) != 1+2+3+0+1+2 || txs[0].NetworkUID != bPair {
		t.Fatalf("transactions of %s: %d %v", bPair, len(txs), err)
	}
	// Forgetting the shared ledger leaves the channels.
	must(t, s.ForgetChain(ctx, b.UID))
	assertNoChain(t, s, b.UID)
	if h, _ := s.IndexedHeight(ctx, bPair); h != 6 {
		t.Fatalf("forgetting %s took its channel's blocks: %d left", b.UID, h)
	}

	must(t, s.Delete(ctx, a.Kind, a.Name, a.UID))
	for _, key := range []string{a.UID, aPair, aTrade} {
		assertNoChain(t, s, key)
	}
	if h, _ := s.IndexedHeight(ctx, bPair); h != 6 {
		t.Fatalf("deleting a took %s's blocks: %d left", bPair, h)
	}
	if _, err := s.TxByHash(ctx, bPair, txHash(bPair, 1, 0)); err != nil {
		t.Fatalf("deleting a took %s's transactions: %v", bPair, err)
	}
	must(t, s.Delete(ctx, b.Kind, b.Name, b.UID))
	assertNoChain(t, s, bPair)
}
