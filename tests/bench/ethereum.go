package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/chain/ethereum/templates"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/internal/server"
	"github.com/chaindock/chaindock/tests/framework"
)

// The Ethereum measurements: deploy time of a 3-sealer network, and token
// transfers through the gateway against the same transfers sent straight
// to a node's JSON-RPC, on one network in the same run.
const (
	ethPortRange  = "34100-34299"
	ethWorkers    = 8  // accounts sending side by side
	ethPerWorker  = 50 // transfers per account and series
	ethSequential = 30 // transfers sent one at a time, each until its block
)

// ethFeeCap is far above the base fee of an idle Clique network (it starts
// at 1 gwei and falls), so no transfer waits for a cheaper block.
var ethFeeCap = big.NewInt(50_000_000_000)

func benchEthereum(ctx context.Context, binDir string) (err error) {
	if _, err := os.Stat(filepath.Join(binDir, "geth")); err != nil {
		return fmt.Errorf("%s has no geth: run make build", binDir)
	}
	srv, dataDir, stop, err := benchServer(ctx, binDir, "eth",
		"--port-range", ethPortRange, "--rate-limit", "0", "--gateway-rate", "0", "--log-level", "warn")
	if err != nil {
		return err
	}
	defer stop()
	c := srv.Client

	keys := make([]*ecdsa.PrivateKey, ethWorkers)
	alloc := ""
	for i := range keys {
		if keys[i], err = crypto.GenerateKey(); err != nil {
			return err
		}
		alloc += fmt.Sprintf("      %q: \"1000000000000000000000\"\n", crypto.PubkeyToAddress(keys[i].PublicKey).Hex())
	}
	spec := func(name string) []byte {
		return fmt.Appendf(nil, "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: %s}\nspec:\n  chain: ethereum\n  runtime: process\n  validators: 3\n  ethereum:\n    alloc:\n%s", name, alloc)
	}

	// Deploy: apply until every sealer is at block 2, as the API reports.
	var deploys []float64
	for i := range runs {
		name := fmt.Sprintf("bench-eth-%d", i)
		start := time.Now()
		if _, err := c.CreateNetwork(ctx, spec(name)); err != nil {
			return err
		}
		if err := waitHeights(ctx, c, name, 2, 2*time.Minute, 20*time.Millisecond); err != nil {
			return fmt.Errorf("deploy %s: %w", name, err)
		}
		deploys = append(deploys, round(time.Since(start).Seconds()))
		if i == runs-1 {
			break // the last one carries the transfers
		}
		if _, err := c.DeleteNetwork(ctx, name); err != nil {
			return err
		}
		if err := framework.WaitGone(ctx, c, name, time.Minute); err != nil {
			return err
		}
	}
	emit(figure{Metric: "eth_deploy_3s_s", Value: median(deploys), Unit: "s", Samples: deploys,
		Note: "apply until the API reports all 3 Clique sealers at block >= 2 (blockPeriod 1s; geth v1.13.15)"})

	name := fmt.Sprintf("bench-eth-%d", runs-1)
	defer func() {
		if _, derr := c.DeleteNetwork(ctx, name); derr != nil {
			err = errors.Join(err, derr)
			return
		}
		err = errors.Join(err, framework.WaitGone(ctx, c, name, time.Minute))
	}()
	return benchTokenTransfers(ctx, c, srv, dataDir, name, keys)
}

// ethNetwork is the token on a running network, reached through the
// gateway and straight through validator-0's JSON-RPC.
type ethNetwork struct {
	base    string // the server's /api/v1/networks/NAME
	api     *http.Client
	node    *rpc.Client
	chainID *big.Int
	token   common.Address
	abi     *abi.ABI
}

func benchTokenTransfers(ctx context.Context, c *client.Client, srv *framework.Server, dataDir, name string, keys []*ecdsa.PrivateKey) error {
	n, err := c.GetNetwork(ctx, name)
	if err != nil {
		return err
	}
	node, err := rpc.DialContext(ctx, n.Status.Nodes[0].Endpoints["rpc"])
	if err != nil {
		return err
	}
	defer node.Close()
	tok, err := os.ReadFile(filepath.Join(dataDir, server.TokenFile))
	if err != nil {
		return err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 2 * ethWorkers
	e := &ethNetwork{base: srv.Addr + "/api/v1/networks/" + name, node: node,
		api: &http.Client{Transport: bearerRT{token: strings.TrimSpace(string(tok)), base: t}}}
	var id hexutil.Big
	if err := node.CallContext(ctx, &id, "eth_chainId"); err != nil {
		return err
	}
	e.chainID = id.ToInt()
	var art struct {
		ABI json.RawMessage `json:"abi"`
	}
	if err := json.Unmarshal(templates.BuildJSON("Token"), &art); err != nil {
		return err
	}
	parsed, err := abi.JSON(bytes.NewReader(art.ABI))
	if err != nil {
		return err
	}
	e.abi = &parsed

	// The token, its supply given to the first account, which hands each
	// other account its share in one block.
	holder := crypto.PubkeyToAddress(keys[0].PublicKey)
	body, _ := json.Marshal(api.ContractRequest{Name: "token", Package: "builtin/evm-token@1.0.0",
		Args: []string{"Bench", "BNC", "1000000000", holder.Hex()}})
	var deployed api.Contract
	if err := c.Do(ctx, http.MethodPost, "/api/v1/networks/"+name+"/contracts", body, "application/json", &deployed); err != nil {
		return fmt.Errorf("deploy the token: %w", err)
	}
	e.token = common.HexToAddress(deployed.Ref)
	nonces := make([]uint64, len(keys))
	var share [][]byte
	for _, k := range keys[1:] {
		tx, err := e.transfer(keys[0], nonces[0], crypto.PubkeyToAddress(k.PublicKey), ethShare)
		if err != nil {
			return err
		}
		nonces[0]++
		share = append(share, tx)
	}
	if err := e.direct(ctx, share); err != nil {
		return fmt.Errorf("hand out the token: %w", err)
	}

	// Latency: one transfer at a time, each until its block.
	sign := func(k int, count int) ([][]byte, error) {
		var out [][]byte
		to := crypto.PubkeyToAddress(keys[(k+1)%len(keys)].PublicKey)
		for range count {
			tx, err := e.transfer(keys[k], nonces[k], to, 1)
			if err != nil {
				return nil, err
			}
			nonces[k]++
			out = append(out, tx)
		}
		return out, nil
	}
	var gwLat, rpcLat []time.Duration
	for _, via := range []string{"gateway", "rpc"} {
		txs, err := sign(0, ethSequential)
		if err != nil {
			return err
		}
		for _, tx := range txs {
			start := time.Now()
			if via == "gateway" {
				err = e.viaGateway(ctx, tx, "commit")
			} else {
				err = e.direct(ctx, [][]byte{tx})
			}
			if err != nil {
				return fmt.Errorf("%s: %w", via, err)
			}
			if via == "gateway" {
				gwLat = append(gwLat, time.Since(start))
			} else {
				rpcLat = append(rpcLat, time.Since(start))
			}
		}
	}
	emitLatency(latency{Metric: "eth_transfer_gateway", P50ms: pct(gwLat, 0.5), P99ms: pct(gwLat, 0.99), Count: len(gwLat), Workers: 1,
		Note: "token transfer signed by the application, POST .../transactions?wait=commit, one at a time (3 sealers, blockPeriod 1s)"})
	emitLatency(latency{Metric: "eth_transfer_rpc", P50ms: pct(rpcLat, 0.5), P99ms: pct(rpcLat, 0.99), Count: len(rpcLat), Workers: 1,
		Note: "the same transfers sent to validator-0 with eth_sendRawTransaction, then eth_getTransactionReceipt every 50 ms until mined"})

	// Throughput: every account sends its transfers as fast as it can,
	// then all are waited for in blocks.
	var tps [2]float64
	for i, via := range []string{"gateway", "rpc"} {
		batches := make([][][]byte, len(keys))
		for k := range keys {
			if batches[k], err = sign(k, ethPerWorker); err != nil {
				return err
			}
		}
		start := time.Now()
		_, _, err := perWorker(ctx, batches, func(ctx context.Context, _ int, tx []byte) error {
			if via == "gateway" {
				return e.viaGateway(ctx, tx, "none")
			}
			return e.node.CallContext(ctx, nil, "eth_sendRawTransaction", hexutil.Bytes(tx))
		})
		if err != nil {
			return fmt.Errorf("%s: %w", via, err)
		}
		var last [][]byte
		for _, b := range batches {
			last = append(last, b[len(b)-1])
		}
		if err := e.wait(ctx, last); err != nil {
			return fmt.Errorf("%s: %w", via, err)
		}
		tps[i] = float64(len(keys)*ethPerWorker) / time.Since(start).Seconds()
	}
	emit(figure{Metric: "eth_transfers_per_s", Value: round(tps[0]), Unit: "tx/s", Samples: []float64{round(tps[0]), round(tps[1])},
		Note: fmt.Sprintf("%d token transfers from %d accounts side by side until all are mined: through the gateway (wait=none) %.1f/s, straight to validator-0's JSON-RPC %.1f/s, ratio %.3f",
			len(keys)*ethPerWorker, len(keys), tps[0], tps[1], tps[0]/tps[1])})
	return nil
}

// ethShare is the tokens each account gets to send from.
const ethShare = 1_000_000

// transfer signs a transfer of amount tokens from key at nonce to to.
func (e *ethNetwork) transfer(key *ecdsa.PrivateKey, nonce uint64, to common.Address, amount int64) ([]byte, error) {
	data, err := e.abi.Pack("transfer", to, big.NewInt(amount))
	if err != nil {
		return nil, err
	}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(e.chainID), &types.DynamicFeeTx{
		ChainID: e.chainID, Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: ethFeeCap, Gas: 100_000, To: &e.token, Data: data})
	if err != nil {
		return nil, err
	}
	return tx.MarshalBinary()
}

// viaGateway posts tx to the gateway; wait is "commit" or "none".
func (e *ethNetwork) viaGateway(ctx context.Context, tx []byte, wait string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/transactions?wait="+wait, bytes.NewReader(tx))
	if err != nil {
		return err
	}
	resp, err := e.api.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := map[string]int{"commit": http.StatusOK, "none": http.StatusAccepted}[wait]; resp.StatusCode != want {
		return fmt.Errorf("gateway: HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

// direct sends txs to the node and waits until they are all mined.
func (e *ethNetwork) direct(ctx context.Context, txs [][]byte) error {
	for _, tx := range txs {
		if err := e.node.CallContext(ctx, nil, "eth_sendRawTransaction", hexutil.Bytes(tx)); err != nil {
			return err
		}
	}
	return e.wait(ctx, txs)
}

// wait polls the node every 50 ms until every tx has a successful receipt.
func (e *ethNetwork) wait(ctx context.Context, txs [][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, raw := range txs {
		var tx types.Transaction
		if err := tx.UnmarshalBinary(raw); err != nil {
			return err
		}
		for {
			var r *types.Receipt
			if err := e.node.CallContext(ctx, &r, "eth_getTransactionReceipt", tx.Hash()); err != nil {
				return err
			}
			if r != nil {
				if r.Status != types.ReceiptStatusSuccessful {
					return fmt.Errorf("transfer %s failed in block %d", tx.Hash().Hex(), r.BlockNumber)
				}
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("transfer %s not mined: %w", tx.Hash().Hex(), ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
