package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/chaindock/chaindock/pkg/apptx"
)

const (
	defaultHistoryLimit = 100
	maxHistoryLimit     = 500
)

// Query answers the paths of apptx (PathAccount, ...) from the committed
// state. Parameters come from the path's query string or from req.Data as a
// JSON object of strings or numbers.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	if err := a.lock(); err != nil {
		return nil, err
	}
	defer a.mu.Unlock()
	res := &abci.ResponseQuery{Height: a.height}
	path, params, err := queryParams(req.Path, req.Data)
	var value any
	if err == nil {
		value, err = a.query(path, params)
	}
	if err != nil {
		res.Code, res.Log, res.Codespace = apptx.CodeOf(err), err.Error(), codespace(err)
		return res, nil
	}
	if res.Value, err = json.Marshal(value); err != nil {
		return nil, fmt.Errorf("query %s: encode: %w", path, err)
	}
	res.Key = []byte(path)
	return res, nil
}

func queryParams(rawPath string, data []byte) (string, url.Values, error) {
	path, rawQuery, _ := strings.Cut(rawPath, "?")
	params, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", nil, refuse(apptx.CodeBadQuery, "query string: %v", err)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return "", nil, refuse(apptx.CodeBadQuery, "query data: must be a JSON object: %v", err)
		}
		for k, raw := range m {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				params.Set(k, s)
			} else {
				params.Set(k, string(raw))
			}
		}
	}
	return path, params, nil
}

func (a *App) query(path string, p url.Values) (any, error) {
	r := dbReader{a.db}
	switch path {
	case apptx.PathInfo:
		var s stats
		if _, err := getJSON(r, keyStats, &s); err != nil {
			return nil, err
		}
		return apptx.Info{ChainID: a.chainID, Height: a.height, AppHash: a.appHash,
			Accounts: s.Accounts, Documents: s.Documents, Assets: s.Assets, Txs: s.Txs, Modules: apptx.Modules()}, nil

	case apptx.PathAccount:
		addr, err := addressParam(p)
		if err != nil {
			return nil, err
		}
		return account(r, addr)

	case apptx.PathAssetBalance:
		addr, err := addressParam(p)
		if err != nil {
			return nil, err
		}
		asset := p.Get("asset")
		if !apptx.ValidSymbol(asset) {
			return nil, refuse(apptx.CodeBadQuery, "asset: must match [A-Z0-9]{2,12}")
		}
		acct, err := account(r, addr)
		if err != nil {
			return nil, err
		}
		return apptx.Balance{Address: addr, Asset: asset, Amount: acct.Balances[asset]}, nil

	case apptx.PathAssetInfo:
		sym := p.Get("symbol")
		if !apptx.ValidSymbol(sym) {
			return nil, refuse(apptx.CodeBadQuery, "symbol: must match [A-Z0-9]{2,12}")
		}
		var info apptx.AssetInfo
		ok, err := getJSON(r, assetKey(sym), &info)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, refuse(apptx.CodeNotFound, "symbol: asset %s not found", sym)
		}
		return info, nil

	case apptx.PathAssetHistory:
		return a.history(p)

	case apptx.PathNotaryDoc:
		rec, err := docRecord(r, p)
		if err != nil {
			return nil, err
		}
		return rec, nil

	case apptx.PathNotaryProof:
		rec, err := docRecord(r, p)
		if err != nil {
			return nil, err
		}
		return a.notaryProof(rec)
	}
	return nil, refuse(apptx.CodeUnknownPath, "path: unknown query path %q", path)
}

func addressParam(p url.Values) (string, error) {
	addr := strings.ToLower(p.Get("address"))
	if !apptx.ValidAddress(addr) {
		return "", refuse(apptx.CodeBadQuery, "address: must be 40 hex characters")
	}
	return addr, nil
}

func account(r reader, addr string) (*apptx.Account, error) {
	acct := &apptx.Account{Address: addr}
	if _, err := getJSON(r, accountKey(addr), acct); err != nil {
		return nil, err
	}
	return acct, nil
}

func docRecord(r reader, p url.Values) (*apptx.NotaryRecord, error) {
	hash := strings.ToLower(p.Get("hash"))
	if len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return nil, refuse(apptx.CodeBadQuery, "hash: must be 64 hex characters")
	}
	var rec apptx.NotaryRecord
	ok, err := getJSON(r, string(apptx.DocKey(hash)), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, refuse(apptx.CodeNotFound, "hash: document %s is not notarised", hash)
	}
	return &rec, nil
}

func (a *App) notaryProof(rec *apptx.NotaryRecord) (*apptx.NotaryProof, error) {
	bz, err := a.db.Get(blockKey(rec.Height))
	if err != nil {
		return nil, err
	}
	if bz == nil {
		return nil, fmt.Errorf("no leaves stored for height %d", rec.Height)
	}
	blk, err := decodeBlockRecord(bz)
	if err != nil {
		return nil, err
	}
	key := apptx.DocKey(rec.Hash)
	for i, leaf := range blk.Leaves {
		k, _, err := apptx.DecodeLeaf(leaf)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(k, key) {
			continue
		}
		root, proofs := merkle.ProofsFromByteSlices(blk.Leaves)
		return &apptx.NotaryProof{DocHash: rec.Hash, Height: rec.Height, TxHash: rec.TxHash, Leaf: leaf,
			Proof: *proofs[i], Root: root, PrevAppHash: blk.PrevAppHash, AppHash: blk.AppHash}, nil
	}
	return nil, fmt.Errorf("document %s has no leaf at height %d", rec.Hash, rec.Height)
}

func (a *App) history(p url.Values) (*apptx.History, error) {
	addr, err := addressParam(p)
	if err != nil {
		return nil, err
	}
	limit := defaultHistoryLimit
	if s := p.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > maxHistoryLimit {
			return nil, refuse(apptx.CodeBadQuery, "limit: must be an integer from 1 to %d", maxHistoryLimit)
		}
	}
	var after uint64
	if s := p.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, refuse(apptx.CodeBadQuery, "after: must be a non-negative integer")
		}
	}
	start := []byte(historyKey(addr, after+1))
	if after == ^uint64(0) {
		return &apptx.History{Address: addr, Entries: []apptx.HistoryEntry{}}, nil
	}
	end := []byte(prefixHistory + addr + "0") // "0" follows "/"
	it, err := a.db.Iterator(start, end)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := &apptx.History{Address: addr, Entries: []apptx.HistoryEntry{}}
	for ; it.Valid(); it.Next() {
		if len(out.Entries) == limit {
			out.Next = out.Entries[limit-1].Seq
			break
		}
		var e apptx.HistoryEntry
		if err := json.Unmarshal(it.Value(), &e); err != nil {
			return nil, fmt.Errorf("decode history entry: %w", err)
		}
		out.Entries = append(out.Entries, e)
	}
	return out, it.Error()
}
