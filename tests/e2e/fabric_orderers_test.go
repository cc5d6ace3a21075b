package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricOrderers grows a running network's Raft ordering service from
// one orderer to three and back: each new orderer is made a consenter by
// a config update and joins the channel with its latest config block,
// one at a time; a block sent to the newest is ordered; with the first
// orderer killed, the two new ones order on; going back to one, the
// orderers that go are taken out of the consenters before they stop, and
// the one left orders alone.
func TestFabricOrderers(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "37000-37099", "--probe-interval", "500ms")
	c := srv.Client

	const name = "ords"
	n, _ := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
  fabric: {orderers: 1}
`, 90*time.Second)
	ch := n.Status.ChainID

	// One to three: orderer-1, then orderer-2, each a consenter before
	// it joins.
	scaleRefusedOrderers(ctx, t, c, name, 2, "spec.fabric.orderers")
	asked := time.Now()
	scaleOrderers(ctx, t, c, name, 3)
	n = waitFabric(ctx, t, c, name, 120*time.Second, "three orderers in the channel's Raft", func(n *apis.Network) bool {
		return len(n.Status.Nodes) == 4 && n.Status.Message == "" && raftOf(ctx, n, ch, 3)
	})
	t.Logf("orderers 1 to 3: both new orderers consenters, joined, and every orderer in a Raft of 3 with a leader %.1fs after the request", time.Since(asked).Seconds())
	for _, s := range n.Status.Nodes {
		if s.Role == apis.RoleValidator && s.Restarts != 0 {
			t.Errorf("%s restarted %d times, want none: the consenters change through the channel, not the orderers' configuration", s.Name, s.Restarts)
		}
	}

	// A block sent to the newest orderer is ordered and reaches the peer.
	orderedBy(ctx, t, c, name, dataDir, ch, "orderer-2")

	// The first orderer killed: the two others are a majority of three.
	first, _ := framework.NodeByName(n, "orderer-0")
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	orderedBy(ctx, t, c, name, dataDir, ch, "orderer-1")
	waitFabric(ctx, t, c, name, 60*time.Second, "orderer-0 restarted in the Raft of 3", func(n *apis.Network) bool {
		s, _ := framework.NodeByName(n, "orderer-0")
		return s.Restarts == 1 && raftOf(ctx, n, ch, 3)
	})

	// Three to one: orderer-2, then orderer-1, out of the consenters and
	// stopped; orderer-0 orders alone.
	asked = time.Now()
	scaleOrderers(ctx, t, c, name, 1)
	n = waitFabric(ctx, t, c, name, 120*time.Second, "one orderer left, alone in the Raft", func(n *apis.Network) bool {
		return len(n.Status.Nodes) == 2 && n.Status.Message == "" && raftOf(ctx, n, ch, 1)
	})
	t.Logf("orderers 3 to 1: orderer-2 and orderer-1 out of the consenters and removed %.1fs after the request", time.Since(asked).Seconds())
	orderedBy(ctx, t, c, name, dataDir, ch, "orderer-0")

	deleteFabricNetwork(t, srv, dataDir, n)
}

// raftOf reports whether every orderer of n runs in a Raft of size
// members on channel ch, one of them its leader hearing from all.
func raftOf(ctx context.Context, n *apis.Network, ch string, members int) bool {
	orderers, leaders := 0, 0
	for _, s := range n.Status.Nodes {
		if s.Role != apis.RoleValidator {
			continue
		}
		orderers++
		m, err := fabricMetrics(ctx, s, ch)
		if err != nil || s.Phase != apis.NodeRunning || s.Joining || int(m["consensus_etcdraft_cluster_size"]) != members {
			return false
		}
		if m[fabric.MetricIsLeader] == 1 && int(m["consensus_etcdraft_active_nodes"]) == members {
			leaders++
		}
	}
	return orderers == members && leaders == 1
}

// orderedBy sends a transaction to orderer node and waits until the
// network's peers, by their own metrics, are past the height they had
// before it was sent: the block it was cut into.
func orderedBy(ctx context.Context, t *testing.T, c *client.Client, name, dataDir, ch, node string) {
	t.Helper()
	n, err := c.GetNetwork(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	heights := func() map[string]float64 {
		out := map[string]float64{}
		for _, s := range n.Status.Nodes {
			if s.Role == apis.RoleFull {
				if m, err := fabricMetrics(ctx, s, ch); err == nil {
					out[s.Name] = m["ledger_blockchain_height"]
				}
			}
		}
		return out
	}
	before := heights()
	ord, ok := framework.NodeByName(n, node)
	if !ok {
		t.Fatalf("no node %s", node)
	}
	env, _, sent := unendorsedTx(t, dataDir, ch)
	// An orderer refuses transactions while its Raft elects a leader.
	if err := framework.Poll(ctx, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
		err := tryBroadcast(t, ord.Endpoints[fabric.PortListen], dataDir, env)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Fatalf("%s never took the transaction: %v", node, err)
	}
	// An orderer that took a transaction while its Raft was changing
	// leaders may lose it, as Fabric's clients know: send it again while
	// no block shows up (a copy ordered twice is marked a duplicate).
	sends, lastSend := 1, time.Now()
	if err := framework.Poll(ctx, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		if time.Since(lastSend) > 5*time.Second {
			if tryBroadcast(t, ord.Endpoints[fabric.PortListen], dataDir, env) == nil {
				sends++
			}
			lastSend = time.Now()
		}
		now := heights()
		for p, h := range before {
			if now[p] <= h {
				return false, fmt.Sprintf("%s at height %v, was %v", p, now[p], h)
			}
		}
		return len(before) > 0, fmt.Sprint(now)
	}); err != nil {
		t.Fatalf("a block ordered by %s: %v", node, err)
	}
	t.Logf("a transaction sent to %s (%d times) is in a block on the peers %.1fs after it was first sent", node, sends, time.Since(sent).Seconds())
}

func scaleOrderers(ctx context.Context, t *testing.T, c *client.Client, network string, orderers int) {
	t.Helper()
	body, _ := json.Marshal(api.ScaleRequest{Orderers: &orderers})
	if err := c.Do(ctx, http.MethodPut, "/api/v1/networks/"+network+"/scale", body, "application/json", nil); err != nil {
		t.Fatalf("scale to %d orderers: %v", orderers, err)
	}
}

func scaleRefusedOrderers(ctx context.Context, t *testing.T, c *client.Client, network string, orderers int, want string) {
	t.Helper()
	scaleRefused(ctx, t, c, network, fmt.Sprintf(`{"orderers":%d}`, orderers), http.StatusUnprocessableEntity, want)
}
