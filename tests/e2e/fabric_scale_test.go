package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricScale grows and shrinks a running Fabric network of three Raft
// orderers and two organisations of one peer: a peer killed with SIGKILL
// while a block is made is restarted and catches up; org1 gets a second
// peer, which joins the channel and becomes org1's second anchor peer;
// org3 is added with a peer, through a config update of the channel signed
// by org1's and org2's admins, and its peer joins, reaches the channel's
// height and gossips with every other organisation's peers through their
// anchors. Then org1 goes back to one peer (its anchors updated first) and
// org3 leaves the channel by a config update, its peer stopped. The
// explorer shows every config update. Then the network is deleted without
// a trace.
func TestFabricScale(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "36800-36899", "--probe-interval", "500ms")
	c := srv.Client

	const name = "grow"
	n, _ := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {orderers: 3}
`, 90*time.Second)
	ch := n.Status.ChainID

	// (a) A peer killed with SIGKILL while the channel grows by a block
	// is restarted, and pulls the block from the orderer.
	victim, _ := framework.NodeByName(n, "org2-peer-0")
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	env, _, _ := unendorsedTx(t, dataDir, ch)
	orderer, _ := framework.NodeByName(n, "orderer-0")
	broadcast(t, orderer.Endpoints[fabric.PortListen], dataDir, env)
	n = waitFabric(ctx, t, c, name, 60*time.Second, "org2-peer-0 restarted at the channel's height 2", func(n *apis.Network) bool {
		s, _ := framework.NodeByName(n, "org2-peer-0")
		return s.Restarts == 1 && s.PID != victim.PID && s.Height >= 2 && peersLevel(n)
	})
	t.Logf("(a) org2-peer-0 killed with SIGKILL, restarted and at the channel's height %d %.1fs later", n.Status.Height, time.Since(killed).Seconds())

	// Refused: a peer organisation's validators, and taking out an
	// organisation the network lacks.
	scaleRefused(ctx, t, c, name, `{"organization":"org1","fullNodes":2}`, http.StatusUnprocessableEntity, "give organization and peers")
	scaleRefused(ctx, t, c, name, `{"organization":"org9","peers":0}`, http.StatusUnprocessableEntity, "organization")

	// (b) A second peer of org1.
	asked := time.Now()
	scaleFabric(ctx, t, c, name, "org1", 2)
	n = waitFabric(ctx, t, c, name, 60*time.Second, "org1-peer-1 joined at the channel's height", func(n *apis.Network) bool {
		s, ok := framework.NodeByName(n, "org1-peer-1")
		return ok && !s.Joining && s.Height == n.Status.Height && peersLevel(n) && n.Status.Message == ""
	})
	t.Logf("(b) org1-peer-1 added: joined and at the channel's height %d %.1fs after the request", n.Status.Height, time.Since(asked).Seconds())

	// (c) A third organisation: the channel's configuration takes it in,
	// then its peer joins.
	before := n.Status.Height
	asked = time.Now()
	scaleFabric(ctx, t, c, name, "org3", 1)
	var joinedAt time.Duration
	n = waitFabric(ctx, t, c, name, 90*time.Second, "org3-peer-0 joined at the channel's height", func(n *apis.Network) bool {
		s, ok := framework.NodeByName(n, "org3-peer-0")
		if ok && !s.Joining && joinedAt == 0 {
			joinedAt = time.Since(asked)
		}
		if !ok || s.Joining || s.Height != n.Status.Height || n.Status.Height <= before || !peersLevel(n) || n.Status.Message != "" {
			return false
		}
		// Every peer knows the three others by gossip: the other
		// organisations' through their anchor peers.
		for _, s := range n.Status.Nodes {
			if s.Role == apis.RoleFull && s.Peers != 3 {
				return false
			}
		}
		return true
	})
	t.Logf("(c) org3 added: org3-peer-0 joined %.1fs after the request, and every peer is at the channel's height %d (was %d) and knows the three others %.1fs after it",
		joinedAt.Seconds(), n.Status.Height, before, time.Since(asked).Seconds())
	s, _ := framework.NodeByName(n, "org3-peer-0")
	if s.Organization != "org3" || s.NodeID != "Org3MSP/org3-peer-0.org3."+name || s.Phase != apis.NodeRunning {
		t.Errorf("org3-peer-0: %+v", s)
	}
	if n.Status.Phase != apis.PhaseRunning || len(n.Status.Nodes) != 7 {
		t.Errorf("network %s with %d nodes, want Running with 7", n.Status.Phase, len(n.Status.Nodes))
	}
	for _, s := range n.Status.Nodes {
		if s.Name != "org2-peer-0" && s.Restarts != 0 {
			t.Errorf("%s restarted %d times, want none", s.Name, s.Restarts)
		}
	}

	// (d) org1 back to one peer: org1-peer-1, its second anchor, makes
	// way first.
	grown := n.Status.Height
	asked = time.Now()
	scaleFabric(ctx, t, c, name, "org1", 1)
	n = waitFabric(ctx, t, c, name, 60*time.Second, "org1-peer-1 removed", func(n *apis.Network) bool {
		_, ok := framework.NodeByName(n, "org1-peer-1")
		return !ok && len(n.Status.Nodes) == 6 && peersLevel(n) && n.Status.Message == ""
	})
	t.Logf("(d) org1-peer-1 removed %.1fs after the request; the channel at height %d (was %d)", time.Since(asked).Seconds(), n.Status.Height, grown)

	// (e) org3 leaves: the channel's configuration lets it go, then its
	// peer stops; the identities enrolled in it go too.
	if _, err := c.EnrollIdentity(ctx, name, api.IdentityRequest{Organization: "org3", Name: "app3"}); err != nil {
		t.Fatalf("enrol app3 of org3: %v", err)
	}
	asked = time.Now()
	scaleFabric(ctx, t, c, name, "org3", 0)
	n = waitFabric(ctx, t, c, name, 60*time.Second, "org3 removed", func(n *apis.Network) bool {
		_, ok := framework.NodeByName(n, "org3-peer-0")
		return !ok && len(n.Status.Nodes) == 5 && peersLevel(n) && n.Status.Message == ""
	})
	t.Logf("(e) org3 left the channel and org3-peer-0 removed %.1fs after the request; the channel at height %d", time.Since(asked).Seconds(), n.Status.Height)
	if len(n.Spec.Organizations) != 2 || n.Spec.Organizations[1].Name != "org2" {
		t.Errorf("organizations %+v, want org1 and org2", n.Spec.Organizations)
	}
	if ids, err := c.ListIdentities(ctx, name, ""); err != nil || len(ids) != 0 {
		t.Errorf("identities after org3 left: %+v (%v), want none", ids, err)
	}

	// (f) org3 comes back, with the CAs it had: the channel takes it in
	// again, and its new peer joins.
	asked = time.Now()
	scaleFabric(ctx, t, c, name, "org3", 1)
	n = waitFabric(ctx, t, c, name, 60*time.Second, "org3 back", func(n *apis.Network) bool {
		s, ok := framework.NodeByName(n, "org3-peer-0")
		return ok && !s.Joining && len(n.Status.Nodes) == 6 && peersLevel(n) && n.Status.Message == ""
	})
	t.Logf("(f) org3 back in the channel and its peer joined %.1fs after the request; the channel at height %d", time.Since(asked).Seconds(), n.Status.Height)

	// The explorer shows each config update, one block each: the
	// genesis's two organisations' anchor peers, org1's second anchor,
	// org3 added, org3's anchor, org1's anchors back to one, org3 out,
	// org3 added again, its anchor.
	var configAt []int64
	for _, tx := range indexedTxs(ctx, t, c, name, 2, n.Status.Height) {
		if tx.Type == "CONFIG" && tx.Code == 0 {
			configAt = append(configAt, tx.height)
		}
	}
	if len(configAt) != 9 || configAt[3] <= before-1 {
		t.Errorf("config transactions after the genesis at heights %v, want nine, the fourth (adding org3) after height %d", configAt, before)
	} else {
		t.Logf("the explorer shows the nine config updates at heights %v", configAt)
	}

	deleteFabricNetwork(t, srv, dataDir, n)
}

// scaleFabric sets how many peers organisation org runs, adding it when
// the network has none of that name.
func scaleFabric(ctx context.Context, t *testing.T, c *client.Client, network, org string, peers int) {
	t.Helper()
	body, _ := json.Marshal(api.ScaleRequest{Organization: org, Peers: &peers})
	var out apis.Network
	if err := c.Do(ctx, http.MethodPut, "/api/v1/networks/"+network+"/scale", body, "application/json", &out); err != nil {
		t.Fatalf("scale %s to %d peers: %v", org, peers, err)
	}
}

// scaleRefused sends a scale request and checks the server refuses it
// with status, naming want.
func scaleRefused(ctx context.Context, t *testing.T, c *client.Client, network, body string, status int, want string) {
	t.Helper()
	err := c.Do(ctx, http.MethodPut, "/api/v1/networks/"+network+"/scale", []byte(body), "application/json", nil)
	var p *client.Error
	if !errors.As(err, &p) || p.Status != status || !strings.Contains(err.Error(), want) {
		t.Errorf("scale %s: %v, want HTTP %d naming %q", body, err, status, want)
		return
	}
	t.Logf("scale %s refused: %v", body, err)
}

// waitFabric polls the network until cond holds and it is Running.
func waitFabric(ctx context.Context, t *testing.T, c *client.Client, name string, timeout time.Duration, what string, cond func(*apis.Network) bool) *apis.Network {
	t.Helper()
	var n *apis.Network
	err := framework.Poll(ctx, timeout, 100*time.Millisecond, func() (bool, string) {
		var err error
		n, err = c.GetNetwork(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		return n.Status.Phase == apis.PhaseRunning && cond(n), framework.Describe(n) + " " + n.Status.Message
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return n
}

// peersLevel reports whether every node runs at the network's height.
func peersLevel(n *apis.Network) bool {
	for _, s := range n.Status.Nodes {
		if s.Phase != apis.NodeRunning || s.Height != n.Status.Height {
			return false
		}
	}
	return len(n.Status.Nodes) > 0 && !strings.Contains(n.Status.Message, "waiting")
}
