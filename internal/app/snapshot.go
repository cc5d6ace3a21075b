package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/chaindock/chaindock/pkg/apptx"
)

// SnapshotFormat is the only snapshot format: the database's key-value pairs
// in key order, each as apptx.EncodeLeaf(key, value), cut into chunks.
const SnapshotFormat uint32 = 1

// snapshotMeta is Dir/snapshots/<height>/meta.json; its ChunkHashes are also
// the ABCI snapshot's metadata.
type snapshotMeta struct {
	Height      uint64   `json:"height"`
	Format      uint32   `json:"format"`
	Hash        []byte   `json:"hash"`
	AppHash     []byte   `json:"appHash"`
	ChunkHashes [][]byte `json:"chunkHashes"`
}

type abciMetadata struct {
	ChunkHashes [][]byte `json:"chunkHashes"`
}

type snapshotStore struct {
	mu        sync.Mutex
	dir       string
	keep      int
	chunkSize int
}

func (s *snapshotStore) heightDir(h uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d", h))
}

// create writes a snapshot from pairs, which yields the key-value pairs of
// one consistent view in key order, then prunes old snapshots.
func (s *snapshotStore) create(height uint64, appHash []byte, pairs func(yield func(k, v []byte) error) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tmp := filepath.Join(s.dir, fmt.Sprintf("tmp-%d", height))
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	meta := snapshotMeta{Height: height, Format: SnapshotFormat, AppHash: appHash}
	total := sha256.New()
	var chunk []byte
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		name := filepath.Join(tmp, fmt.Sprintf("chunk-%06d", len(meta.ChunkHashes)))
		if err := os.WriteFile(name, chunk, 0o600); err != nil {
			return err
		}
		sum := sha256.Sum256(chunk)
		meta.ChunkHashes = append(meta.ChunkHashes, sum[:])
		total.Write(chunk)
		chunk = chunk[:0]
		return nil
	}
	err := pairs(func(k, v []byte) error {
		rec := apptx.EncodeLeaf(k, v)
		for len(rec) > 0 {
			n := min(len(rec), s.chunkSize-len(chunk))
			chunk = append(chunk, rec[:n]...)
			rec = rec[n:]
			if len(chunk) == s.chunkSize {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	meta.Hash = total.Sum(nil)
	bz, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), bz, 0o600); err != nil {
		return err
	}
	final := s.heightDir(height)
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return s.prune()
}

// heights lists the complete snapshots, oldest first.
func (s *snapshotStore) heights() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var hs []uint64
	for _, e := range entries {
		if h, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && e.IsDir() && !strings.HasPrefix(e.Name(), "tmp-") {
			hs = append(hs, h)
		}
	}
	slices.Sort(hs)
	return hs, nil
}

func (s *snapshotStore) prune() error {
	hs, err := s.heights()
	if err != nil {
		return err
	}
	for len(hs) > s.keep {
		if err := os.RemoveAll(s.heightDir(hs[0])); err != nil {
			return err
		}
		hs = hs[1:]
	}
	return nil
}

func (s *snapshotStore) list() ([]*abci.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs, err := s.heights()
	if err != nil {
		return nil, err
	}
	out := make([]*abci.Snapshot, 0, len(hs))
	for _, h := range hs {
		bz, err := os.ReadFile(filepath.Join(s.heightDir(h), "meta.json"))
		if err != nil {
			return nil, err
		}
		var m snapshotMeta
		if err := json.Unmarshal(bz, &m); err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", h, err)
		}
		md, err := json.Marshal(abciMetadata{ChunkHashes: m.ChunkHashes})
		if err != nil {
			return nil, err
		}
		if len(m.ChunkHashes) > math.MaxUint32 {
			return nil, fmt.Errorf("snapshot %d: too many chunks", h)
		}
		chunks := uint32(len(m.ChunkHashes)) //nolint:gosec // bounded just above
		out = append(out, &abci.Snapshot{Height: m.Height, Format: m.Format, Chunks: chunks,
			Hash: m.Hash, Metadata: md})
	}
	return out, nil
}

func (s *snapshotStore) chunk(height uint64, index uint32) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bz, err := os.ReadFile(filepath.Join(s.heightDir(height), fmt.Sprintf("chunk-%06d", index)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return bz, err
}

// startSnapshot snapshots the state just committed from a goleveldb
// snapshot, in the background, so Commit returns at once. Called with a.mu
// held.
func (a *App) startSnapshot() {
	snap, err := a.db.DB().GetSnapshot()
	if err != nil {
		a.log.Error("snapshot", "height", a.height, "err", err)
		return
	}
	height, appHash := heightU(a.height), slices.Clone(a.appHash)
	a.snapWG.Go(func() {
		defer snap.Release()
		it := snap.NewIterator(nil, nil)
		defer it.Release()
		err := a.snaps.create(height, appHash, func(yield func(k, v []byte) error) error {
			for it.Next() {
				if err := yield(it.Key(), it.Value()); err != nil {
					return err
				}
			}
			return it.Error()
		})
		if err != nil {
			a.log.Error("snapshot", "height", height, "err", err)
			return
		}
		a.log.Info("snapshot written", "height", height, "app_hash", fmt.Sprintf("%X", appHash))
	})
}

// ListSnapshots lists the snapshots kept on disk.
func (a *App) ListSnapshots(context.Context, *abci.RequestListSnapshots) (*abci.ResponseListSnapshots, error) {
	list, err := a.snaps.list()
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	return &abci.ResponseListSnapshots{Snapshots: list}, nil
}

// LoadSnapshotChunk returns one chunk; an unknown one is empty.
func (a *App) LoadSnapshotChunk(_ context.Context, req *abci.RequestLoadSnapshotChunk) (*abci.ResponseLoadSnapshotChunk, error) {
	if req.Format != SnapshotFormat {
		return &abci.ResponseLoadSnapshotChunk{}, nil
	}
	bz, err := a.snaps.chunk(req.Height, req.Chunk)
	if err != nil {
		return nil, fmt.Errorf("load snapshot chunk: %w", err)
	}
	return &abci.ResponseLoadSnapshotChunk{Chunk: bz}, nil
}

// restore is a state sync in progress.
type restore struct {
	snapshot    *abci.Snapshot
	appHash     []byte
	chunkHashes [][]byte
	chunks      [][]byte
	received    int
}

// OfferSnapshot accepts a snapshot of format 1 above the committed height.
func (a *App) OfferSnapshot(_ context.Context, req *abci.RequestOfferSnapshot) (*abci.ResponseOfferSnapshot, error) {
	if err := a.lock(); err != nil {
		return nil, err
	}
	defer a.mu.Unlock()
	reject := &abci.ResponseOfferSnapshot{Result: abci.ResponseOfferSnapshot_REJECT}
	s := req.Snapshot
	switch {
	case s == nil:
		return reject, nil
	case s.Format != SnapshotFormat:
		return &abci.ResponseOfferSnapshot{Result: abci.ResponseOfferSnapshot_REJECT_FORMAT}, nil
	case int64(s.Height) <= a.height || len(req.AppHash) == 0 || s.Chunks == 0: //nolint:gosec // heights are far below 2^63
		return reject, nil
	}
	var md abciMetadata
	if err := json.Unmarshal(s.Metadata, &md); err != nil || len(md.ChunkHashes) != int(s.Chunks) {
		return reject, nil
	}
	a.restoring = &restore{snapshot: s, appHash: slices.Clone(req.AppHash), chunkHashes: md.ChunkHashes,
		chunks: make([][]byte, s.Chunks)}
	a.log.Info("snapshot offered", "height", s.Height, "chunks", s.Chunks)
	return &abci.ResponseOfferSnapshot{Result: abci.ResponseOfferSnapshot_ACCEPT}, nil
}

// ApplySnapshotChunk checks each chunk against the snapshot's metadata and,
// once all are in, verifies the whole state against the trusted app hash
// before replacing the database with it.
func (a *App) ApplySnapshotChunk(_ context.Context, req *abci.RequestApplySnapshotChunk) (*abci.ResponseApplySnapshotChunk, error) {
	if err := a.lock(); err != nil {
		return nil, err
	}
	defer a.mu.Unlock()
	r := a.restoring
	if r == nil {
		return &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_ABORT}, nil
	}
	rejectSnapshot := func(why error) (*abci.ResponseApplySnapshotChunk, error) {
		a.log.Warn("snapshot rejected", "height", r.snapshot.Height, "err", why)
		a.restoring = nil
		return &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT}, nil
	}
	if int(req.Index) >= len(r.chunks) {
		return rejectSnapshot(fmt.Errorf("chunk %d of %d", req.Index, len(r.chunks)))
	}
	if sum := sha256.Sum256(req.Chunk); !bytes.Equal(sum[:], r.chunkHashes[req.Index]) {
		a.log.Warn("snapshot chunk hash mismatch", "height", r.snapshot.Height, "chunk", req.Index, "sender", req.Sender)
		res := &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_RETRY, RefetchChunks: []uint32{req.Index}}
		if req.Sender != "" {
			res.RejectSenders = []string{req.Sender}
		}
		return res, nil
	}
	if r.chunks[req.Index] == nil {
		r.received++
	}
	r.chunks[req.Index] = req.Chunk
	if r.received < len(r.chunks) {
		return &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_ACCEPT}, nil
	}
	pairs, err := verifySnapshot(bytes.Join(r.chunks, nil), r.snapshot, r.appHash)
	if err != nil {
		return rejectSnapshot(err)
	}
	if err := a.replaceState(pairs); err != nil {
		return nil, fmt.Errorf("restore snapshot %d: %w", r.snapshot.Height, err)
	}
	a.restoring = nil
	a.log.Info("snapshot restored", "height", a.height, "app_hash", fmt.Sprintf("%X", a.appHash))
	return &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_ACCEPT}, nil
}

type kv struct{ k, v []byte }

// verifySnapshot decodes a snapshot's content and proves it: the block
// records chain from the genesis app hash of the stored chain ID to the
// trusted app hash, and the state is exactly what their leaves wrote.
func verifySnapshot(content []byte, s *abci.Snapshot, trusted []byte) ([]kv, error) {
	if sum := sha256.Sum256(content); !bytes.Equal(sum[:], s.Hash) {
		return nil, errors.New("content hash differs from the snapshot's")
	}
	var pairs []kv
	meta := map[string][]byte{}
	state := map[string][]byte{}
	var blocks []kv
	for rest := content; len(rest) > 0; {
		k, v, next, err := apptx.ReadLeaf(rest)
		if err != nil {
			return nil, err
		}
		rest = next
		if n := len(pairs); n > 0 && bytes.Compare(pairs[n-1].k, k) >= 0 {
			return nil, fmt.Errorf("key %q out of order", k)
		}
		pairs = append(pairs, kv{k, v})
		switch {
		case bytes.HasPrefix(k, []byte(prefixMeta)):
			meta[string(k)] = v
		case bytes.HasPrefix(k, []byte(prefixBlock)) && len(k) == len(prefixBlock)+8:
			blocks = append(blocks, kv{k, v})
		case isStateKey(k):
			state[string(k)] = v
		default:
			return nil, fmt.Errorf("unexpected key %q", k)
		}
	}
	if len(meta) != 3 || meta[keyChainID] == nil || !bytes.Equal(meta[keyHeight], be64(s.Height)) {
		return nil, errors.New("metadata keys missing or height differs from the snapshot's")
	}
	if !bytes.Equal(meta[keyAppHash], trusted) {
		return nil, fmt.Errorf("stored app hash %X is not the trusted %X", meta[keyAppHash], trusted)
	}
	running := genesisAppHash(string(meta[keyChainID]))
	replayed := map[string][]byte{}
	for _, b := range blocks {
		h := bytesToHeight(b.k[len(prefixBlock):])
		rec, err := decodeBlockRecord(b.v)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", h, err)
		}
		if h > s.Height || !bytes.Equal(rec.PrevAppHash, running) || len(rec.Leaves) == 0 {
			return nil, fmt.Errorf("block %d does not follow the app hash chain", h)
		}
		var last []byte
		for _, leaf := range rec.Leaves {
			k, v, err := apptx.DecodeLeaf(leaf)
			if err != nil {
				return nil, fmt.Errorf("block %d: %w", h, err)
			}
			if (last != nil && bytes.Compare(last, k) >= 0) || !isStateKey(k) {
				return nil, fmt.Errorf("block %d: leaf key %q out of order or not state", h, k)
			}
			last = k
			replayed[string(k)] = v
		}
		running = apptx.NextAppHash(running, merkleRoot(rec.Leaves))
		if !bytes.Equal(rec.AppHash, running) {
			return nil, fmt.Errorf("block %d: app hash does not match its leaves", h)
		}
	}
	if !bytes.Equal(running, trusted) {
		return nil, fmt.Errorf("replayed app hash %X is not the trusted %X", running, trusted)
	}
	if len(replayed) != len(state) {
		return nil, errors.New("state differs from the blocks' writes")
	}
	for k, v := range replayed {
		if !bytes.Equal(state[k], v) {
			return nil, fmt.Errorf("state key %q differs from the blocks' writes", k)
		}
	}
	return pairs, nil
}

func bytesToHeight(b []byte) uint64 {
	var h uint64
	for _, c := range b {
		h = h<<8 | uint64(c)
	}
	return h
}

// replaceState empties the database and writes pairs, in one batch.
func (a *App) replaceState(pairs []kv) error {
	b := a.db.NewBatch()
	defer b.Close()
	it, err := a.db.Iterator(nil, nil)
	if err != nil {
		return err
	}
	var errs []error
	for ; it.Valid(); it.Next() {
		errs = append(errs, b.Delete(slices.Clone(it.Key())))
	}
	errs = append(errs, it.Error(), it.Close())
	for _, p := range pairs {
		errs = append(errs, b.Set(p.k, p.v))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := b.WriteSync(); err != nil {
		return err
	}
	a.pending = nil
	a.check = newOverlay(dbReader{a.db})
	return a.loadMeta()
}
