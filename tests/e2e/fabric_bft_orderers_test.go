package e2e

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricBFTOrderers grows a running BFT ordering service from four
// orderers to seven and back: each new orderer is mapped as a SmartBFT
// consenter by a config update (with the BlockValidation quorum of the
// new count) and joins with the channel's latest config block, one at a
// time, the network Running only once the last has caught up; a
// notarisation commits with seven, a transaction sent to the newest
// orderer is ordered; going back to four, the orderers that go leave the
// mapping before they stop, and a notarisation still commits.
func TestFabricBFTOrderers(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "37600-37699", "--probe-interval", "500ms")
	c := srv.Client

	const name, channel = "fbftord", "bftord"
	_, applied := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
  fabric: {consensus: BFT, orderers: 4, channel: `+channel+", templates: true}\n", 120*time.Second)
	t.Logf("4 BFT orderers and 1 peer Running %.1fs after apply", time.Since(applied).Seconds())
	var notary struct{ Height int64 }
	start := time.Now()
	if err := c.Do(ctx, http.MethodPost, "/api/v1/networks/"+name+"/contracts", []byte(`{"name":"notary","package":"builtin/fabric-notary@1.0.0"}`), "application/json", &notary); err != nil {
		t.Fatal(err)
	}
	t.Logf("notary deployed at block %d in %.1fs", notary.Height, time.Since(start).Seconds())
	first := notarize(t, c, name, "with four orderers")

	// 3f+1 at rest: 5 tolerates no more faults than 4.
	scaleRefusedOrderers(ctx, t, c, name, 5, "spec.fabric.orderers")

	// Four to seven: orderer-4, -5, -6, each a consenter before it joins.
	asked := time.Now()
	scaleOrderers(ctx, t, c, name, 7)
	var running time.Duration
	n := waitFabric(ctx, t, c, name, 300*time.Second, "seven orderers Running", func(n *apis.Network) bool {
		if running == 0 && ordererCount(n) == 7 && n.Status.Phase == apis.PhaseRunning && n.Status.Message == "" && !anyJoining(n) {
			running = time.Since(asked)
		}
		return running > 0
	})
	t.Logf("orderers 4 to 7: Running %.1fs after the request", running.Seconds())
	// Running means the last one has caught up: its height is the
	// others' at once, not later.
	newest, _ := framework.NodeByName(n, "orderer-6")
	top := int64(0)
	for _, s := range n.Status.Nodes {
		if s.Role == apis.RoleValidator && s.Name != newest.Name {
			top = max(top, nodeHeight(ctx, t, s, channel))
		}
	}
	if h := nodeHeight(ctx, t, newest, channel); h < first {
		t.Errorf("orderer-6 at height %d when the network was Running, below the first notarisation's %d (the others at %d)", h, first, top)
	} else {
		t.Logf("orderer-6 at height %d when the network was Running, the others at most %d", h, top)
	}
	n = waitFabric(ctx, t, c, name, 60*time.Second, "seven orderers following one leader", func(n *apis.Network) bool {
		return bftOf(ctx, n, channel, 7)
	})
	t.Logf("seven orderers following one leader %.1fs after the request; leaders: %s", time.Since(asked).Seconds(), bftLeaders(ctx, n, channel))
	// SmartBFT reports its cluster's size when the channel starts on an
	// orderer, not after a reconfiguration: each new orderer started in
	// the cluster the update before its own join made, one larger than
	// the last.
	for i, o := range []string{"orderer-4", "orderer-5", "orderer-6"} {
		s, _ := framework.NodeByName(n, o)
		m, err := fabricMetrics(ctx, s, channel)
		if err != nil {
			t.Fatal(err)
		}
		if got := int(m["consensus_BFT_cluster_size"]); got != 5+i {
			t.Errorf("%s started in a BFT cluster of %d, want %d", o, got, 5+i)
		}
	}
	for _, s := range n.Status.Nodes {
		if s.Role == apis.RoleValidator && s.Restarts != 0 {
			t.Errorf("%s restarted %d times, want none: the consenters change through the channel", s.Name, s.Restarts)
		}
	}

	second := notarize(t, c, name, "with seven orderers")
	if second <= first {
		t.Errorf("notarisation with seven orderers at height %d, not after %d", second, first)
	}
	orderedBy(ctx, t, c, name, dataDir, channel, "orderer-6")
	waitFabric(ctx, t, c, name, 60*time.Second, "orderer-6 at the others' height", func(n *apis.Network) bool {
		s, _ := framework.NodeByName(n, "orderer-6")
		o, _ := framework.NodeByName(n, "orderer-0")
		h := nodeHeight(ctx, t, s, channel)
		return h > second && h == nodeHeight(ctx, t, o, channel)
	})

	// Seven to four: orderer-6, -5, -4 leave the mapping, then stop.
	asked = time.Now()
	scaleOrderers(ctx, t, c, name, 4)
	n = waitFabric(ctx, t, c, name, 300*time.Second, "four orderers left in a BFT cluster of 4", func(n *apis.Network) bool {
		return ordererCount(n) == 4 && n.Status.Message == "" && bftOf(ctx, n, channel, 4)
	})
	t.Logf("orderers 7 to 4: three out of the mapping and removed %.1fs after the request", time.Since(asked).Seconds())
	third := notarize(t, c, name, "back to four orderers")
	if third <= second {
		t.Errorf("notarisation back with four orderers at height %d, not after %d", third, second)
	}

	// An orderer that restarts starts the channel from its latest
	// configuration: a cluster of four.
	victim, _ := framework.NodeByName(n, "orderer-3")
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFabric(ctx, t, c, name, 120*time.Second, "orderer-3 restarted in a BFT cluster of 4", func(n *apis.Network) bool {
		s, _ := framework.NodeByName(n, "orderer-3")
		if s.PID == victim.PID || s.Phase != apis.NodeRunning {
			return false
		}
		m, err := fabricMetrics(ctx, s, channel)
		return err == nil && m["consensus_BFT_cluster_size"] == 4 && bftOf(ctx, n, channel, 4)
	})
	t.Logf("orderer-3 killed with kill -9: restarted in a BFT cluster of 4 %.1fs after", time.Since(killed).Seconds())
	fourth := notarize(t, c, name, "after orderer-3 restarted")
	orderedBy(ctx, t, c, name, dataDir, channel, "orderer-3")
	n = waitFabric(ctx, t, c, name, 90*time.Second, "orderer-3 at the others' height", func(n *apis.Network) bool {
		s, _ := framework.NodeByName(n, "orderer-3")
		return nodeHeight(ctx, t, s, channel) > fourth
	})

	deleteFabricNetwork(t, srv, dataDir, n)
}

// anyJoining reports whether a node of n is still being admitted.
func anyJoining(n *apis.Network) bool {
	for _, s := range n.Status.Nodes {
		if s.Joining || s.Phase != apis.NodeRunning {
			return true
		}
	}
	return false
}

// ordererCount counts the orderers of n.
func ordererCount(n *apis.Network) int {
	count := 0
	for _, s := range n.Status.Nodes {
		if s.Role == apis.RoleValidator {
			count++
		}
	}
	return count
}

// nodeHeight is node s's height of channel ch, 0 when it cannot be read.
func nodeHeight(ctx context.Context, t *testing.T, s apis.NodeStatus, ch string) int64 {
	t.Helper()
	m, err := fabricMetrics(ctx, s, ch)
	if err != nil {
		t.Logf("%s: %v", s.Name, err)
		return 0
	}
	return int64(m["ledger_blockchain_height"])
}

// bftOf reports whether n has members orderers, all running and
// following the same BFT leader on channel ch. (Their cluster size is
// not looked at: SmartBFT sets it when the channel starts on an orderer,
// and keeps it through reconfigurations.)
func bftOf(ctx context.Context, n *apis.Network, ch string, members int) bool {
	leaders := map[float64]bool{}
	for _, s := range n.Status.Nodes {
		if s.Role != apis.RoleValidator {
			continue
		}
		m, err := fabricMetrics(ctx, s, ch)
		if err != nil || s.Phase != apis.NodeRunning || s.Joining || m["consensus_BFT_leader_id"] < 1 {
			return false
		}
		leaders[m["consensus_BFT_leader_id"]] = true
	}
	return ordererCount(n) == members && len(leaders) == 1
}
