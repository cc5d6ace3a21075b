package app

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/chaindock/chaindock/pkg/apptx"
)

// Keys. The state proper (what leaves and app hashes cover) is under
// prefixes acct/, asset/, doc/, hist/ and the key stats; blk/ holds each
// block's leaves and meta/ the committed height, app hash and chain ID.
const (
	prefixAccount = "acct/"
	prefixAsset   = "asset/"
	prefixDoc     = "doc/"
	prefixHistory = "hist/"
	keyStats      = "stats"
	prefixBlock   = "blk/"
	prefixMeta    = "meta/"

	keyHeight  = prefixMeta + "height"
	keyAppHash = prefixMeta + "apphash"
	keyChainID = prefixMeta + "chainid"
)

func isStateKey(k []byte) bool {
	for _, p := range []string{prefixAccount, prefixAsset, prefixDoc, prefixHistory} {
		if bytes.HasPrefix(k, []byte(p)) {
			return true
		}
	}
	return string(k) == keyStats
}

func accountKey(addr string) string { return prefixAccount + addr }
func assetKey(sym string) string    { return prefixAsset + sym }

func historyKey(addr string, seq uint64) string {
	return prefixHistory + addr + "/" + string(be64(seq))
}

func blockKey(h int64) []byte { return append([]byte(prefixBlock), be64(heightU(h))...) }

// heightU converts a block height, which is never negative.
func heightU(h int64) uint64 {
	if h < 0 {
		panic(fmt.Sprintf("negative height %d", h))
	}
	return uint64(h)
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// genesisAppHash is the app hash before the first block.
func genesisAppHash(chainID string) []byte {
	return apptx.NextAppHash([]byte("chaindock-app/v1\x00"), []byte(chainID))
}

// stats are the counters /info shows; they are state like any other key.
type stats struct {
	Accounts  uint64 `json:"accounts"`
	Documents uint64 `json:"documents"`
	Assets    uint64 `json:"assets"`
	Txs       uint64 `json:"txs"`
}

// reader is the committed state, or a view over it.
type reader interface {
	get(key string) ([]byte, error)
}

type dbReader struct{ db dbm.DB }

func (r dbReader) get(key string) ([]byte, error) { return r.db.Get([]byte(key)) }

// overlay collects writes over a parent; a child overlay per transaction
// lets a refused transaction leave nothing behind.
type overlay struct {
	parent reader
	writes map[string][]byte
}

func newOverlay(parent reader) *overlay {
	return &overlay{parent: parent, writes: map[string][]byte{}}
}

func (o *overlay) get(key string) ([]byte, error) {
	if v, ok := o.writes[key]; ok {
		return v, nil
	}
	return o.parent.get(key)
}

func (o *overlay) set(key string, value []byte) { o.writes[key] = value }

func (o *overlay) setJSON(key string, v any) {
	bz, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %s: %v", key, err)) // only plain structs are stored
	}
	o.set(key, bz)
}

// getJSON decodes the value at key into v and reports whether it existed.
func (o *overlay) getJSON(key string, v any) (bool, error) {
	return getJSON(o, key, v)
}

func getJSON(r reader, key string, v any) (bool, error) {
	bz, err := r.get(key)
	if err != nil {
		return false, fmt.Errorf("read %q: %w", key, err)
	}
	if bz == nil {
		return false, nil
	}
	if err := json.Unmarshal(bz, v); err != nil {
		return false, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

// mergeInto moves the writes into the parent overlay.
func (o *overlay) mergeInto(parent *overlay) {
	maps.Copy(parent.writes, o.writes)
}

// leaves are the block's writes in key order, each as apptx.EncodeLeaf.
func (o *overlay) leaves() [][]byte {
	keys := slices.Sorted(maps.Keys(o.writes))
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = apptx.EncodeLeaf([]byte(k), o.writes[k])
	}
	return out
}

// blockRecord is what blk/<height> holds for a block that changed the state.
type blockRecord struct {
	PrevAppHash []byte
	AppHash     []byte
	Leaves      [][]byte
}

func (b *blockRecord) encode() []byte {
	var out []byte
	out = apptx.EncodeLeaf(b.PrevAppHash, b.AppHash)
	out = binary.AppendUvarint(out, uint64(len(b.Leaves)))
	for _, l := range b.Leaves {
		out = binary.AppendUvarint(out, uint64(len(l)))
		out = append(out, l...)
	}
	return out
}

func decodeBlockRecord(bz []byte) (*blockRecord, error) {
	prev, app, rest, err := apptx.ReadLeaf(bz)
	if err != nil {
		return nil, fmt.Errorf("block record: %w", err)
	}
	n, m := binary.Uvarint(rest)
	if m <= 0 || n > uint64(len(rest)) {
		return nil, errors.New("block record: bad leaf count")
	}
	rest = rest[m:]
	b := &blockRecord{PrevAppHash: prev, AppHash: app, Leaves: make([][]byte, 0, n)}
	for range n {
		l, k := binary.Uvarint(rest)
		if k <= 0 {
			return nil, errors.New("block record: bad leaf length")
		}
		rest = rest[k:]
		if l > uint64(len(rest)) {
			return nil, errors.New("block record: leaf past the end")
		}
		b.Leaves = append(b.Leaves, rest[:l])
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return nil, errors.New("block record: trailing bytes")
	}
	return b, nil
}
