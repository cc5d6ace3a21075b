package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// checkEthereumScaling adds a fourth sealer to a running 3-sealer network
// through the platform and sees it voted in and sealing, adds a full node
// that follows the chain, then removes the sealer again: voted out, its
// process and ports gone. The chain never stops meanwhile. Changes the
// chain could not survive are refused first.
func checkEthereumScaling(t *testing.T, binDir, dataDir string, c *client.Client, network string) {
	t.Helper()
	ctx := t.Context()
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	n, err := c.GetNetwork(ctx, network)
	if err != nil {
		t.Fatal(err)
	}
	// The signers as the first node that answers sees them: nodes
	// restart one at a time while the network is reshaped.
	signers := func() []string {
		cur, err := c.GetNetwork(ctx, network)
		if err != nil {
			t.Logf("get network: %v", err)
			return nil
		}
		var s []string
		for _, ns := range cur.Status.Nodes {
			if err = ethCallErr(ctx, ns.Endpoints["rpc"], "clique_getSigners", &s, "latest"); err == nil {
				return s
			}
		}
		t.Logf("no node answers: %v", err)
		return nil
	}
	before := signers()

	cl.fails("spec.validators", "scale", network, "--validators", "0")
	cl.fails("organization: the network's nodes belong to no organization", "scale", network, "--validators", "4", "--org", "acme")

	// A fourth sealer: planned, started, the others restarted with it as
	// a peer one at a time, then voted in.
	start := time.Now()
	startHeight := n.Status.Height
	out := cl.ok("scale", network, "--validators", "4")
	if !strings.Contains(out, "network/"+network+" scaling to 4 nodes") {
		t.Fatalf("scale: %s", out)
	}
	cl.fails("still carrying out its last change", "scale", network, "--full-nodes", "1")
	var sealer string
	// The controller marks the node joined a probe after the vote, so the
	// status may say it seals while it still joins. That is wrong only if
	// the node's own chain, which a probe read before this check, still
	// leaves it out of the signers: the signers only grow here.
	votedIn := func(ctx context.Context, rpc string) bool {
		var coinbase string
		var s []string
		if ethCallErr(ctx, rpc, "eth_coinbase", &coinbase) != nil || ethCallErr(ctx, rpc, "clique_getSigners", &s, "latest") != nil {
			return true // restarting: nothing to tell
		}
		return slices.ContainsFunc(s, func(a string) bool { return strings.EqualFold(a, coinbase) })
	}
	sealedWhileJoining := false
	// The signers are read once per check: a second read may reach a
	// node that restarted meanwhile and is a block behind the vote.
	var seen []string
	err = framework.Poll(ctx, 3*time.Minute, 250*time.Millisecond, func() (bool, string) {
		n, err = c.GetNetwork(ctx, network)
		if err != nil {
			return false, err.Error()
		}
		s, ok := framework.NodeByName(n, "validator-3")
		if ok && s.Joining && s.Sealing != nil && *s.Sealing && !votedIn(ctx, s.Endpoints["rpc"]) {
			sealedWhileJoining = true
		}
		if !ok || s.Joining || s.Phase != apis.NodeRunning {
			return false, framework.Describe(n)
		}
		if sealer == "" {
			sealer = sealerOf(t, n, "validator-3")
		}
		seen = signers()
		return slices.ContainsFunc(seen, func(a string) bool { return strings.EqualFold(a, sealer) }) && n.Status.Phase == apis.PhaseRunning,
			fmt.Sprintf("signers %v; %s", seen, framework.Describe(n))
	})
	if err != nil {
		t.Fatalf("the fourth sealer was not voted in: %v", err)
	}
	t.Logf("scaled to 4 sealers: validator-3 voted in %.1fs after the request", time.Since(start).Seconds())
	if len(seen) != len(before)+1 {
		t.Fatalf("signers %v after adding one to %v", seen, before)
	}
	// The vote may pass before the last old node has restarted with its
	// new peers: wait for the restarts, then count them.
	reconfigured := 0
	err = framework.Poll(ctx, 2*time.Minute, 250*time.Millisecond, func() (bool, string) {
		reconfigured = 0
		for _, e := range networkEvents(t, c, network) {
			if e.Reason == "NodeReconfigured" {
				reconfigured++
			}
		}
		return reconfigured >= 3, fmt.Sprintf("%d NodeReconfigured events", reconfigured)
	})
	if err != nil || reconfigured != 3 {
		t.Errorf("%d nodes restarted with their new peers, want the 3 old ones (%v)", reconfigured, err)
	}
	// It seals: a block after its admission is signed by it, and the
	// probe says so, as it did not before the vote.
	if sealedWhileJoining {
		t.Error("validator-3 was reported sealing before the sealers voted it in")
	}
	n = waitSealedBy(t, c, network, "validator-3", sealer)
	err = framework.Poll(ctx, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		n, err = c.GetNetwork(ctx, network)
		if err != nil {
			return false, err.Error()
		}
		s, _ := framework.NodeByName(n, "validator-3")
		return s.Sealing != nil && *s.Sealing, fmt.Sprintf("validator-3 sealing: %v", s.Sealing)
	})
	if err != nil {
		t.Fatalf("the probe does not see validator-3 seal: %v", err)
	}
	if n.Status.Height <= startHeight {
		t.Fatalf("the chain did not go on: height %d, was %d", n.Status.Height, startHeight)
	}

	// A full node follows the chain, with the four sealers as peers once
	// they have restarted with it in their configs.
	cl.ok("scale", network, "--full-nodes", "1")
	from := n.Status.Height
	err = framework.Poll(ctx, 2*time.Minute, 250*time.Millisecond, func() (bool, string) {
		n, err = c.GetNetwork(ctx, network)
		if err != nil {
			return false, err.Error()
		}
		full, ok := framework.NodeByName(n, "full-0")
		return ok && !full.Joining && full.Phase == apis.NodeRunning && full.Peers == 4 && full.Height >= from+2 && n.Status.Phase == apis.PhaseRunning,
			framework.Describe(n)
	})
	if err != nil {
		t.Fatalf("the full node does not follow: %v", err)
	}

	// Two of the four sealers cannot carry on alone if one of them is
	// down; with every sealer running, four to three is fine.
	victim, _ := framework.NodeByName(n, "validator-3")
	ports := []int{}
	for _, ep := range []string{"rpc", "p2p"} {
		if i := strings.LastIndex(victim.Endpoints[ep], ":"); i > 0 {
			p, _ := strconv.Atoi(strings.TrimRight(victim.Endpoints[ep][i+1:], "/"))
			ports = append(ports, p)
		}
	}
	cl.ok("scale", network, "--validators", "3")
	err = framework.Poll(ctx, 2*time.Minute, 250*time.Millisecond, func() (bool, string) {
		n, err = c.GetNetwork(ctx, network)
		if err != nil {
			return false, err.Error()
		}
		_, still := framework.NodeByName(n, "validator-3")
		seen = signers()
		return !still && len(seen) == len(before) && n.Status.Phase == apis.PhaseRunning, fmt.Sprintf("signers %v; %s", seen, framework.Describe(n))
	})
	if err != nil {
		t.Fatalf("the fourth sealer was not removed: %v", err)
	}
	if slices.ContainsFunc(seen, func(a string) bool { return strings.EqualFold(a, sealer) }) {
		t.Fatalf("validator-3 (%s) still signs: %v", sealer, seen)
	}
	if victim.PID > 0 && framework.Alive(victim.PID) {
		t.Errorf("validator-3's geth (pid %d) still runs", victim.PID)
	}
	for _, p := range ports {
		if framework.PortListening(p) {
			t.Errorf("validator-3's port %d still listens", p)
		}
	}
	if _, err := framework.AllAtLeast(ctx, c, network, n.Status.Height+2, time.Minute); err != nil {
		t.Fatalf("the chain stopped after the removal: %v", err)
	}
}

// waitSealedBy waits for a block signed by sealer, the account of node.
func waitSealedBy(t *testing.T, c *client.Client, network, node, sealer string) *apis.Network {
	t.Helper()
	var n *apis.Network
	err := framework.Poll(t.Context(), time.Minute, 250*time.Millisecond, func() (bool, string) {
		var err error
		n, err = c.GetNetwork(t.Context(), network)
		if err != nil {
			return false, err.Error()
		}
		s, _ := framework.NodeByName(n, node)
		var signer string
		for h := s.Height; h > max(0, s.Height-8); h-- {
			ethCall(t, s.Endpoints["rpc"], "clique_getSigner", &signer, "0x"+strconv.FormatInt(h, 16))
			if strings.EqualFold(signer, sealer) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no block of the last 8 below %d sealed by %s", s.Height, node)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// networkEvents lists a network's events.
func networkEvents(t *testing.T, c *client.Client, network string) []apis.Event {
	t.Helper()
	var out struct {
		Items []apis.Event `json:"items"`
	}
	if err := getJSON(t.Context(), c, "/api/v1/networks/"+network+"/events?limit=5000", &out); err != nil {
		t.Fatal(err)
	}
	return out.Items
}
