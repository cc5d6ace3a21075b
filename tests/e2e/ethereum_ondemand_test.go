package e2e

import (
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/ethereum"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestEthereumSealsOnDemand runs a single sealer with a block period of
// 0, which seals a block only when a transaction waits: the network is
// Running at height 0, stays there while idle, and a transfer through the
// gateway makes block 1, which the explorer then shows.
func TestEthereumSealsOnDemand(t *testing.T) {
	binDir, dataDir := setup(t)
	if _, err := os.Stat(filepath.Join(binDir, ethereum.Program)); err != nil {
		t.Skipf("%s has no geth binary: run `make build`, which installs go-ethereum v1.13.15", binDir)
	}
	ctx := t.Context()
	srv := startServer(t, binDir, dataDir, "--port-range", "32200-32299", "--probe-interval", "500ms")
	c := srv.Client
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	spec := fmt.Appendf(nil, `apiVersion: chaindock/v1
kind: Network
metadata: {name: ondemand}
spec:
  chain: ethereum
  runtime: process
  validators: 1
  ethereum:
    blockPeriod: 0s
    alloc: {%q: "1000000000000000000"}
`, crypto.PubkeyToAddress(key.PublicKey).Hex())
	if _, err := c.CreateNetwork(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var n *apis.Network
	err = framework.Poll(ctx, time.Minute, 250*time.Millisecond, func() (bool, string) {
		n, err = c.GetNetwork(ctx, "ondemand")
		if err != nil {
			return false, err.Error()
		}
		s, _ := framework.NodeByName(n, "validator-0")
		return n.Status.Phase == apis.PhaseRunning && s.Sealing != nil && *s.Sealing,
			fmt.Sprintf("sealing %v; %s", s.Sealing != nil && *s.Sealing, framework.Describe(n))
	})
	if err != nil {
		t.Fatalf("an idle on-demand network never ran with its sealer sealing: %v", err)
	}
	if n.Status.Height != 0 {
		t.Fatalf("idle network at height %d, want 0: %s", n.Status.Height, framework.Describe(n))
	}
	// Idle, it makes no block, and stays Running.
	time.Sleep(2 * time.Second)
	if n, err = c.GetNetwork(ctx, "ondemand"); err != nil || n.Status.Height != 0 || n.Status.Phase != apis.PhaseRunning {
		t.Fatalf("idle for 2s: %v %s, want Running at height 0", err, framework.Describe(n))
	}

	app := &evmApp{t: t, c: c, network: "ondemand", key: key}
	keepCommittedFloor(t)
	lastCommitted.Store(0)
	var info struct {
		ChainID uint64 `json:"chainId"`
	}
	app.query("/chain", "", &info)
	app.chainID = new(big.Int).SetUint64(info.ChainID)
	to := common.HexToAddress("0x00000000000000000000000000000000000000c1")
	s := app.send(to, nil)
	if s.status != http.StatusOK || s.receipt["committed"] != true || s.receipt["height"] != float64(1) {
		t.Fatalf("a transfer on an idle chain: HTTP %d %v %+v, want committed in block 1", s.status, s.receipt, s.problem)
	}
	var balance string
	app.query(ethereum.QueryBalance+to.Hex(), "", &balance)
	if balance != "0" {
		t.Fatalf("balance of %s = %q, want 0 (a transfer of nothing)", to.Hex(), balance)
	}
	var tx struct {
		Height int64  `json:"height"`
		Type   string `json:"type"`
	}
	if err := pollJSON(t, c, "/api/v1/networks/ondemand/transactions/"+s.receipt["hash"].(string), &tx); err != nil || tx.Height != 1 || tx.Type != "transfer" {
		t.Fatalf("explorer: %+v %v, want the transfer in block 1", tx, err)
	}

	if _, err := c.DeleteNetwork(ctx, "ondemand"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "ondemand", time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if left := framework.ProcessesUnder(dataDir); len(left) > 0 {
		t.Fatalf("processes left under %s: %v", dataDir, left)
	}
}
