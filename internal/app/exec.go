package app

import (
	"fmt"
	"math"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/chaindock/chaindock/pkg/apptx"
)

// txContext is where a transaction runs: the block's height and time for a
// delivered one, the next height and a zero time for CheckTx.
type txContext struct {
	chainID string
	height  int64
	time    time.Time
}

// execTx checks and applies one transaction to st. The same rules run in
// CheckTx and FinalizeBlock; a refused transaction writes nothing.
func execTx(st *overlay, raw []byte, tc txContext) *abci.ExecTxResult {
	child := newOverlay(st)
	events, err := applyTx(child, raw, tc)
	if err != nil {
		return &abci.ExecTxResult{Code: apptx.CodeOf(err), Log: err.Error(), Codespace: codespace(err)}
	}
	child.mergeInto(st)
	return &abci.ExecTxResult{Code: apptx.CodeOK, Events: events}
}

func codespace(err error) string {
	if apptx.CodeOf(err) == apptx.CodeInternal {
		return "internal"
	}
	return "chaindock"
}

func refuse(code uint32, format string, args ...any) error {
	return &apptx.Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func applyTx(st *overlay, raw []byte, tc txContext) ([]abci.Event, error) {
	if len(raw) > apptx.MaxTxBytes {
		return nil, refuse(apptx.CodeTooLarge, "transaction: %d bytes, more than %d", len(raw), apptx.MaxTxBytes)
	}
	tx, err := apptx.Decode(raw)
	if err != nil {
		return nil, err
	}
	if err := tx.ValidateBasic(); err != nil {
		return nil, err
	}
	if tx.ChainID != tc.chainID {
		return nil, refuse(apptx.CodeWrongChain, "chainID: %q is not this chain (%q)", tx.ChainID, tc.chainID)
	}
	if err := tx.VerifySignature(); err != nil {
		return nil, err
	}
	from := tx.Sender()
	var acct apptx.Account
	known, err := st.getJSON(accountKey(from), &acct)
	if err != nil {
		return nil, err
	}
	if tx.Nonce != acct.Nonce+1 {
		return nil, refuse(apptx.CodeBadNonce, "nonce: got %d, want %d (the sender's last nonce plus one)", tx.Nonce, acct.Nonce+1)
	}
	var s stats
	if _, err := st.getJSON(keyStats, &s); err != nil {
		return nil, err
	}
	acct.Address = from
	acct.Nonce = tx.Nonce
	if !known {
		s.Accounts++
	}
	txHash := apptx.Hash(raw)
	events := []abci.Event{{Type: "chaindock", Attributes: []abci.EventAttribute{
		{Key: "type", Value: string(tx.Type), Index: true},
		{Key: "sender", Value: from, Index: true},
	}}}

	switch b := tx.Body.(type) {
	case apptx.NotarizeBody:
		key := string(apptx.DocKey(b.Hash))
		existing, err := st.get(key)
		if err != nil {
			return nil, err
		}
		if existing != nil {
			return nil, refuse(apptx.CodeDocExists, "body.hash: document %s is already notarised", b.Hash)
		}
		st.setJSON(key, apptx.NotaryRecord{Hash: b.Hash, Owner: from, Time: tc.time.UTC(), Height: tc.height,
			TxHash: txHash, Tags: b.Tags, Meta: b.Meta})
		s.Documents++
		events[0].Attributes = append(events[0].Attributes, abci.EventAttribute{Key: "doc", Value: b.Hash, Index: true})

	case apptx.IssueBody:
		var info apptx.AssetInfo
		exists, err := st.getJSON(assetKey(b.Asset), &info)
		if err != nil {
			return nil, err
		}
		if exists && info.Issuer != from {
			return nil, refuse(apptx.CodeNotIssuer, "body.asset: %s was issued by %s, not the sender", b.Asset, info.Issuer)
		}
		if info.Supply > math.MaxUint64-b.Amount {
			return nil, refuse(apptx.CodeSupplyOverflow, "body.amount: supply of %s would exceed 2^64-1", b.Asset)
		}
		if !exists {
			info = apptx.AssetInfo{Symbol: b.Asset, Issuer: from}
			s.Assets++
		}
		info.Supply += b.Amount
		st.setJSON(assetKey(b.Asset), info)
		// Cannot overflow: a balance is at most the supply.
		addBalance(&acct, b.Asset, b.Amount)
		appendHistory(st, &acct, apptx.HistoryEntry{Height: tc.height, TxHash: txHash, Type: tx.Type,
			Asset: b.Asset, Amount: b.Amount, From: from, To: from})
		events[0].Attributes = append(events[0].Attributes, abci.EventAttribute{Key: "asset", Value: b.Asset, Index: true})

	case apptx.TransferBody:
		exists, err := st.getJSON(assetKey(b.Asset), new(apptx.AssetInfo))
		if err != nil {
			return nil, err
		}
		if !exists {
			return nil, refuse(apptx.CodeUnknownAsset, "body.asset: %s has never been issued", b.Asset)
		}
		if have := acct.Balances[b.Asset]; have < b.Amount {
			return nil, refuse(apptx.CodeInsufficientFunds, "body.amount: %d %s wanted, the sender has %d", b.Amount, b.Asset, have)
		}
		var to apptx.Account
		toKnown, err := st.getJSON(accountKey(b.To), &to)
		if err != nil {
			return nil, err
		}
		if !toKnown {
			to.Address = b.To
			s.Accounts++
		}
		acct.Balances[b.Asset] -= b.Amount
		if acct.Balances[b.Asset] == 0 {
			delete(acct.Balances, b.Asset)
		}
		addBalance(&to, b.Asset, b.Amount)
		entry := apptx.HistoryEntry{Height: tc.height, TxHash: txHash, Type: tx.Type,
			Asset: b.Asset, Amount: b.Amount, From: from, To: b.To}
		appendHistory(st, &acct, entry)
		appendHistory(st, &to, entry)
		st.setJSON(accountKey(b.To), to)
		events[0].Attributes = append(events[0].Attributes,
			abci.EventAttribute{Key: "asset", Value: b.Asset, Index: true},
			abci.EventAttribute{Key: "recipient", Value: b.To, Index: true})
	}
	s.Txs++
	st.setJSON(accountKey(from), acct)
	st.setJSON(keyStats, s)
	return events, nil
}

func addBalance(a *apptx.Account, asset string, amount uint64) {
	if a.Balances == nil {
		a.Balances = map[string]uint64{}
	}
	a.Balances[asset] += amount
}

func appendHistory(st *overlay, a *apptx.Account, e apptx.HistoryEntry) {
	a.History++
	e.Seq = a.History
	st.setJSON(historyKey(a.Address, e.Seq), e)
}
