package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/ethereum"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestEthereumLifecycle deploys a 3-sealer Clique network on the process
// runtime, checks that every node follows the chain and every sealer
// seals, heals a sealer killed with SIGKILL, and deletes the network
// without a trace.
func TestEthereumLifecycle(t *testing.T) {
	binDir, dataDir := setup(t)
	if _, err := os.Stat(filepath.Join(binDir, ethereum.Program)); err != nil {
		t.Skipf("%s has no geth binary: run `make build`, which installs go-ethereum v1.13.15", binDir)
	}
	ctx := t.Context()
	srv := startServer(t, binDir, dataDir, "--port-range", "32000-32199", "--probe-interval", "500ms")
	c := srv.Client

	// An application's account, funded at genesis, signs its own
	// transactions to the contracts.
	app, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	spec := fmt.Appendf(nil, `apiVersion: chaindock/v1
kind: Network
metadata: {name: eth}
spec:
  chain: ethereum
  runtime: process
  validators: 3
  ethereum:
    alloc:
      "0x00000000000000000000000000000000000000aa": "1000000000000000000"
      %q: "1000000000000000000000"
`, crypto.PubkeyToAddress(app.PublicKey).Hex())
	created := time.Now()
	if _, err := c.CreateNetwork(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var n *apis.Network
	n, err = framework.AllAtLeast(ctx, c, "eth", 2, 90*time.Second)
	if err != nil {
		t.Fatalf("network never ran: %v", err)
	}
	t.Logf("deployed: every node at height >= 2 after %.1fs", time.Since(created).Seconds())

	wantChainID := ethereum.ChainIDFor("eth")
	if n.Status.ChainID != strconv.FormatUint(wantChainID, 10) {
		t.Errorf("status chain ID %q, want %d", n.Status.ChainID, wantChainID)
	}
	for _, s := range n.Status.Nodes {
		en, err := enode.ParseV4(s.Endpoints["p2p"])
		if s.PID <= 0 || !framework.Alive(s.PID) || s.Role != apis.RoleValidator || !strings.HasPrefix(s.Endpoints["rpc"], "http://127.0.0.1:") ||
			s.Sealing == nil || !*s.Sealing ||
			err != nil || en.ID().String() != s.NodeID || en.IP().String() != "127.0.0.1" {
			t.Fatalf("incomplete node status (%v): %+v", err, s)
		}
		// The endpoint is the real node's JSON-RPC: ask it directly.
		var id string
		ethCall(t, s.Endpoints["rpc"], "eth_chainId", &id)
		if got, _ := strconv.ParseUint(strings.TrimPrefix(id, "0x"), 16, 64); got != wantChainID {
			t.Errorf("%s says chain ID %s, want %d", s.Name, id, wantChainID)
		}
		var balance string
		ethCall(t, s.Endpoints["rpc"], "eth_getBalance", &balance, "0x00000000000000000000000000000000000000aa", "latest")
		if balance != "0xde0b6b3a7640000" {
			t.Errorf("%s: the spec's account holds %s, want 1 ether", s.Name, balance)
		}
	}
	checkLoopbackOnly(t, framework.NodePorts(n))

	// Every node follows the chain, with both other nodes as peers, and
	// every sealer seals its turns.
	n, err = framework.AllAtLeast(ctx, c, "eth", 6, 60*time.Second)
	if err != nil {
		t.Fatalf("heights do not advance: %v", err)
	}
	n = waitPeers(t, c, "eth", 2)
	var signers []string
	ethCall(t, n.Status.Nodes[0].Endpoints["rpc"], "clique_getSigners", &signers, "latest")
	var status struct {
		SealerActivity map[string]int `json:"sealerActivity"`
	}
	// A starved sealer may let the others seal the first blocks: wait
	// for the chain to count a block of each (of its last 64).
	err = framework.Poll(ctx, time.Minute, 500*time.Millisecond, func() (bool, string) {
		status.SealerActivity = nil
		ethCall(t, n.Status.Nodes[0].Endpoints["rpc"], "clique_status", &status)
		for _, a := range signers {
			if status.SealerActivity[a] == 0 {
				return false, fmt.Sprintf("sealer %s sealed none of the last blocks: %v", a, status.SealerActivity)
			}
		}
		return true, ""
	})
	if len(signers) != 3 || len(status.SealerActivity) != 3 {
		t.Fatalf("signers %v, sealer activity %v: want 3 sealers, each sealing", signers, status.SealerActivity)
	}
	if err != nil {
		t.Error(err)
	}

	// kill -9 one sealer's geth: the other two keep sealing, and the
	// platform restarts it and it catches up.
	victim, _ := framework.NodeByName(n, "validator-1")
	othersBefore := int64(0)
	for _, s := range n.Status.Nodes {
		if s.Name != victim.Name {
			othersBefore = max(othersBefore, s.Height)
		}
	}
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var healed apis.NodeStatus
	var healTime time.Duration
	othersMax := othersBefore
	err = framework.Poll(ctx, 90*time.Second, 100*time.Millisecond, func() (bool, string) {
		n, err = c.GetNetwork(ctx, "eth")
		if err != nil {
			return false, err.Error()
		}
		s, _ := framework.NodeByName(n, victim.Name)
		var maxH int64
		for _, o := range n.Status.Nodes {
			maxH = max(maxH, o.Height)
			if o.Name != victim.Name {
				othersMax = max(othersMax, o.Height)
			}
		}
		if healTime == 0 && s.Restarts == 1 && s.PID != victim.PID && s.Phase == apis.NodeRunning &&
			n.Status.Phase == apis.PhaseRunning && s.Height >= maxH-1 && s.Height > victim.Height {
			healTime, healed = time.Since(killed), s
		}
		// The chain never stops: the other two seal on, during the heal
		// and after it.
		return healTime > 0 && othersMax >= othersBefore+2, fmt.Sprintf("healed after %s; the others went from height %d to %d; %s", healTime, othersBefore, othersMax, framework.Describe(n))
	})
	if err != nil {
		t.Fatalf("killed sealer not healed, or the chain stopped: %v", err)
	}
	t.Logf("healed: %s running again and caught up (height %d) %.1fs after kill -9", victim.Name, healed.Height, healTime.Seconds())
	// The restarted sealer seals again: it signs blocks after its restart.
	sealer := sealerOf(t, n, victim.Name)
	err = framework.Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		var signer string
		var head struct {
			Number string `json:"number"`
		}
		ethCall(t, healed.Endpoints["rpc"], "eth_getBlockByNumber", &head, "latest", false)
		for h, _ := strconv.ParseUint(strings.TrimPrefix(head.Number, "0x"), 16, 64); h > uint64(healed.Height); h-- {
			ethCall(t, healed.Endpoints["rpc"], "clique_getSigner", &signer, "0x"+strconv.FormatUint(h, 16))
			if strings.EqualFold(signer, sealer) {
				return true, ""
			}
		}
		return false, "no block sealed by " + victim.Name + " since its restart, head " + head.Number
	})
	if err != nil {
		t.Error(err)
	}

	checkEVMContracts(t, binDir, dataDir, c, "eth", app)
	checkEthereumScaling(t, binDir, dataDir, c, "eth")
	n, err = c.GetNetwork(ctx, "eth")
	if err != nil {
		t.Fatal(err)
	}

	// Delete: no geth process, port or node directory is left.
	ports := framework.NodePorts(n)
	pids := map[string]int{}
	for _, s := range n.Status.Nodes {
		pids[s.Name] = s.PID
	}
	if _, err := c.DeleteNetwork(ctx, "eth"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "eth", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dataDir, ports, pids, 15*time.Second)
	srv.Stop()
}

// sealerOf is the account a node seals with: its coinbase.
func sealerOf(t *testing.T, n *apis.Network, node string) string {
	t.Helper()
	s, _ := framework.NodeByName(n, node)
	var coinbase string
	ethCall(t, s.Endpoints["rpc"], "eth_coinbase", &coinbase)
	return coinbase
}

// ethCall makes one JSON-RPC call to a node and decodes its result.
func ethCall(t *testing.T, url, method string, result any, params ...any) {
	t.Helper()
	if err := ethCallErr(t.Context(), url, method, result, params...); err != nil {
		t.Fatal(err)
	}
}

// ethCallErr is ethCall for a node that may be restarting.
func ethCallErr(ctx context.Context, url, method string, result any, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s at %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("%s at %s: %w", method, url, err)
	}
	if out.Error != nil {
		return fmt.Errorf("%s at %s: %s", method, url, out.Error.Message)
	}
	if err := json.Unmarshal(out.Result, result); err != nil {
		return fmt.Errorf("%s at %s: result %s: %w", method, url, out.Result, err)
	}
	return nil
}

// checkLoopbackOnly fails the test when anything listens on one of ports
// at an address other than 127.0.0.1, as read from /proc/net/tcp{,6}.
func checkLoopbackOnly(t *testing.T, ports []int) {
	t.Helper()
	want := map[int]bool{}
	for _, p := range ports {
		want[p] = true
	}
	found := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // LISTEN
				continue
			}
			addr, portHex, ok := strings.Cut(fields[1], ":")
			port, err := strconv.ParseInt(portHex, 16, 32)
			if !ok || err != nil || !want[int(port)] {
				continue
			}
			found[int(port)] = true
			if addr != "0100007F" {
				t.Errorf("port %d listens on %s (%s), not on 127.0.0.1 only", port, addr, table)
			}
		}
		f.Close()
	}
	if len(found) != len(want) {
		t.Errorf("listening: %v of ports %v", found, ports)
	}
}
