package store

import (
	"context"
	"time"
)

// Block is one indexed block of a network's chain.
type Block struct {
	NetworkUID string
	Height     int64
	Hash       string // upper-case hex, as the chain shows it
	Time       time.Time
	Proposer   string
	AppHash    string
	NumTxs     int
	Txs        []Tx // only on PutBlocks; reads leave it empty
}

// Tx is one indexed transaction.
type Tx struct {
	NetworkUID string
	Hash       string // upper-case hex
	Height     int64
	Index      int
	Time       time.Time // its block's time
	Code       uint32    // 0: applied; otherwise refused by the application
	Log        string
	Type       string // the application's transaction type, when known
	Data       []byte // the raw transaction
	Events     []Event
}

// Event is something a transaction emitted, as its chain reported it.
type Event struct {
	Type       string           `json:"type"`
	Contract   string           `json:"contract,omitempty"`
	Attributes []EventAttribute `json:"attributes,omitempty"`
}

// EventAttribute is one key and value of an event.
type EventAttribute struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// TxCursor orders transactions newest first: (height, index) descending.
type TxCursor struct {
	Height int64
	Index  int
}

// LedgerKey is the key under which the explorer keeps the blocks and
// transactions of a ledger of the network with uid: the uid itself for
// the ledger every organisation of the network shares, uid/channel for
// one of some of them (a Fabric channel of spec.fabric.channels).
func LedgerKey(uid, channel string) string {
	if channel == "" {
		return uid
	}
	return uid + "/" + channel
}

// Explorer is the index of blocks and transactions the explorer serves.
// Rows belong to a ledger by its key, LedgerKey, named networkUID below,
// and every ledger of a network goes when the network is deleted.
type Explorer interface {
	// PutBlocks stores blocks with their transactions in one transaction.
	// A block already stored at its height is left as it is, so a batch
	// may be written again after a crash. Callers write a network's blocks
	// in order, from IndexedHeight+1 on with no gap, which is what lets
	// IndexedHeight be the highest height stored. A transaction takes its
	// network, height and time from its block, and its Index is its place
	// in the block's Txs.
	PutBlocks(ctx context.Context, blocks []Block) error
	// IndexedHeight is the height up to which every block of the network
	// is stored (0 when none is).
	IndexedHeight(ctx context.Context, networkUID string) (int64, error)
	// BlockByHeight and BlockByHash return a block or ErrNotFound.
	BlockByHeight(ctx context.Context, networkUID string, height int64) (*Block, error)
	BlockByHash(ctx context.Context, networkUID, hash string) (*Block, error)
	// Blocks lists up to limit blocks below height before (0: from the
	// newest), newest first.
	Blocks(ctx context.Context, networkUID string, before int64, limit int) ([]Block, error)
	// TxByHash returns a transaction or ErrNotFound.
	TxByHash(ctx context.Context, networkUID, hash string) (*Tx, error)
	// Txs lists up to limit transactions older than before (nil: from the
	// newest), newest first; height > 0 keeps only that block's.
	Txs(ctx context.Context, networkUID string, height int64, before *TxCursor, limit int) ([]Tx, error)
	// ForgetChain drops everything indexed for a network, to index it
	// again from its first block.
	ForgetChain(ctx context.Context, networkUID string) error
}
