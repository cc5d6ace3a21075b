package apptx

import (
	"maps"
	"slices"
	"time"

	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
)

// Query paths (see the package documentation).
const (
	PathAccount      = "/account"
	PathNotaryDoc    = "/notary/doc"
	PathNotaryProof  = "/notary/proof"
	PathAssetBalance = "/asset/balance"
	PathAssetHistory = "/asset/history"
	PathAssetInfo    = "/asset/info"
	PathInfo         = "/info"
)

// Account answers /account. An address never seen has nonce 0 and no
// balances.
type Account struct {
	Address  string            `json:"address"`
	Nonce    uint64            `json:"nonce"`
	Balances map[string]uint64 `json:"balances,omitempty"`
	// History is the number of entries of the account's asset history.
	History uint64 `json:"history,omitempty"`
}

// NotaryRecord answers /notary/doc; its JSON encoding is the value the
// application stores, and proves, under DocKey(Hash).
type NotaryRecord struct {
	Hash   string            `json:"hash"`
	Owner  string            `json:"owner"`
	Time   time.Time         `json:"time"`
	Height int64             `json:"height"`
	TxHash string            `json:"txHash"`
	Tags   []string          `json:"tags,omitempty"`
	Meta   map[string]string `json:"meta,omitempty"`
}

// Balance answers /asset/balance.
type Balance struct {
	Address string `json:"address"`
	Asset   string `json:"asset"`
	Amount  uint64 `json:"amount"`
}

// HistoryEntry is one asset movement of an account. For an issue, From and
// To are both the issuer.
type HistoryEntry struct {
	Seq    uint64 `json:"seq"`
	Height int64  `json:"height"`
	TxHash string `json:"txHash"`
	Type   Type   `json:"type"`
	Asset  string `json:"asset"`
	Amount uint64 `json:"amount"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// History answers /asset/history. Next, when not zero, is the "after"
// parameter that fetches the following page.
type History struct {
	Address string         `json:"address"`
	Entries []HistoryEntry `json:"entries"`
	Next    uint64         `json:"next,omitempty"`
}

// AssetInfo answers /asset/info.
type AssetInfo struct {
	Symbol string `json:"symbol"`
	Issuer string `json:"issuer"`
	Supply uint64 `json:"supply"`
}

// Info answers /info.
type Info struct {
	ChainID   string            `json:"chainID"`
	Height    int64             `json:"height"`
	AppHash   cmtbytes.HexBytes `json:"appHash"`
	Accounts  uint64            `json:"accounts"`
	Documents uint64            `json:"documents"`
	Assets    uint64            `json:"assets"`
	Txs       uint64            `json:"txs"`
	// Modules are the modules the answering node's application serves.
	Modules []Module `json:"modules"`
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
