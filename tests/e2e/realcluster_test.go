package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// EnvRealCluster names the kubeconfig of a real cluster (one whose
// kubelets run containers) for TestChainsOnARealCluster; `make e2e-k8s`
// sets it from KUBECONFIG.
const EnvRealCluster = "CHAINDOCK_E2E_KUBECONFIG"

// TestChainsOnARealCluster runs real chains in pods: a 4-validator
// CometBFT network and a 3-sealer Ethereum network on the cluster of
// CHAINDOCK_E2E_KUBECONFIG, with the server on this machine, outside the
// cluster, reaching the nodes through the API server's service proxy. Both
// must be reported Running with every node past a few blocks; a deleted
// pod comes back and catches up; a fifth validator and an Ethereum full
// node join; deleting the networks removes their namespaces.
func TestChainsOnARealCluster(t *testing.T) {
	path := os.Getenv(EnvRealCluster)
	if path == "" {
		t.Skipf("%s is not set: `make e2e-k8s` runs this test against the cluster of KUBECONFIG", EnvRealCluster)
	}
	kubeconfig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	binDir, dataDir := setup(t)
	srv := startServer(t, binDir, dataDir, "--probe-interval", "1s")
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	cl.ok("cluster", "add", "real", "--kubeconfig", path)
	c := srv.Client

	suffix := time.Now().Format("150405")
	cmt, eth := "e2e-cmt-"+suffix, "e2e-eth-"+suffix
	for _, spec := range []string{
		fmt.Sprintf("apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: %s}\nspec: {chain: cometbft, runtime: kubernetes, cluster: real, validators: 4}\n", cmt),
		fmt.Sprintf("apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: %s}\nspec: {chain: ethereum, runtime: kubernetes, cluster: real, validators: 3}\n", eth),
	} {
		if _, err := c.CreateNetwork(ctx, []byte(spec)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, name := range []string{cmt, eth} {
			_, _ = c.DeleteNetwork(ctx, name)
			_ = framework.WaitGone(ctx, c, name, 5*time.Minute)
		}
	})
	running := func(name string, nodes int, height int64) {
		t.Helper()
		if err := framework.Poll(ctx, 10*time.Minute, 2*time.Second, func() (bool, string) {
			n, err := c.GetNetwork(ctx, name)
			if err != nil {
				return false, err.Error()
			}
			return n.Status.Phase == apis.PhaseRunning && len(n.Status.Nodes) == nodes && framework.MinHeight(n) >= height, framework.Describe(n)
		}); err != nil {
			t.Fatalf("%s Running with %d nodes past height %d: %v", name, nodes, height, err)
		}
	}
	running(cmt, 4, 5)
	running(eth, 3, 3)

	// A pod deleted: the cluster makes another, and it catches up.
	for _, name := range []string{cmt, eth} {
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		height := framework.MinHeight(n)
		if err := kube.CoreV1().Pods(name).Delete(ctx, "validator-1-0", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		running(name, len(n.Status.Nodes), height+2)
	}

	// Scaling: a fifth validator by a validator-set update, and a geth
	// full node.
	if _, err := scaleNetwork(ctx, c, cmt, 5, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := scaleNetwork(ctx, c, eth, 3, 1); err != nil {
		t.Fatal(err)
	}
	running(cmt, 5, 10)
	running(eth, 4, 6)

	for _, name := range []string{cmt, eth} {
		if _, err := c.DeleteNetwork(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := framework.WaitGone(ctx, c, name, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := framework.Poll(ctx, 5*time.Minute, 2*time.Second, func() (bool, string) {
			_, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		}); err != nil {
			t.Fatalf("the namespace of %s: %v", name, err)
		}
	}
}

// scaleNetwork asks for validators and full nodes on a running network.
func scaleNetwork(ctx context.Context, c *client.Client, name string, validators, fullNodes int) (*apis.Network, error) {
	body := fmt.Appendf(nil, `{"validators": %d, "fullNodes": %d}`, validators, fullNodes)
	var out apis.Network
	err := c.Do(ctx, http.MethodPut, "/api/v1/networks/"+name+"/scale", body, "application/json", &out)
	return &out, err
}
