package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

func setup(t *testing.T) (binDir, dataDir string) {
	t.Helper()
	binDir, err := framework.BinDir()
	if err != nil {
		t.Skip(err)
	}
	dataDir = filepath.Join(t.TempDir(), "data")
	// Registered after TempDir, so it runs before the directory goes:
	// whatever a failed test left running is killed.
	t.Cleanup(func() { framework.KillAllUnder(dataDir) })
	return binDir, dataDir
}

func startServer(t *testing.T, binDir, dataDir string, args ...string) *framework.Server {
	t.Helper()
	s, err := framework.StartServer(t.Context(), binDir, dataDir, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(s.LogPath()); err == nil {
				t.Logf("server log:\n%s", b)
			}
		}
	})
	return s
}

// TestNetworkLifecycle is the spine's promise end to end: deploy a
// 4-validator network, heal a killed validator, survive kill -9 of the
// server with the nodes re-adopted, and delete without a trace.
func TestNetworkLifecycle(t *testing.T) {
	binDir, dataDir := setup(t)
	ctx := t.Context()
	args := []string{"--port-range", "31000-31199", "--probe-interval", "500ms"}
	srv := startServer(t, binDir, dataDir, args...)
	c := srv.Client

	if _, err := c.CreateNetwork(ctx, framework.CometBFTSpec("e2e", 4, "300ms")); err != nil {
		t.Fatal(err)
	}
	n, err := framework.AllAtLeast(ctx, c, "e2e", 1, 60*time.Second)
	if err != nil {
		t.Fatalf("network never ran: %v", err)
	}

	// Status tells users where each node is.
	if len(n.Status.Nodes) != 4 {
		t.Fatalf("want 4 nodes in status, got %s", framework.Describe(n))
	}
	for _, s := range n.Status.Nodes {
		if s.PID <= 0 || !framework.Alive(s.PID) || s.Endpoints["rpc"] == "" || s.Endpoints["p2p"] == "" || s.Role != apis.RoleValidator {
			t.Fatalf("incomplete node status: %+v", s)
		}
	}
	// The RPC endpoint is the real node's: ask it directly.
	resp, err := http.Get(n.Status.Nodes[0].Endpoints["rpc"] + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Result struct {
			NodeInfo struct {
				Network string `json:"network"`
				ID      string `json:"id"`
			} `json:"node_info"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st.Result.NodeInfo.Network != "chaindock-e2e" || st.Result.NodeInfo.ID != n.Status.Nodes[0].NodeID {
		t.Fatalf("node 0's RPC says chain %q id %q; status says %q %q", st.Result.NodeInfo.Network, st.Result.NodeInfo.ID, n.Status.ChainID, n.Status.Nodes[0].NodeID)
	}

	// Every node's height advances.
	h0 := n.Status.Height
	n, err = framework.AllAtLeast(ctx, c, "e2e", h0+3, 60*time.Second)
	if err != nil {
		t.Fatalf("heights do not advance: %v", err)
	}
	// Three of four validators make blocks: a node whose first dial of
	// a peer failed redials it later, so the peers are checked once
	// every node has had the time to.
	n = waitPeers(t, c, "e2e", 3)

	// kill -9 one validator: it is restarted and catches up.
	victim, _ := framework.NodeByName(n, "validator-1")
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var healed apis.NodeStatus
	err = framework.Poll(ctx, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		n, err = c.GetNetwork(ctx, "e2e")
		if err != nil {
			return false, err.Error()
		}
		healed, _ = framework.NodeByName(n, "validator-1")
		var maxH int64
		for _, s := range n.Status.Nodes {
			maxH = max(maxH, s.Height)
		}
		ok := healed.Restarts == 1 && healed.PID != victim.PID && healed.Phase == apis.NodeRunning &&
			n.Status.Phase == apis.PhaseRunning && healed.Height >= maxH-1 && healed.Height > victim.Height
		return ok, framework.Describe(n)
	})
	if err != nil {
		t.Fatalf("killed validator not healed: %v", err)
	}
	events, err := c.NetworkEvents(ctx, "e2e", 0)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range events.Items {
		if e.Node == "validator-1" {
			reasons = append(reasons, e.Reason)
		}
	}
	if !slices.Contains(reasons, "NodeCrashed") || !slices.Contains(reasons, "NodeRestarted") {
		t.Fatalf("the crash and restart are not in the events: %v", reasons)
	}

	// The metrics tell the same story. A probe that times out on a
	// starved machine marks a node down, and the network Degraded, until
	// the next one: the metrics are read until they agree.
	var missing []string
	err = framework.Poll(ctx, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		resp, err := c.Raw(ctx, "GET", "/metrics", nil, "")
		if err != nil {
			return false, err.Error()
		}
		metricsText, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		missing = nil
		for _, want := range []string{
			`chaindock_node_restarts_total{network="e2e",node="validator-1"} 1`,
			`chaindock_node_block_height{network="e2e",node="validator-0"}`,
			`chaindock_network_phase{network="e2e",phase="Running"} 1`,
			`chaindock_node_up{network="e2e",node="validator-3"} 1`,
			`chaindock_reconcile_duration_seconds_count{result="success"}`,
		} {
			if !strings.Contains(string(metricsText), want) {
				missing = append(missing, want)
			}
		}
		return len(missing) == 0, fmt.Sprintf("/metrics has no %v", missing)
	})
	if err != nil {
		t.Error(err)
	}

	// kill -9 the server: nodes keep running, and a new server re-adopts
	// the very same processes.
	before, err := c.GetNetwork(ctx, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for _, s := range before.Status.Nodes {
		pids[s.Name] = s.PID
	}
	srv.Kill()
	for name, pid := range pids {
		if !framework.Alive(pid) {
			t.Fatalf("%s (pid %d) died with the server", name, pid)
		}
	}
	killedAt := time.Now()
	srv = startServer(t, binDir, dataDir, args...)
	c = srv.Client
	err = framework.Poll(ctx, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		n, err = c.GetNetwork(ctx, "e2e")
		if err != nil {
			return false, err.Error()
		}
		fresh := n.Status.LastProbeTime != nil && n.Status.LastProbeTime.After(killedAt)
		return fresh && n.Status.Phase == apis.PhaseRunning && framework.MinHeight(n) > framework.MinHeight(before), framework.Describe(n)
	})
	if err != nil {
		t.Fatalf("restarted server does not report the network running: %v", err)
	}
	for _, s := range n.Status.Nodes {
		if s.PID != pids[s.Name] {
			t.Errorf("%s: pid %d after the server restart, was %d: the node was restarted instead of re-adopted", s.Name, s.PID, pids[s.Name])
		}
		if want := map[string]int{"validator-1": 1}[s.Name]; s.Restarts != want {
			t.Errorf("%s: %d restarts after the server restart, want %d", s.Name, s.Restarts, want)
		}
	}

	// Delete: nothing of the network is left.
	ports := framework.NodePorts(n)
	if len(ports) != 8 {
		t.Fatalf("want 8 node ports, got %v", ports)
	}
	if _, err := c.DeleteNetwork(ctx, "e2e"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "e2e", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dataDir, ports, pids, 10*time.Second)
	srv.Stop()
}

// assertNothingLeft fails the test when a deleted network left a process
// under the runtime's directory, a listening node port, a node directory,
// or one of its nodes' processes (pids, by node name) alive.
func assertNothingLeft(t *testing.T, dataDir string, ports []int, pids map[string]int, within time.Duration) {
	t.Helper()
	runtimeDir := filepath.Join(dataDir, "runtime", "process")
	if err := framework.Poll(t.Context(), within, 100*time.Millisecond, func() (bool, string) {
		left := framework.ProcessesUnder(runtimeDir)
		var listening []int
		for _, p := range ports {
			if framework.PortListening(p) {
				listening = append(listening, p)
			}
		}
		entries, _ := os.ReadDir(runtimeDir)
		return len(left) == 0 && len(listening) == 0 && len(entries) == 0,
			"processes " + fmtInts(left) + ", listening ports " + fmtInts(listening) + ", node directories " + fmtEntries(entries)
	}); err != nil {
		t.Fatalf("the deleted network left something behind: %v", err)
	}
	for name, pid := range pids {
		if framework.Alive(pid) {
			t.Errorf("%s (pid %d) still runs", name, pid)
		}
	}
}

// waitPeers waits up to a minute until every node of network has want
// peers, and returns the network as it then is: a node whose first dial
// of a peer failed redials it later.
func waitPeers(t *testing.T, c *client.Client, network string, want int) *apis.Network {
	t.Helper()
	var n *apis.Network
	err := framework.Poll(t.Context(), time.Minute, 250*time.Millisecond, func() (bool, string) {
		cur, err := c.GetNetwork(t.Context(), network)
		if err != nil {
			return false, err.Error()
		}
		n = cur
		for _, s := range n.Status.Nodes {
			if s.Peers != want {
				return false, fmt.Sprintf("%s has %d peers, want %d", s.Name, s.Peers, want)
			}
		}
		return true, ""
	})
	if err != nil && n == nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Error(err)
	}
	return n
}
