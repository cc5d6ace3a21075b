package ethereum

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/ethereum/templates"
)

var _ chain.Contracts = (*Driver)(nil)

// PackageKind is the kind of package an Ethereum network deploys: an EVM
// contract's compiled artifact, with its Solidity source if the package
// carries it.
const PackageKind = "evm"

// ArtifactFile is the package file holding the compiled contract: a JSON
// object with at least "abi" and "bytecode" (the creation code, 0x hex),
// as the templates' build files and most toolchains write it.
const ArtifactFile = "contract.json"

// Bounds on a package's creation code: the contract size limit (EIP-170)
// applies to the code the constructor returns; the creation code is held
// to twice that, as later forks do (EIP-3860).
const (
	maxCodeBytes     = 24576
	maxInitCodeBytes = 2 * maxCodeBytes
)

// receiptWait bounds the wait for a deployment's block.
const receiptWait = 60 * time.Second

// artifact is the part of ArtifactFile the driver reads.
type artifact struct {
	ContractName string          `json:"contractName"`
	ABI          json.RawMessage `json:"abi"`
	Bytecode     string          `json:"bytecode"`
}

// builtin are the templates: the contract's name in the templates'
// sources, and the package it is.
var builtin = []struct {
	contract, pkg, version, description string
}{
	{"Notary", "evm-notary", "1.0.0", "Notarisation of documents: notarize(digest, meta) records a SHA-256 digest with its sender, block and time, once, and logs Notarized; record(digest) reads it back."},
	{"Token", "evm-token", "1.0.0", "ERC-20 token: constructor(name, symbol, supply, holder) gives the whole supply to holder; transfer, approve, transferFrom, balanceOf, allowance."},
}

// Templates implements chain.Contracts: the Solidity templates, each with
// its source and compiled artifact.
func (d *Driver) Templates() []apis.Package {
	var out []apis.Package
	for _, b := range builtin {
		src, err := templates.Source(b.contract)
		if err != nil {
			panic(err) // embedded: a build without them is broken
		}
		p := apis.Package{Owner: apis.BuiltinOwner, Name: b.pkg, Version: b.version, Chain: Name, Kind: PackageKind,
			Description: b.description, Builtin: true,
			Files: []apis.PackageFile{
				{Path: ArtifactFile, Text: string(templates.BuildJSON(b.contract))},
				{Path: b.contract + ".sol", Text: string(src)},
			}}
		p.Checksum = p.Digest()
		out = append(out, p)
	}
	return out
}

// ValidatePackage implements chain.Contracts.
func (d *Driver) ValidatePackage(p *apis.Package) apis.ErrorList {
	var errs apis.ErrorList
	if p.Kind != PackageKind {
		errs.Add("kind", "%q: an ethereum package is of kind %q", p.Kind, PackageKind)
	}
	f, ok := p.File(ArtifactFile)
	if !ok {
		errs.Add("files", "has no %s with the contract's abi and bytecode", ArtifactFile)
		return errs
	}
	if _, _, err := parseArtifact(f.Content()); err != nil {
		errs.Add("files["+ArtifactFile+"]", "%v", err)
	}
	return errs
}

// parseArtifact reads and checks a compiled contract.
func parseArtifact(b []byte) (*abi.ABI, []byte, error) {
	var a artifact
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if len(a.ABI) == 0 {
		return nil, nil, errors.New("has no abi")
	}
	parsed, err := abi.JSON(bytes.NewReader(a.ABI))
	if err != nil {
		return nil, nil, fmt.Errorf("abi: %w", err)
	}
	for i, in := range parsed.Constructor.Inputs {
		if _, err := argValue(in.Type, zeroText(in.Type)); err != nil {
			return nil, nil, fmt.Errorf("abi: constructor argument %d (%s %s): %w", i, in.Type, in.Name, err)
		}
	}
	code, err := hexutil.Decode(a.Bytecode)
	switch {
	case a.Bytecode == "":
		return nil, nil, errors.New("has no bytecode")
	case err != nil:
		return nil, nil, fmt.Errorf("bytecode: want 0x and hex digits: %w", err)
	case len(code) > maxInitCodeBytes:
		return nil, nil, fmt.Errorf("bytecode has %d bytes; at most %d are taken", len(code), maxInitCodeBytes)
	}
	if at, ok := firstPush0(code); ok {
		return nil, nil, fmt.Errorf("bytecode uses PUSH0 (0x5f, at byte %d), which these networks (London rules, no Shanghai) do not have: compile with evmVersion london", at)
	}
	return &parsed, code, nil
}

// firstPush0 finds a PUSH0 instruction in the constructor's code, the
// creation code up to the first INVALID (0xfe) that solc puts after it,
// skipping the data of PUSH1..PUSH32. Code compiled for Shanghai or later
// pushes zeros there from its first instructions; what follows (the
// runtime code, tables, metadata) is not walked, as data there may look
// like anything. A PUSH0 that only the runtime code has fails at
// deployment or at its first call, with the node's "invalid opcode".
func firstPush0(code []byte) (int, bool) {
	const push0, push1, push32, invalid = 0x5f, 0x60, 0x7f, 0xfe
	for i := 0; i < len(code); i++ {
		switch op := code[i]; {
		case op == push0:
			return i, true
		case op >= push1 && op <= push32:
			i += int(op-push1) + 1
		case op == invalid:
			return 0, false
		}
	}
	return 0, false
}

// zeroText is an argument of type t that argValue takes, to check that it
// takes the type at all.
func zeroText(t abi.Type) string {
	switch t.T {
	case abi.AddressTy:
		return "0x0000000000000000000000000000000000000000"
	case abi.BoolTy:
		return "false"
	case abi.IntTy, abi.UintTy:
		return "0"
	case abi.FixedBytesTy:
		return "0x" + strings.Repeat("00", t.Size)
	default:
		return ""
	}
}

// argValue turns text into the Go value go-ethereum's ABI encoder takes
// for type t: decimal (or 0x hex) integers, 0x addresses (checked against
// their EIP-55 case when mixed), true/false, 0x hex bytes, and strings as
// they are. Arrays, tuples and functions are not taken.
func argValue(t abi.Type, s string) (any, error) {
	switch t.T {
	case abi.StringTy:
		return s, nil
	case abi.BoolTy:
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not true or false", s)
	case abi.AddressTy:
		if msg := checkAddress(s); msg != "" {
			return nil, errors.New(msg)
		}
		return common.HexToAddress(s), nil
	case abi.IntTy, abi.UintTy:
		v, ok := new(big.Int).SetString(s, 0)
		if !ok {
			return nil, fmt.Errorf("%q is not an integer (decimal, or 0x and hex digits)", s)
		}
		lo, hi := new(big.Int), new(big.Int).Lsh(big.NewInt(1), uint(t.Size)) //nolint:gosec // sizes are 8..256
		if t.T == abi.IntTy {
			hi.Rsh(hi, 1)
			lo.Neg(hi)
		}
		if v.Cmp(lo) < 0 || v.Cmp(hi) >= 0 {
			return nil, fmt.Errorf("%s is out of the range of %s", s, t)
		}
		if t.Size > 64 {
			return v, nil
		}
		// The encoder wants the exact Go type of the small sizes.
		if t.T == abi.UintTy {
			return reflect.ValueOf(v.Uint64()).Convert(t.GetType()).Interface(), nil
		}
		return reflect.ValueOf(v.Int64()).Convert(t.GetType()).Interface(), nil
	case abi.BytesTy, abi.FixedBytesTy:
		b, err := hexutil.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not 0x and hex digits: %w", s, err)
		}
		if t.T == abi.BytesTy {
			return b, nil
		}
		if len(b) != t.Size {
			return nil, fmt.Errorf("%q has %d bytes, %s takes %d", s, len(b), t, t.Size)
		}
		v := reflect.New(t.GetType()).Elem()
		reflect.Copy(v, reflect.ValueOf(b))
		return v.Interface(), nil
	}
	return nil, fmt.Errorf("arguments of type %s are not taken", t)
}

// constructorData is the creation code followed by the encoded
// constructor arguments.
func constructorData(parsed *abi.ABI, code []byte, args []string) ([]byte, error) {
	in := parsed.Constructor.Inputs
	if len(args) != len(in) {
		var sig []string
		for _, a := range in {
			sig = append(sig, strings.TrimSpace(a.Type.String()+" "+a.Name))
		}
		return nil, fmt.Errorf("the constructor takes %d argument(s) (%s); %d given", len(in), strings.Join(sig, ", "), len(args))
	}
	values := make([]any, len(args))
	for i, a := range in {
		v, err := argValue(a.Type, args[i])
		if err != nil {
			return nil, fmt.Errorf("argument %d (%s %s): %w", i, a.Type, a.Name, err)
		}
		values[i] = v
	}
	enc, err := in.Pack(values...)
	if err != nil {
		return nil, err
	}
	return append(bytes.Clone(code), enc...), nil
}

// DeployContract implements chain.Contracts: a sealer's account sends the
// creation transaction, and the contract's address is its ref. An upgrade
// is a new deployment: code on an EVM chain does not change, so the
// contract's new revision names the new address, and the old one stays on
// the chain as it was.
func (d *Driver) DeployContract(ctx context.Context, n *apis.Network, req chain.DeployRequest) (chain.ContractResult, error) {
	if req.EndorsementPolicy != "" {
		return chain.ContractResult{}, apis.ErrorList{{Field: "endorsementPolicy",
			Detail: "an EVM contract has no endorsement policy: every transaction runs on every node; leave it out"}}
	}
	if req.Channel != "" {
		return chain.ContractResult{}, apis.ErrorList{{Field: "channel", Detail: "an Ethereum network has one chain, no channels; leave it out"}}
	}
	if len(req.Collections) > 0 {
		return chain.ContractResult{}, apis.ErrorList{{Field: "collections", Detail: "an EVM contract has no private data collections: every node keeps all its state; leave them out"}}
	}
	f, ok := req.Package.File(ArtifactFile)
	if !ok {
		return chain.ContractResult{}, fmt.Errorf("%w: package %s has no %s", chain.ErrContractRefused, req.Package.Ref(), ArtifactFile)
	}
	parsed, code, err := parseArtifact(f.Content())
	if err != nil {
		return chain.ContractResult{}, fmt.Errorf("%w: package %s: %s %w", chain.ErrContractRefused, req.Package.Ref(), ArtifactFile, err)
	}
	data, err := constructorData(parsed, code, req.Args)
	if err != nil {
		return chain.ContractResult{}, fmt.Errorf("%w: package %s: %w", chain.ErrContractRefused, req.Package.Ref(), err)
	}
	var lastErr error
	for _, node := range chain.ReadyNodes(n) {
		if node.Role != apis.RoleValidator {
			continue
		}
		res, err := d.deployFrom(ctx, node, data)
		if err == nil || errors.Is(err, chain.ErrContractRefused) || ctx.Err() != nil {
			return res, err
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("none of %s's sealers is running", n.Metadata.Name)
	}
	return chain.ContractResult{}, fmt.Errorf("%w: %v", chain.ErrUnavailable, lastErr) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
}

// txArgs is a transaction as eth_sendTransaction and eth_estimateGas take
// it.
type txArgs struct {
	From common.Address  `json:"from"`
	Data hexutil.Bytes   `json:"data"`
	Gas  *hexutil.Uint64 `json:"gas,omitempty"`
}

// deployFrom sends the creation transaction from node's sealer account,
// which geth holds unlocked, and waits for its receipt. A constructor
// that reverts is refused before anything is sent.
func (d *Driver) deployFrom(ctx context.Context, node chain.PlannedNode, data []byte) (chain.ContractResult, error) {
	c, err := d.rpcClient(ctx, node)
	if err != nil {
		return chain.ContractResult{}, err
	}
	var accounts []common.Address
	if err := c.CallContext(ctx, &accounts, "eth_accounts"); err != nil {
		return chain.ContractResult{}, fmt.Errorf("%s: eth_accounts: %w", node.Name, err)
	}
	if len(accounts) == 0 {
		return chain.ContractResult{}, fmt.Errorf("%s holds no sealer account", node.Name)
	}
	tx := txArgs{From: accounts[0], Data: data}
	var gas hexutil.Uint64
	if err := c.CallContext(ctx, &gas, "eth_estimateGas", tx); err != nil {
		if refusal(err) {
			hint := ""
			if strings.Contains(err.Error(), "PUSH0") {
				hint = " (the code was compiled for Shanghai or later; compile with evmVersion london)"
			}
			return chain.ContractResult{}, fmt.Errorf("%w: the constructor fails: %v%s", chain.ErrContractRefused, err, hint) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
		}
		return chain.ContractResult{}, fmt.Errorf("%s: eth_estimateGas: %w", node.Name, err)
	}
	// The estimate is the least that succeeds; a margin keeps a
	// constructor whose cost depends on the block it lands in from
	// running out.
	gas += gas / 5
	tx.Gas = &gas
	var hash common.Hash
	if err := c.CallContext(ctx, &hash, "eth_sendTransaction", tx); err != nil {
		if refusal(err) {
			return chain.ContractResult{}, fmt.Errorf("%w: %s refused the creation transaction: %v", chain.ErrContractRefused, node.Name, err) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
		}
		return chain.ContractResult{}, fmt.Errorf("%s: eth_sendTransaction: %w", node.Name, err)
	}
	r, err := d.waitReceipt(ctx, c, hash)
	if err != nil {
		return chain.ContractResult{}, fmt.Errorf("%s: creation transaction %s: %w", node.Name, hash.Hex(), err)
	}
	res := chain.ContractResult{TxHash: strings.ToUpper(hash.Hex()[2:]), Height: r.BlockNumber.Int64()}
	if r.Status != types.ReceiptStatusSuccessful {
		return res, fmt.Errorf("%w: the creation transaction %s failed in block %d (gas used %d of %d)",
			chain.ErrContractRefused, hash.Hex(), res.Height, r.GasUsed, gas)
	}
	res.Ref = r.ContractAddress.Hex()
	return res, nil
}

// waitReceipt polls for a transaction's receipt until it is in a block.
func (d *Driver) waitReceipt(ctx context.Context, c *rpc.Client, hash common.Hash) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, receiptWait)
	defer cancel()
	for {
		var r *types.Receipt
		err := c.CallContext(ctx, &r, "eth_getTransactionReceipt", hash)
		if err == nil && r != nil {
			return r, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("no receipt after %s: %w", receiptWait, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// refusal reports whether err is the node's answer to a request (an
// error object in a JSON-RPC response), rather than a failure to ask.
func refusal(err error) bool {
	var re rpc.Error
	return errors.As(err, &re)
}

// RemoveContract implements chain.Contracts. Code on an EVM chain stays
// for ever: removing the contract records that it is out of use, and the
// platform's gateway refuses transactions to its address from then on.
func (d *Driver) RemoveContract(_ context.Context, _ *apis.Network, current *apis.ContractRevision) (chain.ContractResult, error) {
	return chain.ContractResult{Ref: current.Ref}, nil
}

// TxSender implements chain.TxSenders: the account that signed a
// transaction, recovered from its signature.
func (d *Driver) TxSender(raw []byte) (string, bool) {
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		return "", false
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), &tx)
	if err != nil {
		return "", false
	}
	return from.Hex(), true
}

// TxContract implements chain.Contracts: the address a signed transaction
// calls, in its EIP-55 form as refs are.
func (d *Driver) TxContract(_ *apis.Network, raw []byte) (string, bool) {
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil || tx.To() == nil {
		return "", false
	}
	return tx.To().Hex(), true
}
