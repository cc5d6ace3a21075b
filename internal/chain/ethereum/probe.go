package ethereum

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/chaindock/chaindock/internal/chain"
)

// rpcClient returns a client of node's JSON-RPC endpoint, shared between
// calls.
func (d *Driver) rpcClient(ctx context.Context, node chain.PlannedNode) (*rpc.Client, error) {
	addr := node.Endpoints[PortRPC]
	if addr == "" {
		return nil, fmt.Errorf("node %s has no %s endpoint", node.Name, PortRPC)
	}
	if c, ok := d.clients.Load(addr); ok {
		return c.(*rpc.Client), nil
	}
	// Over HTTP, dialing connects nothing: each call is a request.
	c, err := rpc.DialOptions(ctx, addr, rpc.WithHTTPClient(d.client))
	if err != nil {
		return nil, fmt.Errorf("node %s at %s: %w", node.Name, addr, err)
	}
	got, loaded := d.clients.LoadOrStore(addr, c)
	if loaded {
		c.Close()
	}
	return got.(*rpc.Client), nil
}

// head is the part of a block Probe reads.
type head struct {
	Number hexutil.Uint64 `json:"number"`
	Time   hexutil.Uint64 `json:"timestamp"`
}

// Probe implements chain.Driver, with one JSON-RPC batch: the newest
// block, the peer count, whether the node is syncing and, for a sealer,
// whether it seals: its miner runs and the chain counts its account among
// the signers (a sealer being voted in, or out, does not seal).
//
// NodeID stays empty: only geth's admin API tells a node's enode ID, and
// it is not served over HTTP.
func (d *Driver) Probe(ctx context.Context, node chain.PlannedNode) (chain.NodeInfo, error) {
	c, err := d.rpcClient(ctx, node)
	if err != nil {
		return chain.NodeInfo{}, fmt.Errorf("probe %s: %w", node.Name, err)
	}
	var (
		latest  *head
		peers   hexutil.Uint64
		syncing json.RawMessage
	)
	batch := []rpc.BatchElem{
		{Method: "eth_getBlockByNumber", Args: []any{"latest", false}, Result: &latest},
		{Method: "net_peerCount", Result: &peers},
		{Method: "eth_syncing", Result: &syncing},
	}
	var (
		mining  bool
		signers []common.Address
	)
	sealer, isSealer := sealerAddress(node) //nolint:staticcheck // read in new(...) below, which the checker does not follow
	if isSealer {
		batch = append(batch,
			rpc.BatchElem{Method: "eth_mining", Result: &mining},
			rpc.BatchElem{Method: "clique_getSigners", Result: &signers})
	}
	if err := c.BatchCallContext(ctx, batch); err != nil {
		return chain.NodeInfo{}, fmt.Errorf("probe %s at %s: %w", node.Name, node.Endpoints[PortRPC], err)
	}
	for _, b := range batch {
		if b.Error != nil {
			return chain.NodeInfo{}, fmt.Errorf("probe %s: %s: %w", node.Name, b.Method, b.Error)
		}
	}
	if latest == nil {
		return chain.NodeInfo{}, fmt.Errorf("probe %s: the node has no latest block", node.Name)
	}
	if latest.Number > math.MaxInt64 || latest.Time > math.MaxInt64 || peers > math.MaxInt32 {
		return chain.NodeInfo{}, fmt.Errorf("probe %s: implausible answer: block %d of time %d, %d peers", node.Name, latest.Number, latest.Time, peers)
	}
	var sealing *bool
	if isSealer {
		sealing = new(mining && slices.Contains(signers, sealer))
	}
	return chain.NodeInfo{
		Sealing:       sealing,
		Height:        int64(latest.Number), //nolint:gosec // bounded above
		Peers:         int(peers),           //nolint:gosec // bounded above
		CatchingUp:    catchingUp(syncing),
		LastBlockTime: time.Unix(int64(latest.Time), 0).UTC(), //nolint:gosec // bounded above
	}, nil
}

// catchingUp reads eth_syncing: false, or the progress of a sync. geth
// also answers progress while it indexes transactions, which is no sync:
// at genesis it waits for a block to index, so an idle chain that seals
// on demand would look as if it synced for ever. A node catches up while
// its head is below the highest block it knows of.
func catchingUp(syncing json.RawMessage) bool {
	if string(syncing) == "false" {
		return false
	}
	var p struct {
		Current hexutil.Uint64 `json:"currentBlock"`
		Highest hexutil.Uint64 `json:"highestBlock"`
	}
	if err := json.Unmarshal(syncing, &p); err != nil {
		return true
	}
	return p.Current < p.Highest
}
