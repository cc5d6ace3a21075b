package cometbft

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	"github.com/cometbft/cometbft/types"

	"github.com/chaindock/chaindock/internal/chain"
)

var _ chain.Ledger = (*Driver)(nil)

// maxBatch bounds the blocks read in one JSON-RPC batch.
const maxBatch = 50

// rpc returns a client of node's RPC endpoint, shared between calls.
func (d *Driver) rpc(node chain.PlannedNode) (*rpchttp.HTTP, error) {
	addr := node.Endpoints[PortRPC]
	if addr == "" {
		return nil, fmt.Errorf("node %s has no %s endpoint", node.Name, PortRPC)
	}
	if c, ok := d.clients.Load(addr); ok {
		return c.(*rpchttp.HTTP), nil
	}
	c, err := rpchttp.NewWithClient(addr, "/websocket", d.client)
	if err != nil {
		return nil, fmt.Errorf("node %s at %s: %w", node.Name, addr, err)
	}
	got, _ := d.clients.LoadOrStore(addr, c)
	return got.(*rpchttp.HTTP), nil
}

// LatestHeight implements chain.Ledger.
func (d *Driver) LatestHeight(ctx context.Context, node chain.PlannedNode) (int64, error) {
	c, err := d.rpc(node)
	if err != nil {
		return 0, err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("status of %s: %w", node.Name, err)
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

// Blocks implements chain.Ledger: each block with its transactions'
// results, read in JSON-RPC batches.
func (d *Driver) Blocks(ctx context.Context, node chain.PlannedNode, from, to int64) ([]chain.Block, error) {
	c, err := d.rpc(node)
	if err != nil {
		return nil, err
	}
	var out []chain.Block
	for lo := from; lo <= to; lo += maxBatch {
		hi := min(to, lo+maxBatch-1)
		batch := c.NewBatch()
		heights := make([]int64, 0, hi-lo+1)
		for h := lo; h <= hi; h++ {
			heights = append(heights, h)
		}
		for i := range heights {
			if _, err := batch.Block(ctx, &heights[i]); err != nil {
				return nil, err
			}
			if _, err := batch.BlockResults(ctx, &heights[i]); err != nil {
				return nil, err
			}
		}
		results, err := batch.Send(ctx)
		if err != nil {
			return nil, fmt.Errorf("blocks %d..%d from %s: %w", lo, hi, node.Name, err)
		}
		for i := 0; i+1 < len(results); i += 2 {
			rb, ok1 := results[i].(*ctypes.ResultBlock)
			rr, ok2 := results[i+1].(*ctypes.ResultBlockResults)
			if !ok1 || !ok2 || rb.Block == nil {
				return nil, fmt.Errorf("blocks %d..%d from %s: unexpected answer", lo, hi, node.Name)
			}
			out = append(out, toBlock(rb, rr))
		}
	}
	return out, nil
}

func toBlock(rb *ctypes.ResultBlock, rr *ctypes.ResultBlockResults) chain.Block {
	b := rb.Block
	blk := chain.Block{
		Height:   b.Height,
		Hash:     rb.BlockID.Hash.String(),
		Time:     b.Time,
		Proposer: b.ProposerAddress.String(),
		AppHash:  b.AppHash.String(),
	}
	for i, tx := range b.Txs {
		t := chain.Tx{Hash: fmt.Sprintf("%X", tx.Hash()), Height: b.Height, Index: i, Type: txType(tx), Data: tx}
		if i < len(rr.TxsResults) {
			t.Code, t.Log = rr.TxsResults[i].Code, rr.TxsResults[i].Log
		}
		blk.Txs = append(blk.Txs, t)
	}
	return blk
}

// txType reads the type of a ChainDock application transaction (a JSON
// object with a "type" field); other applications' transactions have none.
func txType(tx []byte) string {
	if len(tx) == 0 || tx[0] != '{' {
		return ""
	}
	var v struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(tx, &v) != nil || len(v.Type) > 32 {
		return ""
	}
	return v.Type
}

// Submit implements chain.Ledger with broadcast_tx_sync: it returns once
// the node's application has checked the transaction.
func (d *Driver) Submit(ctx context.Context, node chain.PlannedNode, tx []byte) (chain.SubmitResult, error) {
	c, err := d.rpc(node)
	if err != nil {
		return chain.SubmitResult{}, err
	}
	hash := fmt.Sprintf("%X", types.Tx(tx).Hash())
	res, err := c.BroadcastTxSync(ctx, tx)
	if err != nil {
		// The node already holds these very bytes: admitted before.
		if strings.Contains(err.Error(), "tx already exists in cache") {
			return chain.SubmitResult{Hash: hash}, nil
		}
		return chain.SubmitResult{}, fmt.Errorf("submit to %s: %w", node.Name, err)
	}
	return chain.SubmitResult{Hash: hash, Code: res.Code, Log: res.Log}, nil
}

// Tx implements chain.Ledger.
func (d *Driver) Tx(ctx context.Context, node chain.PlannedNode, hash string) (*chain.Tx, error) {
	c, err := d.rpc(node)
	if err != nil {
		return nil, err
	}
	h, err := hex.DecodeString(hash)
	if err != nil || len(h) != 32 {
		return nil, fmt.Errorf("transaction hash %q is not 64 hex digits", hash)
	}
	res, err := c.Tx(ctx, h, false)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return nil, chain.ErrTxNotFound
		}
		return nil, fmt.Errorf("transaction %s from %s: %w", hash, node.Name, err)
	}
	return &chain.Tx{
		Hash: res.Hash.String(), Height: res.Height, Index: int(res.Index),
		Code: res.TxResult.Code, Log: res.TxResult.Log, Type: txType(res.Tx), Data: res.Tx,
	}, nil
}

// Query implements chain.Ledger with abci_query.
func (d *Driver) Query(ctx context.Context, node chain.PlannedNode, path string, data []byte) (chain.QueryResult, error) {
	c, err := d.rpc(node)
	if err != nil {
		return chain.QueryResult{}, err
	}
	res, err := c.ABCIQuery(ctx, path, data)
	if err != nil {
		return chain.QueryResult{}, fmt.Errorf("query %s on %s: %w", path, node.Name, err)
	}
	r := res.Response
	return chain.QueryResult{Code: r.Code, Log: r.Log, Value: r.Value, Height: r.Height}, nil
}

// SignedHeader returns the header of height with the commit that signs it
// and the validator set that signed, verified: at least two thirds of the
// voting power signed it. Proofs of application state are checked against
// its AppHash.
func (d *Driver) SignedHeader(ctx context.Context, node chain.PlannedNode, height int64) (*types.SignedHeader, error) {
	c, err := d.rpc(node)
	if err != nil {
		return nil, err
	}
	com, err := c.Commit(ctx, &height)
	if err != nil {
		return nil, fmt.Errorf("commit %d from %s: %w", height, node.Name, err)
	}
	var vals []*types.Validator
	for page := 1; ; page++ {
		p, per := page, 100
		res, err := c.Validators(ctx, &height, &p, &per)
		if err != nil {
			return nil, fmt.Errorf("validators at %d from %s: %w", height, node.Name, err)
		}
		vals = append(vals, res.Validators...)
		if len(vals) >= res.Total || len(res.Validators) == 0 {
			break
		}
	}
	set := types.NewValidatorSet(vals)
	sh := com.SignedHeader
	if err := sh.ValidateBasic(sh.ChainID); err != nil {
		return nil, fmt.Errorf("header %d from %s: %w", height, node.Name, err)
	}
	if !bytes.Equal(set.Hash(), sh.ValidatorsHash) {
		return nil, fmt.Errorf("header %d from %s: its validators hash does not match the validator set", height, node.Name)
	}
	if err := set.VerifyCommitLight(sh.ChainID, sh.Commit.BlockID, height, sh.Commit); err != nil {
		return nil, fmt.Errorf("header %d from %s: %w", height, node.Name, err)
	}
	return &sh, nil
}

var _ chain.HeaderVerifier = (*Driver)(nil)

// VerifiedAppHash implements chain.HeaderVerifier.
func (d *Driver) VerifiedAppHash(ctx context.Context, node chain.PlannedNode, height int64) ([]byte, error) {
	sh, err := d.SignedHeader(ctx, node, height)
	if err != nil {
		return nil, err
	}
	return sh.AppHash, nil
}
