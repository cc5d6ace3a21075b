package app

import (
	"bytes"
	"encoding/json"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/chaindock/chaindock/pkg/apptx"
)

// TestBlockAppliesInOrder checks that each transaction sees the state left
// by the ones before it in the same block, so a double spend fails.
func TestBlockAppliesInOrder(t *testing.T) {
	c := newTestChain(t, Config{})
	alice, bob, carol := newUser(t, 1), newUser(t, 2), newUser(t, 3)
	res := c.block(
		alice.issue("EUR", 100),
		alice.transfer("EUR", bob.addr, 60),
		alice.sign(apptx.Transfer(testChain, alice.pub, alice.nonce+1, "EUR", carol.addr, 60)), // double spend
		bob.transfer("EUR", carol.addr, 25),
		bob.transfer("EUR", carol.addr, 5),
	)
	wantCodes := []uint32{0, 0, apptx.CodeInsufficientFunds, 0, 0}
	for i, r := range res.TxResults {
		if r.Code != wantCodes[i] {
			t.Fatalf("tx %d: code %d (%s), want %d", i, r.Code, r.Log, wantCodes[i])
		}
	}
	for addr, want := range map[string]uint64{alice.addr: 40, bob.addr: 30, carol.addr: 30} {
		var b apptx.Balance
		c.get(apptx.PathAssetBalance, map[string]string{"address": addr, "asset": "EUR"}, &b)
		if b.Amount != want {
			t.Errorf("balance of %s: %d, want %d", addr, b.Amount, want)
		}
	}
	if a := c.account(alice.addr); a.Nonce != 2 {
		t.Fatalf("alice's nonce %d, want 2 (the refused double spend takes none)", a.Nonce)
	}
	var info apptx.AssetInfo
	c.get(apptx.PathAssetInfo+"?symbol=EUR", nil, &info)
	if info.Issuer != alice.addr || info.Supply != 100 {
		t.Fatalf("asset info %+v", info)
	}

	// Bob's history: one incoming, two outgoing, paged two at a time.
	var page1, page2 apptx.History
	c.get(apptx.PathAssetHistory, map[string]any{"address": bob.addr, "limit": 2}, &page1)
	if len(page1.Entries) != 2 || page1.Next != 2 || page1.Entries[0].From != alice.addr || page1.Entries[0].Amount != 60 {
		t.Fatalf("page 1: %+v", page1)
	}
	c.get(apptx.PathAssetHistory, map[string]any{"address": bob.addr, "limit": 2, "after": page1.Next}, &page2)
	if len(page2.Entries) != 1 || page2.Next != 0 || page2.Entries[0].To != carol.addr || page2.Entries[0].Amount != 5 {
		t.Fatalf("page 2: %+v", page2)
	}
	if page2.Entries[0].TxHash != apptx.Hash(bob.sign(apptx.Transfer(testChain, bob.pub, 2, "EUR", carol.addr, 5))) {
		t.Fatal("history entry does not carry the tx hash")
	}

	var in apptx.Info
	c.get(apptx.PathInfo, nil, &in)
	if in.Height != 1 || in.Accounts != 3 || in.Assets != 1 || in.Txs != 4 || !bytes.Equal(in.AppHash, c.hashes[1]) {
		t.Fatalf("info %+v", in)
	}
}

// TestCheckTxAcceptsConsecutiveNonces checks that CheckTx sees earlier
// mempool transactions, and starts again from the committed state.
func TestCheckTxAcceptsConsecutiveNonces(t *testing.T) {
	c := newTestChain(t, Config{})
	alice := newUser(t, 1)
	txs := [][]byte{alice.issue("EUR", 10), alice.notarize("a"), alice.notarize("b")}
	for i, tx := range txs {
		res, err := c.app.CheckTx(t.Context(), &abci.RequestCheckTx{Tx: tx})
		if err != nil || res.Code != 0 {
			t.Fatalf("CheckTx %d: %v %d %s", i, err, res.GetCode(), res.GetLog())
		}
	}
	res, _ := c.app.CheckTx(t.Context(), &abci.RequestCheckTx{Tx: txs[1]})
	if res.Code != apptx.CodeBadNonce {
		t.Fatalf("resubmitted tx: code %d", res.Code)
	}
	c.mustBlock(txs[0])
	for i, tx := range txs[1:] {
		res, _ := c.app.CheckTx(t.Context(), &abci.RequestCheckTx{Tx: tx, Type: abci.CheckTxType_Recheck})
		if res.Code != 0 {
			t.Fatalf("recheck %d: code %d %s", i, res.Code, res.Log)
		}
	}
}

func TestQueries(t *testing.T) {
	c := newTestChain(t, Config{})
	alice := newUser(t, 1)
	c.mustBlock(alice.notarize("x"), alice.issue("EUR", 7))
	tests := []struct {
		name, path string
		data       any
		code       uint32
	}{
		{"account by data", apptx.PathAccount, map[string]string{"address": alice.addr}, 0},
		{"account by path", apptx.PathAccount + "?address=" + alice.addr, nil, 0},
		{"unknown account is empty", apptx.PathAccount, map[string]string{"address": newUser(t, 9).addr}, 0},
		{"bad address", apptx.PathAccount, map[string]string{"address": "xyz"}, apptx.CodeBadQuery},
		{"doc", apptx.PathNotaryDoc, map[string]string{"hash": docHash("x")}, 0},
		{"doc upper-case hash", apptx.PathNotaryDoc + "?hash=" + bytesUpper(docHash("x")), nil, 0},
		{"doc not found", apptx.PathNotaryDoc, map[string]string{"hash": docHash("y")}, apptx.CodeNotFound},
		{"proof not found", apptx.PathNotaryProof, map[string]string{"hash": docHash("y")}, apptx.CodeNotFound},
		{"doc bad hash", apptx.PathNotaryDoc, map[string]string{"hash": "00"}, apptx.CodeBadQuery},
		{"asset", apptx.PathAssetInfo, map[string]string{"symbol": "EUR"}, 0},
		{"asset not found", apptx.PathAssetInfo, map[string]string{"symbol": "USD"}, apptx.CodeNotFound},
		{"history bad limit", apptx.PathAssetHistory, map[string]any{"address": alice.addr, "limit": 0}, apptx.CodeBadQuery},
		{"bad data", apptx.PathInfo, "not an object", apptx.CodeBadQuery},
		{"unknown path", "/nope", nil, apptx.CodeUnknownPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, value, log := c.query(tt.path, tt.data)
			if code != tt.code {
				t.Fatalf("code %d (%s), want %d", code, log, tt.code)
			}
			if code == 0 && !json.Valid(value) {
				t.Fatalf("value is not JSON: %s", value)
			}
			if code != 0 && log == "" {
				t.Fatal("refused query without a log")
			}
		})
	}
}

func bytesUpper(s string) string { return string(bytes.ToUpper([]byte(s))) }

// workload is a fixed series of blocks touching every transaction type.
func workload(t *testing.T) [][][]byte {
	t.Helper()
	alice, bob := newUser(t, 1), newUser(t, 2)
	var blocks [][][]byte
	blocks = append(blocks, [][]byte{alice.issue("EUR", 1000), bob.notarize(docName(0))})
	for i := 1; i < 12; i++ {
		blk := [][]byte{alice.notarize(docName(i)), alice.transfer("EUR", bob.addr, uint64(i))}
		if i%3 == 0 {
			blk = append(blk, bob.transfer("EUR", alice.addr, 1), bob.issue("EUR", 1)) // the second is refused
			bob.nonce--
		}
		if i%4 == 0 { // an empty block
			blk = nil
			alice.nonce -= 2
		}
		blocks = append(blocks, blk)
	}
	return blocks
}

func TestTwoInstancesReachTheSameAppHash(t *testing.T) {
	blocks := workload(t)
	a, b := newTestChain(t, Config{}), newTestChain(t, Config{})
	for i, txs := range blocks {
		ra, rb := a.block(txs...), b.block(txs...)
		if !bytes.Equal(ra.AppHash, rb.AppHash) {
			t.Fatalf("block %d: app hashes differ: %X %X", i+1, ra.AppHash, rb.AppHash)
		}
		for j := range ra.TxResults {
			if ra.TxResults[j].Code != rb.TxResults[j].Code {
				t.Fatalf("block %d tx %d: codes differ", i+1, j)
			}
		}
	}
	if bytes.Equal(a.hashes[1], a.hashes[0]) || !bytes.Equal(a.hashes[5], a.hashes[4]) {
		t.Fatal("app hash must change with the state and only then")
	}
}

func TestReopenAndReplayUncommittedBlock(t *testing.T) {
	blocks := workload(t)
	c := newTestChain(t, Config{})
	for _, txs := range blocks[:6] {
		c.block(txs...)
	}
	c.reopen()
	info := c.info()
	if info.LastBlockHeight != 6 || !bytes.Equal(info.LastBlockAppHash, c.hashes[6]) {
		t.Fatalf("after reopen: height %d hash %X, want 6 %X", info.LastBlockHeight, info.LastBlockAppHash, c.hashes[6])
	}

	lost := c.finalize(blocks[6]...) // the process dies before Commit
	c.reopen()
	info = c.info()
	if info.LastBlockHeight != 6 || !bytes.Equal(info.LastBlockAppHash, c.hashes[6]) {
		t.Fatalf("uncommitted block survived: height %d", info.LastBlockHeight)
	}
	replayed := c.block(blocks[6]...)
	if !bytes.Equal(replayed.AppHash, lost.AppHash) {
		t.Fatalf("replayed app hash %X, first run %X", replayed.AppHash, lost.AppHash)
	}
	for i := range replayed.TxResults {
		if replayed.TxResults[i].Code != lost.TxResults[i].Code {
			t.Fatalf("tx %d: code %d after replay, %d before", i, replayed.TxResults[i].Code, lost.TxResults[i].Code)
		}
	}
}
