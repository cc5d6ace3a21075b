package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// fabricBin is the directory of the user's Fabric peer and orderer
// binaries: $FABRIC_BIN, else where PATH has them. The test skips
// without them: ChainDock does not build Fabric.
func fabricBin(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("FABRIC_BIN"); d != "" {
		for _, p := range []string{fabric.PeerProgram, fabric.OrdererProgram} {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				t.Skipf("FABRIC_BIN=%s has no %s binary", d, p)
			}
		}
		return d
	}
	peer, err := exec.LookPath(fabric.PeerProgram)
	if err != nil {
		t.Skip("no Fabric binaries: set FABRIC_BIN to the directory of Fabric 3.1's peer and orderer, or put them on PATH")
	}
	if _, err := exec.LookPath(fabric.OrdererProgram); err != nil {
		t.Skip("no Fabric orderer binary: set FABRIC_BIN to the directory of Fabric 3.1's peer and orderer, or put them on PATH")
	}
	return filepath.Dir(peer)
}

// startFabricServer starts a server that finds the Fabric binaries as a
// user's does: through FABRIC_BIN.
func startFabricServer(t *testing.T, binDir, dataDir, fabBin string, args ...string) *framework.Server {
	t.Helper()
	s, err := framework.StartServerEnv(t.Context(), binDir, dataDir, []string{"FABRIC_BIN=" + fabBin}, args...)
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

// TestFabricLifecycle deploys two peer organisations of two peers each
// and three Raft orderers on the process runtime, waits until every node
// has joined the channel, kills the Raft leader with SIGKILL and checks
// the other orderers elect another and the killed one comes back, then
// deletes the network without a trace.
func TestFabricLifecycle(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "36000-36199", "--probe-interval", "500ms")
	c := srv.Client

	const channel = "trade"
	n, applied := applyFabric(t, c, "fab", `  organizations:
    - {name: org1, peers: 2}
    - {name: org2, peers: 2}
  fabric:
    orderers: 3
    channel: `+channel+"\n", 120*time.Second)
	t.Logf("deployed: every orderer and peer joined channel %s and Running %.1fs after apply", channel, time.Since(applied).Seconds())

	if n.Status.ChainID != channel {
		t.Errorf("status chain ID %q, want the channel %q", n.Status.ChainID, channel)
	}
	orderers, peers := 0, 0
	for _, s := range n.Status.Nodes {
		if s.Joining || s.PID <= 0 || !framework.Alive(s.PID) || !strings.HasPrefix(s.Endpoints[fabric.PortOperations], "http://127.0.0.1:") {
			t.Errorf("incomplete node status: %+v", s)
		}
		switch s.Role {
		case apis.RoleValidator:
			orderers++
			if s.Organization != "orderer" || !strings.HasPrefix(s.Endpoints[fabric.PortAdmin], "https://127.0.0.1:") {
				t.Errorf("orderer %s: organization %q, admin endpoint %q", s.Name, s.Organization, s.Endpoints[fabric.PortAdmin])
			}
		case apis.RoleFull:
			peers++
		}
		// The height is the channel's, read from the node's own metrics.
		if h := channelHeight(t, s, channel); h < 1 {
			t.Errorf("%s: channel %s at height %d on its operations endpoint, want >= 1", s.Name, channel, h)
		}
	}
	if orderers != 3 || peers != 4 {
		t.Fatalf("%d orderers and %d peers, want 3 and 4", orderers, peers)
	}
	checkLoopbackOnly(t, framework.NodePorts(n))

	// Height 1 is the genesis block each node joined with; each
	// organisation's anchor peers are set by a config update of its
	// own, a block each, before the network runs. The network ran once a
	// Raft leader heard from a majority; soon it hears from all three,
	// and every peer knows every other of the channel, the other
	// organisation's through its anchor peers.
	leader := ""
	var err error
	err = framework.Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		n, err = c.GetNetwork(ctx, "fab")
		if err != nil {
			return false, err.Error()
		}
		leader = raftLeader(ctx, t, n, channel, "")
		ok := leader != ""
		for _, s := range n.Status.Nodes {
			// An orderer hears from the other two; a peer knows the
			// three other peers by gossip.
			ok = ok && (s.Role == apis.RoleValidator && s.Peers == 2 || s.Role == apis.RoleFull && s.Peers == 3)
			ok = ok && channelHeight(t, s, channel) == 3
		}
		return ok, fmt.Sprintf("leader %q; %s", leader, framework.Describe(n))
	})
	if err != nil {
		t.Fatalf("Raft and gossip never settled: %v", err)
	}
	t.Logf("Raft leader %s elected, every orderer with 2 other consenters, every peer gossiping with the 3 others across both organisations, every node at height 3 (genesis and two anchor peer updates), %.1fs after apply", leader, time.Since(applied).Seconds())

	// kill -9 the Raft leader: the other two elect a leader among them
	// and keep serving, and the platform restarts the killed orderer,
	// which finds its channel in its own ledger.
	victim, _ := framework.NodeByName(n, leader)
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	newLeader := ""
	var othersDown []string
	var healTime time.Duration
	err = framework.Poll(ctx, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		if newLeader == "" {
			newLeader = raftLeader(ctx, t, n, channel, leader)
		}
		n, err = c.GetNetwork(ctx, "fab")
		if err != nil {
			return false, err.Error()
		}
		// Once they have a leader, the other two order on: Running,
		// with a quorum of the three.
		for _, o := range n.Status.Nodes {
			if newLeader != "" && o.Role == apis.RoleValidator && o.Name != leader && o.Phase != apis.NodeRunning {
				othersDown = append(othersDown, o.Name+" "+o.Phase)
			}
		}
		s, _ := framework.NodeByName(n, leader)
		if healTime == 0 && s.Restarts == 1 && s.PID != victim.PID && s.Phase == apis.NodeRunning && s.Height >= 1 && n.Status.Phase == apis.PhaseRunning {
			healTime = time.Since(killed)
		}
		return healTime > 0 && newLeader != "", fmt.Sprintf("new leader %q, healed after %s; %s", newLeader, healTime, framework.Describe(n))
	})
	if err != nil {
		t.Fatalf("killed Raft leader %s: %v", leader, err)
	}
	t.Logf("killed Raft leader %s: %s leads now; %s Running again on its channel %.1fs after kill -9", leader, newLeader, leader, healTime.Seconds())
	if len(othersDown) > 0 {
		t.Errorf("the other orderers stopped serving after %s led: %v", newLeader, othersDown)
	}
	// It rejoins the channel's Raft as a follower: it hears from both
	// other consenters again.
	err = framework.Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		n, err = c.GetNetwork(ctx, "fab")
		if err != nil {
			return false, err.Error()
		}
		s, _ := framework.NodeByName(n, leader)
		m, err := fabricMetrics(ctx, s, channel)
		if err != nil {
			return false, err.Error()
		}
		return s.Peers == 2 && m[fabric.MetricIsLeader] == 0 && m["ledger_blockchain_height"] >= 1,
			fmt.Sprintf("%s: %d other consenters, leader %v, height %v", leader, s.Peers, m[fabric.MetricIsLeader], m["ledger_blockchain_height"])
	})
	if err != nil {
		t.Fatalf("restarted %s did not rejoin the channel's Raft: %v", leader, err)
	}
	t.Logf("%s back in the channel's Raft, hearing from both other consenters, %.1fs after kill -9", leader, time.Since(killed).Seconds())
	for _, o := range n.Status.Nodes {
		if o.Name != leader && o.Restarts != 0 {
			t.Errorf("%s restarted %d times, want none", o.Name, o.Restarts)
		}
	}

	// Delete: no process, port or node directory is left.
	ports := framework.NodePorts(n)
	pids := map[string]int{}
	for _, s := range n.Status.Nodes {
		pids[s.Name] = s.PID
	}
	if _, err := c.DeleteNetwork(ctx, "fab"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "fab", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dataDir, ports, pids, 15*time.Second)
	srv.Stop()
}

// fabricMetrics reads a node's Prometheus metrics of channel ch.
func fabricMetrics(ctx context.Context, s apis.NodeStatus, ch string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoints[fabric.PortOperations]+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return fabric.ParseMetrics(string(b), ch), nil
}

func channelHeight(t *testing.T, s apis.NodeStatus, ch string) int64 {
	t.Helper()
	m, err := fabricMetrics(t.Context(), s, ch)
	if err != nil {
		t.Errorf("%s: %v", s.Name, err)
		return 0
	}
	return int64(m["ledger_blockchain_height"])
}

// raftLeader is the orderer that says it leads the channel's Raft, other
// than not ("" for any); "" when none does.
func raftLeader(ctx context.Context, t *testing.T, n *apis.Network, ch, not string) string {
	t.Helper()
	for _, s := range n.Status.Nodes {
		if s.Role != apis.RoleValidator || s.Name == not {
			continue
		}
		m, err := fabricMetrics(ctx, s, ch)
		if err == nil && m[fabric.MetricIsLeader] == 1 {
			return s.Name
		}
	}
	return ""
}

// TestFabricDefaults deploys the smallest Fabric network, spec.fabric
// left out but for a single orderer: one organisation with one peer (no
// other peer to gossip with) on a channel named after the network.
func TestFabricDefaults(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "36200-36299", "--probe-interval", "500ms")
	c := srv.Client

	// Refused with every problem named, and not stored.
	_, err := c.CreateNetwork(ctx, []byte(`apiVersion: chaindock/v1
kind: Network
metadata: {name: solo}
spec:
  chain: fabric
  runtime: process
  organizations: [{name: org1}]
  fabric: {orderers: 2, channel: Solo}
`))
	for _, want := range []string{"spec.organizations[0].peers", "spec.fabric.orderers", "spec.fabric.channel"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad spec: error %v does not name %s", err, want)
		}
	}
	if _, err := c.GetNetwork(ctx, "solo"); err == nil {
		t.Error("a refused spec was stored")
	}

	n, applied := applyFabric(t, c, "solo", "  organizations: [{name: org1, peers: 1}]\n  fabric: {orderers: 1}\n", 90*time.Second)
	t.Logf("deployed: 1 orderer and 1 peer on channel %s, Running %.1fs after apply", n.Status.ChainID, time.Since(applied).Seconds())
	if n.Status.ChainID != "solo" || len(n.Status.Nodes) != 2 {
		t.Fatalf("channel %q with %d nodes, want solo with 2", n.Status.ChainID, len(n.Status.Nodes))
	}
	for _, s := range n.Status.Nodes {
		if h := channelHeight(t, s, "solo"); h < 1 {
			t.Errorf("%s: channel solo at height %d", s.Name, h)
		}
	}
	ports := framework.NodePorts(n)
	if _, err := c.DeleteNetwork(ctx, "solo"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "solo", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dataDir, ports, nil, 15*time.Second)
	srv.Stop()
}

// deleteFabricNetwork deletes network n, waits until it is gone, checks
// that none of its processes, ports or files is left under dataDir, and
// stops the server.
func deleteFabricNetwork(t *testing.T, srv *framework.Server, dataDir string, n *apis.Network) {
	t.Helper()
	ports := framework.NodePorts(n)
	if _, err := srv.Client.DeleteNetwork(t.Context(), n.Metadata.Name); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(t.Context(), srv.Client, n.Metadata.Name, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dataDir, ports, nil, 15*time.Second)
	srv.Stop()
}

// applyFabric applies Fabric network name on the process runtime, with
// spec the fields under spec: after chain and runtime, and returns it with
// the time it was applied once it is Running: every node Running, and
// every node but the chaincode host on the channel (height 1 or more).
// $FABRIC_VERSION, when set, is the network's spec.fabric.version: the
// release of the binaries in $FABRIC_BIN.
func applyFabric(t *testing.T, c *client.Client, name, spec string, timeout time.Duration) (*apis.Network, time.Time) {
	t.Helper()
	applied := time.Now()
	body := withFabricVersion(t, fmt.Appendf(nil, "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: %s}\nspec:\n  chain: fabric\n  runtime: process\n%s", name, spec))
	if _, err := c.CreateNetwork(t.Context(), body); err != nil {
		t.Fatal(err)
	}
	n := waitFabric(t.Context(), t, c, name, timeout, "network "+name+" running", func(n *apis.Network) bool {
		ok := len(n.Status.Nodes) == len(n.Spec.Nodes())
		for _, s := range n.Status.Nodes {
			ok = ok && s.Phase == apis.NodeRunning && (s.Role == apis.RoleChaincode || s.Height >= 1)
		}
		return ok
	})
	return n, applied
}

// withFabricVersion sets spec.fabric.version of the network manifest
// body to $FABRIC_VERSION, and leaves body as it is when that is unset.
func withFabricVersion(t *testing.T, body []byte) []byte {
	t.Helper()
	v := os.Getenv("FABRIC_VERSION")
	if v == "" {
		return body
	}
	var doc map[string]any
	if err := yaml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("FABRIC_VERSION: %v", err)
	}
	spec, _ := doc["spec"].(map[string]any)
	if spec == nil {
		t.Fatal("FABRIC_VERSION: the manifest has no spec")
	}
	f, _ := spec["fabric"].(map[string]any)
	if f == nil {
		f = map[string]any{}
	}
	f["version"] = v
	spec["fabric"] = f
	t.Logf("spec.fabric.version: %s (FABRIC_VERSION)", v)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatalf("FABRIC_VERSION: %v", err)
	}
	return out
}

// indexedTx is a transaction of the explorer, with the height of its
// block.
type indexedTx struct {
	height int64
	api.Tx
}

// indexedTxs are the transactions of network's blocks from height from
// on, read from the explorer once it has indexed height upTo.
func indexedTxs(ctx context.Context, t *testing.T, c *client.Client, network string, from, upTo int64) []indexedTx {
	t.Helper()
	base := "/api/v1/networks/" + network
	var st api.ExplorerStatus
	if err := framework.Poll(ctx, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		if err := getJSON(ctx, c, base+"/explorer", &st); err != nil {
			return false, err.Error()
		}
		return st.IndexedHeight >= upTo, fmt.Sprintf("explorer %+v, want height %d", st, upTo)
	}); err != nil {
		t.Fatal(err)
	}
	var out []indexedTx
	for h := from; h <= st.IndexedHeight; h++ {
		var blk struct {
			api.Block
			Txs []api.Tx `json:"transactions"`
		}
		if err := getJSON(ctx, c, fmt.Sprintf("%s/blocks/%d", base, h), &blk); err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		for _, tx := range blk.Txs {
			out = append(out, indexedTx{height: h, Tx: tx})
		}
	}
	return out
}
