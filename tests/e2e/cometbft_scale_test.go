package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// cometValidators is the validator set a CometBFT node has at its newest
// height: the validators' addresses.
func cometValidators(ctx context.Context, n *apis.Network) ([]string, error) {
	var lastErr error
	for _, ns := range n.Status.Nodes {
		if ns.Phase != apis.NodeRunning {
			continue
		}
		var out struct {
			Validators []struct {
				Address string `json:"address"`
			} `json:"validators"`
		}
		if err := rpcResult(ctx, ns.Endpoints["rpc"]+"/validators?per_page=100", &out); err != nil {
			lastErr = err
			continue
		}
		var addrs []string
		for _, v := range out.Validators {
			addrs = append(addrs, v.Address)
		}
		return addrs, nil
	}
	return nil, fmt.Errorf("no running node answers: %v", lastErr) //nolint:errorlint // the last error is told, not matched
}

// rpcResult gets a CometBFT RPC path and decodes its result into out.
func rpcResult(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err
	}
	return json.Unmarshal(body.Result, out)
}

// commitSigners are the validators whose signatures the node's newest
// commit holds.
func commitSigners(ctx context.Context, rpc string) []string {
	var out struct {
		SignedHeader struct {
			Commit struct {
				Signatures []struct {
					Flag    int    `json:"block_id_flag"`
					Address string `json:"validator_address"`
				} `json:"signatures"`
			} `json:"commit"`
		} `json:"signed_header"`
	}
	if rpcResult(ctx, rpc+"/commit", &out) != nil {
		return nil
	}
	var addrs []string
	for _, s := range out.SignedHeader.Commit.Signatures {
		if s.Flag == 2 { // BlockIDFlagCommit
			addrs = append(addrs, s.Address)
		}
	}
	return addrs
}

// TestCometBFTScaling grows a running 4-validator CometBFT network by a
// full node, which follows the chain without the validators restarting,
// and by a fifth validator, which syncs as a full node and then gets its
// voting power by a validator-set update; then takes the fifth away the
// same way, and its process and ports go. The chain commits throughout.
func TestCometBFTScaling(t *testing.T) {
	binDir, dataDir := setup(t)
	ctx := t.Context()
	srv := startServer(t, binDir, dataDir, "--port-range", "31950-31999", "--probe-interval", "500ms")
	c := srv.Client
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	if _, err := c.CreateNetwork(ctx, framework.CometBFTSpec("grow", 4, "300ms")); err != nil {
		t.Fatal(err)
	}
	n, err := framework.AllAtLeast(ctx, c, "grow", 2, time.Minute)
	if err != nil {
		t.Fatalf("network never ran: %v", err)
	}
	pids := map[string]int{}
	for _, ns := range n.Status.Nodes {
		pids[ns.Name] = ns.PID
	}

	// A full node: it dials the validators, which keep running as they
	// were.
	cl.ok("scale", "grow", "--full-nodes", "1")
	from := n.Status.Height
	n = pollNetwork(t, c, "grow", 2*time.Minute, "the full node follows the chain", func(n *apis.Network) bool {
		full, ok := framework.NodeByName(n, "full-0")
		return ok && full.Phase == apis.NodeRunning && full.Peers >= 4 && full.Height >= from+3 && n.Status.Phase == apis.PhaseRunning
	})
	for _, ns := range n.Status.Nodes {
		if pid, ok := pids[ns.Name]; ok && (ns.PID != pid || ns.Restarts != 0) {
			t.Errorf("%s restarted (pid %d, was %d) for a full node that dials it", ns.Name, ns.PID, pid)
		}
	}

	// A fifth validator: synced first, then given power.
	start := time.Now()
	cl.ok("scale", "grow", "--validators", "5")
	var vals []string
	n = pollNetwork(t, c, "grow", 2*time.Minute, "validator-4 joins the validator set", func(n *apis.Network) bool {
		v, ok := framework.NodeByName(n, "validator-4")
		if !ok || v.Joining || v.Phase != apis.NodeRunning {
			return false
		}
		vals, err = cometValidators(ctx, n)
		return err == nil && len(vals) == 5 && n.Status.Phase == apis.PhaseRunning
	})
	t.Logf("scaled to 5 validators: validator-4 has voting power %.1fs after the request", time.Since(start).Seconds())
	joined := false
	for _, e := range networkEvents(t, c, "grow") {
		joined = joined || e.Reason == "NodeJoined" && e.Node == "validator-4"
	}
	if !joined {
		t.Error("no NodeJoined event for validator-4")
	}
	if n, err = framework.AllAtLeast(ctx, c, "grow", n.Status.Height+3, time.Minute); err != nil {
		t.Fatalf("the chain stopped after the fifth validator joined: %v", err)
	}
	// It signs: its signature is on a commit. (Not on every one: the
	// proposer takes the first two thirds of the precommits, and the
	// last to arrive misses the block.)
	v0, _ := framework.NodeByName(n, "validator-0")
	v4, _ := framework.NodeByName(n, "validator-4")
	var status struct {
		ValidatorInfo struct {
			Address string `json:"address"`
		} `json:"validator_info"`
	}
	if err := rpcResult(ctx, v4.Endpoints["rpc"]+"/status", &status); err != nil {
		t.Fatal(err)
	}
	var signers []string
	pollNetwork(t, c, "grow", 30*time.Second, "validator-4 signs a commit", func(*apis.Network) bool {
		signers = commitSigners(ctx, v0.Endpoints["rpc"])
		return slices.Contains(signers, status.ValidatorInfo.Address)
	})

	// And back to four: the fifth loses its power, then goes.
	victim, _ := framework.NodeByName(n, "validator-4")
	victimPorts := framework.NodePorts(&apis.Network{Status: apis.NetworkStatus{Nodes: []apis.NodeStatus{victim}}})
	cl.ok("scale", "grow", "--validators", "4")
	n = pollNetwork(t, c, "grow", 2*time.Minute, "validator-4 leaves", func(n *apis.Network) bool {
		if _, still := framework.NodeByName(n, "validator-4"); still {
			return false
		}
		vals, err = cometValidators(ctx, n)
		return err == nil && len(vals) == 4 && n.Status.Phase == apis.PhaseRunning
	})
	if victim.PID > 0 && framework.Alive(victim.PID) {
		t.Errorf("validator-4's cometbft (pid %d) still runs", victim.PID)
	}
	for _, p := range victimPorts {
		if framework.PortListening(p) {
			t.Errorf("validator-4's port %d still listens", p)
		}
	}
	if n, err = framework.AllAtLeast(ctx, c, "grow", n.Status.Height+3, time.Minute); err != nil {
		t.Fatalf("the chain stopped after the removal: %v", err)
	}

	ports := framework.NodePorts(n)
	for _, ns := range n.Status.Nodes {
		pids[ns.Name] = ns.PID
	}
	if _, err := c.DeleteNetwork(ctx, "grow"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "grow", time.Minute); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dataDir, ports, pids, 10*time.Second)
	srv.Stop()
}

// pollNetwork gets the network until cond holds, or fails the test
// naming what did not happen.
func pollNetwork(t *testing.T, c *client.Client, name string, timeout time.Duration, what string, cond func(*apis.Network) bool) *apis.Network {
	t.Helper()
	var n *apis.Network
	err := framework.Poll(t.Context(), timeout, 250*time.Millisecond, func() (bool, string) {
		var err error
		n, err = c.GetNetwork(t.Context(), name)
		if err != nil {
			return false, err.Error()
		}
		return cond(n), framework.Describe(n)
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return n
}
