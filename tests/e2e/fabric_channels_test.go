package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricChannels deploys three organisations of one peer with a
// second channel of two of them: every orderer joins both channels, each
// peer the channels of its organisation, and each member organisation
// sets its anchor peer on each. An orderer added later becomes a consenter
// of both and joins both; an organisation of the second channel cannot
// leave, one of the shared channel alone can.
func TestFabricChannels(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "37200-37299", "--probe-interval", "500ms")
	c := srv.Client

	const name, shared, pair = "chans", "everyone", "pair"
	_, applied := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
    - {name: org3, peers: 1}
  fabric:
    orderers: 1
    channel: `+shared+`
    channels:
      - {name: `+pair+`, organizations: [org1, org2]}
`, 90*time.Second)
	// The shared channel: genesis and three anchor updates; the pair's:
	// genesis and two.
	want := map[string]map[string]int64{
		"orderer-0":   {shared: 4, pair: 3},
		"org1-peer-0": {shared: 4, pair: 3},
		"org2-peer-0": {shared: 4, pair: 3},
		"org3-peer-0": {shared: 4, pair: 0},
	}
	waitChannels(ctx, t, c, name, want)
	t.Logf("three organisations on channel %s, two of them on %s, every anchor peer set, %.1fs after apply", shared, pair, time.Since(applied).Seconds())

	// Refused: a channel naming an organisation the network lacks.
	_, err := c.CreateNetwork(ctx, []byte(`apiVersion: chaindock/v1
kind: Network
metadata: {name: chans-bad}
spec:
  chain: fabric
  runtime: process
  organizations: [{name: org1, peers: 1}]
  fabric: {orderers: 1, channels: [{name: other, organizations: [org1, org9]}]}
`))
	var p *client.Error
	if !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "spec.fabric.channels[0].organizations[1]") {
		t.Errorf("a channel of an organisation the network lacks: %v, want 422 naming spec.fabric.channels[0].organizations[1]", err)
	}

	// An orderer more (three): a consenter of both channels, on both.
	asked := time.Now()
	scaleOrderers(ctx, t, c, name, 3)
	for _, o := range []string{"orderer-1", "orderer-2"} {
		want[o] = map[string]int64{shared: 4, pair: 3}
	}
	waitChannels(ctx, t, c, name, want)
	t.Logf("orderers 1 to 3 on both channels %.1fs after the request", time.Since(asked).Seconds())

	// org1 is a member of the pair's channel: it cannot leave; org3,
	// of the shared channel alone, can.
	scaleRefused(ctx, t, c, name, `{"organization":"org1","peers":0}`, http.StatusUnprocessableEntity, "spec.fabric.channels[0].organizations[0]")
	scaleFabric(ctx, t, c, name, "org3", 0)
	n := waitFabric(ctx, t, c, name, 60*time.Second, "org3 gone", func(n *apis.Network) bool {
		_, ok := framework.NodeByName(n, "org3-peer-0")
		return !ok && n.Status.Message == ""
	})

	ports := framework.NodePorts(n)
	if _, err := c.DeleteNetwork(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, name, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dataDir, ports, nil, 15*time.Second)
	srv.Stop()
}

// waitChannels waits until every node named in want is at least at the
// heights it gives on each channel, from its own metrics, and no other
// channel: 0 means not a member.
func waitChannels(ctx context.Context, t *testing.T, c *client.Client, name string, want map[string]map[string]int64) *apis.Network {
	t.Helper()
	var n *apis.Network
	err := framework.Poll(ctx, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		var err error
		if n, err = c.GetNetwork(ctx, name); err != nil {
			return false, err.Error()
		}
		if n.Status.Phase != apis.PhaseRunning || n.Status.Message != "" {
			return false, framework.Describe(n) + " " + n.Status.Message
		}
		for node, chans := range want {
			s, ok := framework.NodeByName(n, node)
			if !ok {
				return false, "no node " + node
			}
			for ch, h := range chans {
				m, err := fabricMetrics(ctx, s, ch)
				if err != nil {
					return false, err.Error()
				}
				got := int64(m["ledger_blockchain_height"])
				if h == 0 && got != 0 || h > 0 && got < h {
					return false, fmt.Sprintf("%s on %s: height %d, want %d", node, ch, got, h)
				}
			}
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("channels: %v", err)
	}
	return n
}
