package ethereum

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/chaindock/chaindock/internal/chain"
)

var _ chain.Ledger = (*Driver)(nil)

// maxBatch bounds the blocks read in one JSON-RPC batch: each is a block
// with its transactions and their receipts.
const maxBatch = 50

// Query paths a node answers.
const (
	QueryCall    = "/call/"    // + address; data: the call's input, hex
	QueryBalance = "/balance/" // + address; a decimal string of wei
	QueryNonce   = "/nonce/"   // + address; the next nonce, pending included
	QueryChain   = "/chain"    // chain ID, height, base fee and gas price
)

// Refusal codes of Submit and Query.
const (
	CodeInvalid  uint32 = 1 // not a valid request: bad bytes, bad address, reverted call
	CodeRejected uint32 = 2 // the node's pool would not take the transaction
)

// hashText is a hash as the platform keeps it: upper-case hex, no 0x.
func hashText(h common.Hash) string { return strings.ToUpper(h.Hex()[2:]) }

// LatestHeight implements chain.Ledger.
func (d *Driver) LatestHeight(ctx context.Context, node chain.PlannedNode) (int64, error) {
	c, err := d.rpcClient(ctx, node)
	if err != nil {
		return 0, err
	}
	var n hexutil.Uint64
	if err := c.CallContext(ctx, &n, "eth_blockNumber"); err != nil {
		return 0, fmt.Errorf("block number of %s: %w", node.Name, err)
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("block number of %s: implausible %d", node.Name, n)
	}
	return int64(n), nil //nolint:gosec // checked against MaxInt64 above
}

// rpcBlock is a block as eth_getBlockByNumber returns it with its
// transactions in full; the header decodes from the same object.
type rpcBlock struct {
	Hash         common.Hash          `json:"hash"`
	Transactions []*types.Transaction `json:"transactions"`
}

// Blocks implements chain.Ledger: each block with its receipts, in
// JSON-RPC batches.
func (d *Driver) Blocks(ctx context.Context, node chain.PlannedNode, from, to int64) ([]chain.Block, error) {
	c, err := d.rpcClient(ctx, node)
	if err != nil {
		return nil, err
	}
	var out []chain.Block
	for lo := from; lo <= to; lo += maxBatch {
		hi := min(to, lo+maxBatch-1)
		raws := make([]json.RawMessage, hi-lo+1)
		receipts := make([][]*types.Receipt, hi-lo+1)
		batch := make([]rpc.BatchElem, 0, 2*len(raws))
		for i := range raws {
			num := hexutil.EncodeUint64(uint64(lo) + uint64(i)) //nolint:gosec // heights are positive
			batch = append(batch,
				rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{num, true}, Result: &raws[i]},
				rpc.BatchElem{Method: "eth_getBlockReceipts", Args: []any{num}, Result: &receipts[i]})
		}
		if err := c.BatchCallContext(ctx, batch); err != nil {
			return nil, fmt.Errorf("blocks %d..%d from %s: %w", lo, hi, node.Name, err)
		}
		for _, b := range batch {
			if b.Error != nil {
				return nil, fmt.Errorf("blocks %d..%d from %s: %s: %w", lo, hi, node.Name, b.Method, b.Error)
			}
		}
		for i, raw := range raws {
			h := lo + int64(i)
			if len(raw) == 0 || string(raw) == "null" {
				return nil, fmt.Errorf("block %d from %s: the node does not have it", h, node.Name)
			}
			blk, err := toBlock(raw, receipts[i])
			if err != nil {
				return nil, fmt.Errorf("block %d from %s: %w", h, node.Name, err)
			}
			out = append(out, blk)
		}
	}
	return out, nil
}

// toBlock reads a block and its receipts as the explorer keeps them.
func toBlock(raw json.RawMessage, receipts []*types.Receipt) (chain.Block, error) {
	var header types.Header
	if err := json.Unmarshal(raw, &header); err != nil {
		return chain.Block{}, err
	}
	var body rpcBlock
	if err := json.Unmarshal(raw, &body); err != nil {
		return chain.Block{}, err
	}
	if len(receipts) != len(body.Transactions) {
		return chain.Block{}, fmt.Errorf("%d transactions but %d receipts", len(body.Transactions), len(receipts))
	}
	if !header.Number.IsInt64() || header.Time > math.MaxInt64 {
		return chain.Block{}, fmt.Errorf("implausible number %s or time %d", header.Number, header.Time)
	}
	blk := chain.Block{
		Height:  header.Number.Int64(),
		Hash:    hashText(body.Hash),
		Time:    time.Unix(int64(header.Time), 0).UTC(), //nolint:gosec // bounded above
		AppHash: hashText(header.Root),
	}
	if signer, err := cliqueSigner(&header); err == nil {
		blk.Proposer = signer.Hex()
	} else if header.Number.Sign() > 0 {
		return chain.Block{}, fmt.Errorf("sealer: %w", err)
	}
	for i, tx := range body.Transactions {
		t, err := toTx(tx, receipts[i])
		if err != nil {
			return chain.Block{}, fmt.Errorf("transaction %d: %w", i, err)
		}
		blk.Txs = append(blk.Txs, t)
	}
	return blk, nil
}

// toTx reads a transaction and its receipt.
func toTx(tx *types.Transaction, r *types.Receipt) (chain.Tx, error) {
	if r == nil || r.TxHash != tx.Hash() {
		return chain.Tx{}, fmt.Errorf("no receipt of %s", tx.Hash().Hex())
	}
	if !r.BlockNumber.IsInt64() || r.TransactionIndex > math.MaxInt32 {
		return chain.Tx{}, fmt.Errorf("implausible place of %s: block %s index %d", tx.Hash().Hex(), r.BlockNumber, r.TransactionIndex)
	}
	data, err := tx.MarshalBinary()
	if err != nil {
		return chain.Tx{}, err
	}
	t := chain.Tx{
		Hash:   hashText(tx.Hash()),
		Height: r.BlockNumber.Int64(),
		Index:  int(r.TransactionIndex),
		Type:   txType(tx),
		Data:   data,
	}
	if r.Status != types.ReceiptStatusSuccessful {
		// Why it reverted is not in the receipt; replaying the call to
		// learn it costs a node as much as the transaction did.
		t.Code, t.Log = CodeInvalid, fmt.Sprintf("execution reverted (status 0; gas used %d of %d)", r.GasUsed, tx.Gas())
	}
	for _, l := range r.Logs {
		t.Events = append(t.Events, toEvent(l))
	}
	return t, nil
}

// txType names what a transaction does: create a contract, move ether,
// or call a contract.
func txType(tx *types.Transaction) string {
	switch {
	case tx.To() == nil:
		return "create"
	case len(tx.Data()) == 0:
		return "transfer"
	default:
		return "call"
	}
}

// toEvent is a log as an event: its first topic (the event's signature
// hash) as the type, the further topics and the data as attributes.
func toEvent(l *types.Log) chain.Event {
	e := chain.Event{Type: "anonymous", Contract: l.Address.Hex()}
	for i, topic := range l.Topics {
		if i == 0 {
			e.Type = topic.Hex()
			continue
		}
		e.Attributes = append(e.Attributes, chain.EventAttribute{Key: fmt.Sprintf("topic%d", i), Value: topic.Hex()})
	}
	if len(l.Data) > 0 {
		e.Attributes = append(e.Attributes, chain.EventAttribute{Key: "data", Value: hexutil.Encode(l.Data)})
	}
	return e
}

// cliqueSigner recovers the sealer of a Clique block from the signature
// at the end of its extra data, over the header without it.
func cliqueSigner(h *types.Header) (common.Address, error) {
	if len(h.Extra) < crypto.SignatureLength {
		return common.Address{}, fmt.Errorf("extra data of %d bytes holds no seal", len(h.Extra))
	}
	fields := []any{
		h.ParentHash, h.UncleHash, h.Coinbase, h.Root, h.TxHash, h.ReceiptHash, h.Bloom,
		h.Difficulty, h.Number, h.GasLimit, h.GasUsed, h.Time,
		h.Extra[:len(h.Extra)-crypto.SignatureLength], h.MixDigest, h.Nonce,
	}
	if h.BaseFee != nil {
		fields = append(fields, h.BaseFee)
	}
	enc, err := rlp.EncodeToBytes(fields)
	if err != nil {
		return common.Address{}, err
	}
	pub, err := crypto.SigToPub(crypto.Keccak256(enc), h.Extra[len(h.Extra)-crypto.SignatureLength:])
	if err != nil {
		return common.Address{}, fmt.Errorf("seal: %w", err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// Submit implements chain.Ledger with eth_sendRawTransaction. Bytes that
// are not a signed transaction are refused without asking the node.
func (d *Driver) Submit(ctx context.Context, node chain.PlannedNode, raw []byte) (chain.SubmitResult, error) {
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		return chain.SubmitResult{Hash: hashText(crypto.Keccak256Hash(raw)), Code: CodeInvalid,
			Log: fmt.Sprintf("not a signed Ethereum transaction (RLP, or a typed envelope): %v", err)}, nil
	}
	res := chain.SubmitResult{Hash: hashText(tx.Hash())}
	c, err := d.rpcClient(ctx, node)
	if err != nil {
		return chain.SubmitResult{}, err
	}
	var hash common.Hash
	err = c.CallContext(ctx, &hash, "eth_sendRawTransaction", hexutil.Bytes(raw))
	switch {
	case err == nil:
		return res, nil
	case refusal(err) && strings.Contains(err.Error(), "already known"):
		// The node holds these very bytes: admitted before.
		return res, nil
	case refusal(err):
		res.Code, res.Log = CodeRejected, err.Error()
		return res, nil
	default:
		return chain.SubmitResult{}, fmt.Errorf("submit to %s: %w", node.Name, err)
	}
}

// Tx implements chain.Ledger: a committed transaction by hash, with or
// without 0x.
func (d *Driver) Tx(ctx context.Context, node chain.PlannedNode, hash string) (*chain.Tx, error) {
	h, err := parseHash(hash)
	if err != nil {
		return nil, err
	}
	c, err := d.rpcClient(ctx, node)
	if err != nil {
		return nil, err
	}
	var (
		r  *types.Receipt
		tx *types.Transaction
	)
	batch := []rpc.BatchElem{
		{Method: "eth_getTransactionReceipt", Args: []any{h}, Result: &r},
		{Method: "eth_getTransactionByHash", Args: []any{h}, Result: &tx},
	}
	if err := c.BatchCallContext(ctx, batch); err != nil {
		return nil, fmt.Errorf("transaction %s from %s: %w", hash, node.Name, err)
	}
	for _, b := range batch {
		if b.Error != nil {
			return nil, fmt.Errorf("transaction %s from %s: %s: %w", hash, node.Name, b.Method, b.Error)
		}
	}
	if r == nil || tx == nil {
		return nil, fmt.Errorf("transaction %s on %s: %w", hash, node.Name, chain.ErrTxNotFound)
	}
	t, err := toTx(tx, r)
	if err != nil {
		return nil, fmt.Errorf("transaction %s from %s: %w", hash, node.Name, err)
	}
	return &t, nil
}

func parseHash(s string) (common.Hash, error) {
	b, err := hexutil.Decode("0x" + strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	if err != nil || len(b) != common.HashLength {
		return common.Hash{}, fmt.Errorf("transaction hash %q is not 32 bytes of hex", s)
	}
	return common.BytesToHash(b), nil
}

// Query implements chain.Ledger. Paths:
//
//	/call/<address>     data: the call's input as hex; the value is the
//	                    returned bytes as a JSON hex string
//	/balance/<address>  the balance in wei, a JSON decimal string
//	/nonce/<address>    the account's next nonce, pending transactions
//	                    counted, a JSON number
//	/chain              {"chainId", "height", "baseFee", "gasPrice"}
//
// Calls and balances read the state of the block the answer's Height
// names; a call that reverts answers CodeInvalid with its reason.
func (d *Driver) Query(ctx context.Context, node chain.PlannedNode, path string, data []byte) (chain.QueryResult, error) {
	c, err := d.rpcClient(ctx, node)
	if err != nil {
		return chain.QueryResult{}, err
	}
	height, err := d.LatestHeight(ctx, node)
	if err != nil {
		return chain.QueryResult{}, err
	}
	at := hexutil.EncodeUint64(uint64(height)) //nolint:gosec // not negative
	invalid := func(format string, args ...any) (chain.QueryResult, error) {
		return chain.QueryResult{Code: CodeInvalid, Log: fmt.Sprintf(format, args...), Height: height}, nil
	}
	answer := func(v any) (chain.QueryResult, error) {
		b, err := json.Marshal(v)
		return chain.QueryResult{Value: b, Height: height}, err
	}
	route, arg := path, ""
	for _, p := range []string{QueryCall, QueryBalance, QueryNonce} {
		if strings.HasPrefix(path, p) {
			route, arg = p, strings.TrimPrefix(path, p)
		}
	}
	var addr common.Address
	if route != QueryChain {
		if msg := checkAddress(arg); msg != "" {
			return invalid("query %s: %s", path, msg)
		}
		addr = common.HexToAddress(arg)
	}
	switch route {
	case QueryCall:
		in, err := hexutil.Decode("0x" + strings.TrimPrefix(strings.TrimSpace(string(data)), "0x"))
		if err != nil && len(strings.TrimSpace(string(data))) > 0 {
			return invalid("query %s: data must be the call's input as hex: %v", path, err)
		}
		var out hexutil.Bytes
		call := map[string]any{"to": addr, "data": hexutil.Bytes(in)}
		if err := c.CallContext(ctx, &out, "eth_call", call, at); err != nil {
			if refusal(err) {
				return invalid("%v", err)
			}
			return chain.QueryResult{}, fmt.Errorf("call %s on %s: %w", addr.Hex(), node.Name, err)
		}
		return answer(out.String())
	case QueryBalance:
		var wei hexutil.Big
		if err := c.CallContext(ctx, &wei, "eth_getBalance", addr, at); err != nil {
			return chain.QueryResult{}, fmt.Errorf("balance of %s on %s: %w", addr.Hex(), node.Name, err)
		}
		return answer(wei.ToInt().String())
	case QueryNonce:
		var nonce hexutil.Uint64
		if err := c.CallContext(ctx, &nonce, "eth_getTransactionCount", addr, "pending"); err != nil {
			return chain.QueryResult{}, fmt.Errorf("nonce of %s on %s: %w", addr.Hex(), node.Name, err)
		}
		return answer(uint64(nonce))
	case QueryChain:
		var (
			id    hexutil.Big
			price hexutil.Big
			head  *types.Header
		)
		batch := []rpc.BatchElem{
			{Method: "eth_chainId", Result: &id},
			{Method: "eth_gasPrice", Result: &price},
			{Method: "eth_getBlockByNumber", Args: []any{at, false}, Result: &head},
		}
		if err := c.BatchCallContext(ctx, batch); err != nil {
			return chain.QueryResult{}, fmt.Errorf("chain of %s: %w", node.Name, err)
		}
		for _, b := range batch {
			if b.Error != nil {
				return chain.QueryResult{}, fmt.Errorf("chain of %s: %s: %w", node.Name, b.Method, b.Error)
			}
		}
		base := new(big.Int)
		if head != nil && head.BaseFee != nil {
			base = head.BaseFee
		}
		return answer(map[string]any{
			"chainId": id.ToInt(), "height": height, "baseFee": base.String(), "gasPrice": price.ToInt().String(),
		})
	}
	return invalid("unknown query path %q: ask %s<address>, %s<address>, %s<address> or %s", path, QueryCall, QueryBalance, QueryNonce, QueryChain)
}
