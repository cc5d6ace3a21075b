package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// fabricPortRange holds the ports of the Fabric networks' nodes.
const fabricPortRange = "36000-36199"

// fabricBinDir is the directory of the user's Fabric peer and orderer:
// $FABRIC_BIN, else where PATH has them; "" when there are none.
func fabricBinDir() string {
	if d := os.Getenv("FABRIC_BIN"); d != "" {
		return d
	}
	peer, err := exec.LookPath("peer")
	if err != nil {
		return ""
	}
	if _, err := exec.LookPath("orderer"); err != nil {
		return ""
	}
	return filepath.Dir(peer)
}

// benchFabric measures, with the user's Fabric binaries, the time from
// applying a network of 2 organisations of 2 peers and 3 Raft orderers to
// the API reporting it Running (every node up, every orderer and peer
// joined to the channel, the channel's Raft with a leader), and on to the
// notarisation template committed as chaincode through the contract API
// (installed on the 4 peers, approved by both organisations, committed).
// Without the binaries it says so and measures nothing: ChainDock does
// not build Fabric.
func benchFabric(ctx context.Context, binDir string) error {
	fab := fabricBinDir()
	if fab == "" {
		fmt.Fprintln(os.Stderr, "bench: fabric: skipped: no Fabric binaries (set FABRIC_BIN to the directory of Fabric 3.1's peer and orderer)")
		return nil
	}
	tmp, err := os.MkdirTemp("", "chaindock-bench-fabric")
	if err != nil {
		return err
	}
	dataDir := filepath.Join(tmp, "data")
	defer func() {
		framework.KillAllUnder(dataDir)
		_ = os.RemoveAll(tmp)
	}()
	srv, err := framework.StartServerEnv(ctx, binDir, dataDir, []string{"FABRIC_BIN=" + fab},
		"--port-range", fabricPortRange, "--rate-limit", "0", "--log-level", "warn", "--probe-interval", "500ms")
	if err != nil {
		return err
	}
	defer srv.Stop()
	c := srv.Client

	var deploys, chaincodes, toChaincode, deletes []float64
	for i := range runs {
		network, chaincode, err := fabricToChaincode(ctx, c, fmt.Sprintf("bench-fab-%d", i), "orderers: 3")
		if err != nil {
			return err
		}
		deploys, chaincodes, toChaincode = append(deploys, network), append(chaincodes, chaincode), append(toChaincode, round(network+chaincode))
		if i == 0 {
			if err := benchFabricGateway(ctx, c, fmt.Sprintf("bench-fab-%d", i)); err != nil {
				return err
			}
			if err := benchFabricRenewal(ctx, c, fmt.Sprintf("bench-fab-%d", i)); err != nil {
				return err
			}
		}
		took, err := deleteFabric(ctx, c, fmt.Sprintf("bench-fab-%d", i))
		if err != nil {
			return err
		}
		deletes = append(deletes, took)
	}
	emit(figure{Metric: "fabric_deploy_network_s", Value: median(deploys), Unit: "s", Samples: deploys,
		Note: "apply 2 organisations x 2 peers and 3 Raft orderers until the API reports the network Running: every node joined to the channel and its Raft led (the user's Fabric binaries)"})
	emit(figure{Metric: "fabric_chaincode_s", Value: median(chaincodes), Unit: "s", Samples: chaincodes,
		Note: "POST .../contracts of builtin/fabric-notary@1.0.0 on the running network until it answers: installed on the 4 peers, approved by both organisations, committed and seen on every organisation's peer"})
	emit(figure{Metric: "fabric_deploy_s", Value: median(toChaincode), Unit: "s", Samples: toChaincode,
		Note: "apply until the notarisation chaincode is committed: the two figures above end to end (a bare script with 1 orderer and 2 peers takes about 17 s)"})
	emit(figure{Metric: "fabric_delete_s", Value: median(deletes), Unit: "s", Samples: deletes,
		Note: "delete it until the network is gone with its 8 processes (with the chaincode node) and their files"})
	return benchFabricBFT(ctx, c)
}

// benchFabricBFT is fabric_deploy_s with 4 BFT orderers instead of 3
// Raft ones.
func benchFabricBFT(ctx context.Context, c *client.Client) error {
	var toChaincode []float64
	for i := range runs {
		name := fmt.Sprintf("bench-fabbft-%d", i)
		network, chaincode, err := fabricToChaincode(ctx, c, name, "consensus: BFT, orderers: 4")
		if err != nil {
			return err
		}
		toChaincode = append(toChaincode, round(network+chaincode))
		if _, err := deleteFabric(ctx, c, name); err != nil {
			return err
		}
	}
	emit(figure{Metric: "fabric_bft_deploy_s", Value: median(toChaincode), Unit: "s", Samples: toChaincode,
		Note: "fabric_deploy_s with 4 BFT (SmartBFT) orderers instead of 3 Raft ones: apply until the notarisation chaincode is committed"})
	return nil
}

// fabricToChaincode applies a network of 2 organisations x 2 peers with
// the orderers ordering (a flow mapping's entries), and deploys the
// notarisation template on it: the seconds until it runs, and then until
// the chaincode is committed.
func fabricToChaincode(ctx context.Context, c *client.Client, name, ordering string) (network, chaincode float64, err error) {
	spec := fmt.Appendf(nil, `apiVersion: chaindock/v1
kind: Network
metadata: {name: %s}
spec:
  chain: fabric
  runtime: process
  organizations:
    - {name: org1, peers: 2}
    - {name: org2, peers: 2}
  fabric: {%s, channel: trade, templates: true}
`, name, ordering)
	start := time.Now()
	if _, err := c.CreateNetwork(ctx, spec); err != nil {
		return 0, 0, err
	}
	if err := framework.Poll(ctx, 3*time.Minute, 20*time.Millisecond, func() (bool, string) {
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		return n.Status.Phase == apis.PhaseRunning, framework.Describe(n)
	}); err != nil {
		return 0, 0, fmt.Errorf("deploy %s: %w", name, err)
	}
	network = round(time.Since(start).Seconds())
	running := time.Now()
	body := []byte(`{"name":"notary","package":"builtin/fabric-notary@1.0.0"}`)
	if err := c.Do(ctx, http.MethodPost, "/api/v1/networks/"+name+"/contracts", body, "application/json", nil); err != nil {
		return 0, 0, fmt.Errorf("deploy the notarisation chaincode on %s: %w", name, err)
	}
	return network, round(time.Since(running).Seconds()), nil
}

// deleteFabric deletes network name and waits until it is gone.
func deleteFabric(ctx context.Context, c *client.Client, name string) (float64, error) {
	start := time.Now()
	if _, err := c.DeleteNetwork(ctx, name); err != nil {
		return 0, err
	}
	if err := framework.WaitGone(ctx, c, name, time.Minute); err != nil {
		return 0, err
	}
	return round(time.Since(start).Seconds()), nil
}
