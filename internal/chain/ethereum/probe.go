package ethereum

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

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
// block, the peer count and whether the node is syncing.
//
// NodeID stays empty: only geth's admin API tells a node's enode ID, and
// it is not served over HTTP. Whether a sealer seals shows in
// clique_status (the blocks each sealer signed of the last 64); NodeInfo
// has no field for it.
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
	return chain.NodeInfo{
		Height: int64(latest.Number), //nolint:gosec // bounded above
		Peers:  int(peers),           //nolint:gosec // bounded above
		// eth_syncing is false, or the progress of a running sync.
		CatchingUp:    string(syncing) != "false",
		LastBlockTime: time.Unix(int64(latest.Time), 0).UTC(), //nolint:gosec // bounded above
	}, nil
}
