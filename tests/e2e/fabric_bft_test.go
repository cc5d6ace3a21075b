package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricBFT runs a BFT ordering service (SmartBFT) of four orderers
// for two organisations of one peer with the templates: it deploys the
// notarisation chaincode, notarises a document through the gateway, then
// kills the BFT leader with SIGKILL, notarises another while it is down
// or restarting, and checks the killed orderer comes back and catches up
// with the others' ledger.
func TestFabricBFT(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "37400-37499", "--probe-interval", "500ms")
	c := srv.Client

	// Refused with the field paths, and not stored.
	for _, bad := range []struct{ fabric, want string }{
		{"{consensus: BFT, orderers: 3}", "spec.fabric.orderers"},
		{"{consensus: BFT, orderers: 4, version: \"2.5\"}", "spec.fabric.version"},
		{"{consensus: pbft}", "spec.fabric.consensus"},
	} {
		_, err := c.CreateNetwork(ctx, fmt.Appendf(nil, "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: nobft}\nspec:\n  chain: fabric\n  runtime: process\n  organizations: [{name: org1, peers: 1}]\n  fabric: %s\n", bad.fabric))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("fabric %s: error %v does not name %s", bad.fabric, err, bad.want)
		} else {
			t.Logf("as expected, fabric %s: %v", bad.fabric, err)
		}
	}
	if _, err := c.GetNetwork(ctx, "nobft"); err == nil {
		t.Error("a refused spec was stored")
	}

	const name, channel = "fbft", "bft"
	_, applied := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {consensus: BFT, orderers: 4, channel: `+channel+", templates: true}\n", 120*time.Second)
	t.Logf("4 BFT orderers and 2 peers Running %.1fs after apply", time.Since(applied).Seconds())

	// Every orderer is in the same BFT cluster of 4 with one leader,
	// which reaches the 3 others; each follower hears from it.
	var leader string
	waitFabric(ctx, t, c, name, 60*time.Second, "BFT cluster settled", func(n *apis.Network) bool {
		leader = ""
		ids := map[float64]bool{}
		for _, s := range n.Status.Nodes {
			if s.Role != apis.RoleValidator {
				continue
			}
			m, err := fabricMetrics(ctx, s, channel)
			if err != nil || m["consensus_BFT_cluster_size"] != 4 || s.Peers < 1 {
				return false
			}
			ids[m["consensus_BFT_leader_id"]] = true
			if m[fabric.MetricBFTIsLeader] == 1 && s.Peers == 3 {
				leader = s.Name
			}
		}
		return len(ids) == 1 && leader != ""
	})
	t.Logf("BFT leader %s reaching the 3 others, every follower hearing from it, %.1fs after apply", leader, time.Since(applied).Seconds())

	base := "/api/v1/networks/" + name
	var notary api.Contract
	start := time.Now()
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(`{"name":"notary","package":"builtin/fabric-notary@1.0.0"}`), "application/json", &notary); err != nil {
		t.Fatal(err)
	}
	t.Logf("notary deployed at block %d in %.1fs", notary.Height, time.Since(start).Seconds())

	first := notarize(t, c, name, "before the kill")
	// Ordering has every consenter stream to every other.
	n := waitFabric(ctx, t, c, name, 30*time.Second, "every orderer hearing from the 3 others", func(n *apis.Network) bool {
		ok := true
		for _, s := range n.Status.Nodes {
			ok = ok && (s.Role != apis.RoleValidator || s.Peers == 3)
		}
		return ok
	})

	// kill -9 the leader; a second notarisation commits while it is down
	// or restarting: three of four orderers are a quorum.
	victim, _ := framework.NodeByName(n, leader)
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	type result struct {
		height int64
		err    error
	}
	done := make(chan result, 1)
	var notarizing sync.WaitGroup
	// The test does not end before the call, which logs through t.
	defer notarizing.Wait()
	notarizing.Go(func() {
		h, err := tryNotarize(t, c, name, "after the kill")
		done <- result{h, err}
	})
	var restarted, committed time.Duration
	var second int64
	n = waitFabric(ctx, t, c, name, 120*time.Second, leader+" restarted and the second notarisation committed", func(n *apis.Network) bool {
		s, _ := framework.NodeByName(n, leader)
		if restarted == 0 && s.Restarts >= 1 && s.PID != victim.PID && s.Phase == apis.NodeRunning {
			restarted = time.Since(killed)
		}
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatal(r.err)
			}
			second, committed = r.height, time.Since(killed)
		default:
		}
		return restarted > 0 && committed > 0
	})
	t.Logf("kill -9 of leader %s: restarted and Running %.1fs after, the second notarisation committed %.1fs after", leader, restarted.Seconds(), committed.Seconds())
	if second <= first {
		t.Errorf("second notarisation at height %d, not after the first's %d", second, first)
	}
	t.Logf("leaders: %s", bftLeaders(ctx, n, channel))

	// The killed orderer catches up: it has every block the others have.
	n = waitFabric(ctx, t, c, name, 180*time.Second, leader+" caught up", func(n *apis.Network) bool {
		s, _ := framework.NodeByName(n, leader)
		var top int64
		for _, o := range n.Status.Nodes {
			if o.Role == apis.RoleValidator {
				top = max(top, channelHeight(t, o, channel))
			}
		}
		return s.Phase == apis.NodeRunning && top >= second && channelHeight(t, s, channel) == top
	})
	s, _ := framework.NodeByName(n, leader)
	t.Logf("%s at the others' height %d %.1fs after kill -9; leaders: %s", leader, channelHeight(t, s, channel), time.Since(killed).Seconds(), bftLeaders(ctx, n, channel))

	// And orders again with the others: a third notarisation reaches
	// its ledger too.
	third := notarize(t, c, name, "after the restart")
	n = waitFabric(ctx, t, c, name, 60*time.Second, leader+" has the third block", func(n *apis.Network) bool {
		s, _ := framework.NodeByName(n, leader)
		return channelHeight(t, s, channel) >= third
	})
	t.Logf("%s has block %d of the notarisation after its restart", leader, third)
	for _, o := range n.Status.Nodes {
		if o.Name != leader && o.Restarts != 0 {
			t.Errorf("%s restarted %d times, want none", o.Name, o.Restarts)
		}
	}

	deleteFabricNetwork(t, srv, dataDir, n)
}

// notarize notarises a new document through the gateway, waiting for
// the commit, and returns the channel's height with its block (the
// block's number plus one).
func notarize(t *testing.T, c *client.Client, network, note string) int64 {
	t.Helper()
	h, err := tryNotarize(t, c, network, note)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func tryNotarize(t *testing.T, c *client.Client, network, note string) (int64, error) {
	t.Helper()
	doc := sha256.Sum256([]byte(note + " " + time.Now().String()))
	body := fmt.Sprintf(`{"chaincode":"notary","function":"Notarize","args":[%q,%q]}`, hex.EncodeToString(doc[:]), note)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	start := time.Now()
	s, err := submitTx(ctx, c, network, []byte(body))
	if err != nil {
		return 0, fmt.Errorf("notarise %q: %w", note, err)
	}
	if s.status != http.StatusOK || s.receipt["committed"] != true {
		return 0, fmt.Errorf("notarise %q: HTTP %d %v %+v; want 200, committed", note, s.status, s.receipt, s.problem)
	}
	height := int64(s.receipt["height"].(float64))
	t.Logf("notarised %q with wait=commit in %.2fs: block height %d, via %s (%v attempts)", note, time.Since(start).Seconds(), height, s.receipt["node"], s.receipt["attempts"])
	return height, nil
}

// bftLeaders is, for each orderer, the BFT leader it follows.
func bftLeaders(ctx context.Context, n *apis.Network, ch string) string {
	var out []string
	for _, s := range n.Status.Nodes {
		if s.Role != apis.RoleValidator {
			continue
		}
		m, err := fabricMetrics(ctx, s, ch)
		if err != nil {
			out = append(out, s.Name+": "+err.Error())
			continue
		}
		out = append(out, fmt.Sprintf("%s follows %v", s.Name, m["consensus_BFT_leader_id"]))
	}
	return strings.Join(out, ", ")
}

// TestFabricBFTOneOrderer runs a BFT ordering service of one orderer
// (f = 0, as Fabric's own single-orderer BFT test network), which orders
// the update that sets the organisation's anchor peer; then grows it to
// four orderers and back to one, each orderer ordering a transaction.
func TestFabricBFTOneOrderer(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "37500-37549", "--probe-interval", "500ms")
	c := srv.Client

	const name, channel = "fbft1", "bft1"
	_, applied := applyFabric(t, c, name, "  organizations: [{name: org1, peers: 1}]\n  fabric: {consensus: BFT, orderers: 1, channel: "+channel+"}\n", 90*time.Second)
	t.Logf("1 BFT orderer and 1 peer Running %.1fs after apply", time.Since(applied).Seconds())
	n := waitFabric(ctx, t, c, name, 30*time.Second, "the anchor peer update ordered", func(n *apis.Network) bool {
		for _, s := range n.Status.Nodes {
			if channelHeight(t, s, channel) < 2 {
				return false
			}
		}
		return true
	})
	o, _ := framework.NodeByName(n, "orderer-0")
	m, err := fabricMetrics(ctx, o, channel)
	if err != nil {
		t.Fatal(err)
	}
	if m["consensus_BFT_cluster_size"] != 1 || m[fabric.MetricBFTIsLeader] != 1 {
		t.Fatalf("orderer-0: BFT cluster size %v, leader %v; want 1, 1", m["consensus_BFT_cluster_size"], m[fabric.MetricBFTIsLeader])
	}
	t.Logf("orderer-0 leads a BFT cluster of 1 and ordered the anchor peer update, %.1fs after apply", time.Since(applied).Seconds())

	// One to four, through clusters of two and three, where every
	// consenter, then two of three, must agree; and back to one.
	asked := time.Now()
	scaleOrderers(ctx, t, c, name, 4)
	waitFabric(ctx, t, c, name, 180*time.Second, "four orderers following one leader", func(n *apis.Network) bool {
		return n.Status.Message == "" && !anyJoining(n) && bftOf(ctx, n, channel, 4)
	})
	t.Logf("BFT orderers 1 to 4: Running, all following one leader, %.1fs after the request", time.Since(asked).Seconds())
	orderedBy(ctx, t, c, name, dataDir, channel, "orderer-3")
	asked = time.Now()
	scaleOrderers(ctx, t, c, name, 1)
	n = waitFabric(ctx, t, c, name, 180*time.Second, "orderer-0 alone again", func(n *apis.Network) bool {
		return n.Status.Message == "" && bftOf(ctx, n, channel, 1)
	})
	t.Logf("BFT orderers 4 to 1: three out of the mapping and removed %.1fs after the request", time.Since(asked).Seconds())
	orderedBy(ctx, t, c, name, dataDir, channel, "orderer-0")

	deleteFabricNetwork(t, srv, dataDir, n)
}
