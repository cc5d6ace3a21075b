package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/chaindock/chaindock/pkg/apptx"
)

func listSnapshots(t *testing.T, c *testChainApp) []*abci.Snapshot {
	t.Helper()
	c.app.snapWG.Wait()
	res, err := c.app.ListSnapshots(t.Context(), &abci.RequestListSnapshots{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Snapshots
}

func loadChunks(t *testing.T, c *testChainApp, s *abci.Snapshot) [][]byte {
	t.Helper()
	var chunks [][]byte
	for i := range s.Chunks {
		res, err := c.app.LoadSnapshotChunk(t.Context(), &abci.RequestLoadSnapshotChunk{Height: s.Height, Format: s.Format, Chunk: i})
		if err != nil || len(res.Chunk) == 0 {
			t.Fatalf("chunk %d: %v", i, err)
		}
		chunks = append(chunks, res.Chunk)
	}
	return chunks
}

func offer(t *testing.T, c *testChainApp, s *abci.Snapshot, appHash []byte) abci.ResponseOfferSnapshot_Result {
	t.Helper()
	res, err := c.app.OfferSnapshot(t.Context(), &abci.RequestOfferSnapshot{Snapshot: s, AppHash: appHash})
	if err != nil {
		t.Fatal(err)
	}
	return res.Result
}

func apply(t *testing.T, c *testChainApp, i int, chunk []byte) *abci.ResponseApplySnapshotChunk {
	t.Helper()
	res, err := c.app.ApplySnapshotChunk(t.Context(), &abci.RequestApplySnapshotChunk{Index: uint32(i), Chunk: chunk, Sender: "peer1"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSnapshotRestore(t *testing.T) {
	blocks := workload(t)
	src := newTestChain(t, Config{SnapshotInterval: 4, SnapshotKeep: 2, ChunkSize: 300})
	for _, txs := range blocks {
		src.block(txs...)
	}
	snaps := listSnapshots(t, src)
	if got := []uint64{snaps[0].Height, snaps[len(snaps)-1].Height}; len(snaps) != 2 || got[0] != 8 || got[1] != 12 {
		t.Fatalf("snapshots at %v, want the last two of 4, 8, 12", got)
	}
	snap := snaps[1]
	if snap.Chunks < 3 {
		t.Fatalf("want several chunks, got %d", snap.Chunks)
	}
	chunks := loadChunks(t, src, snap)
	trusted := src.hashes[int64(snap.Height)]

	dst := openTestApp(t, Config{})
	if r := offer(t, dst, &abci.Snapshot{Height: snap.Height, Format: 2, Chunks: 1, Hash: snap.Hash}, trusted); r != abci.ResponseOfferSnapshot_REJECT_FORMAT {
		t.Fatalf("format 2: %v", r)
	}

	t.Run("wrong app hash", func(t *testing.T) {
		if r := offer(t, dst, snap, src.hashes[11]); r != abci.ResponseOfferSnapshot_ACCEPT {
			t.Fatalf("offer: %v", r)
		}
		var last *abci.ResponseApplySnapshotChunk
		for i, ch := range chunks {
			last = apply(t, dst, i, ch)
		}
		if last.Result != abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT || dst.info().LastBlockHeight != 0 {
			t.Fatalf("restored against a wrong app hash: %v", last.Result)
		}
	})

	t.Run("forged content", func(t *testing.T) {
		// Consistent chunk hashes, but a state value no block wrote.
		content := bytes.Join(chunks, nil)
		i := bytes.Index(content, []byte(`"supply":`))
		content = slices.Clone(content)
		content[i+len(`"supply":`)] ^= 1
		sum := sha256.Sum256(content)
		md, _ := json.Marshal(abciMetadata{ChunkHashes: [][]byte{sum[:]}})
		forged := &abci.Snapshot{Height: snap.Height, Format: 1, Chunks: 1, Hash: sum[:], Metadata: md}
		if r := offer(t, dst, forged, trusted); r != abci.ResponseOfferSnapshot_ACCEPT {
			t.Fatalf("offer: %v", r)
		}
		if r := apply(t, dst, 0, content); r.Result != abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT {
			t.Fatalf("forged snapshot: %v", r.Result)
		}
	})

	if r := offer(t, dst, snap, trusted); r != abci.ResponseOfferSnapshot_ACCEPT {
		t.Fatalf("offer: %v", r)
	}
	corrupt := slices.Clone(chunks[1])
	corrupt[0] ^= 0xff
	apply(t, dst, 0, chunks[0])
	res := apply(t, dst, 1, corrupt)
	if res.Result != abci.ResponseApplySnapshotChunk_RETRY || !slices.Equal(res.RefetchChunks, []uint32{1}) || !slices.Equal(res.RejectSenders, []string{"peer1"}) {
		t.Fatalf("corrupted chunk: %+v", res)
	}
	for i := 1; i < len(chunks); i++ {
		if r := apply(t, dst, i, chunks[i]); r.Result != abci.ResponseApplySnapshotChunk_ACCEPT {
			t.Fatalf("chunk %d: %v", i, r.Result)
		}
	}
	info := dst.info()
	if info.LastBlockHeight != int64(snap.Height) || !bytes.Equal(info.LastBlockAppHash, trusted) {
		t.Fatalf("restored height %d hash %X, want %d %X", info.LastBlockHeight, info.LastBlockAppHash, snap.Height, trusted)
	}
	alice, bob := newUser(t, 1), newUser(t, 2)
	queries := []struct {
		path string
		data any
	}{
		{apptx.PathInfo, nil},
		{apptx.PathAccount, map[string]string{"address": alice.addr}},
		{apptx.PathAccount, map[string]string{"address": bob.addr}},
		{apptx.PathAssetInfo, map[string]string{"symbol": "EUR"}},
		{apptx.PathAssetHistory, map[string]any{"address": bob.addr, "limit": 3, "after": 2}},
		{apptx.PathNotaryDoc, map[string]string{"hash": docHash(docName(5))}},
		{apptx.PathNotaryProof, map[string]string{"hash": docHash(docName(5))}},
		{apptx.PathNotaryProof, map[string]string{"hash": docHash(docName(0))}},
	}
	for _, q := range queries {
		c1, v1, _ := src.query(q.path, q.data)
		c2, v2, _ := dst.query(q.path, q.data)
		if c1 != 0 || c1 != c2 || !bytes.Equal(v1, v2) {
			t.Fatalf("query %s %v: source %d %s, restored %d %s", q.path, q.data, c1, v1, c2, v2)
		}
	}

	// Both go on from the same state.
	dst.height = int64(snap.Height)
	carol := newUser(t, 3)
	next := [][]byte{carol.notarize("after restore")}
	if a, b := src.block(next...), dst.block(next...); !bytes.Equal(a.AppHash, b.AppHash) {
		t.Fatalf("next block: %X vs %X", a.AppHash, b.AppHash)
	}
	if r := offer(t, dst, snaps[0], src.hashes[8]); r != abci.ResponseOfferSnapshot_REJECT {
		t.Fatalf("snapshot below the current height: %v", r)
	}
}
