package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/runtime/kubernetes/kubetest"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestEthereumOnKubernetes deploys a Clique network of 3 sealers and a
// full node onto a registered cluster (a real API server, with kwok as its
// kubelet: pods report Running, but no container runs, so the chain itself
// does not). Every container of a node runs the geth image the server was
// told to use; before geth, a node waits for its peers' Service names to
// resolve, then writes its genesis. Its config.toml names its peers by
// their Services, its node key and sealer account are in its Secret only,
// and it serves RPC on all its addresses to requests addressed to its
// name. Deleting the network removes its namespace.
func TestEthereumOnKubernetes(t *testing.T) {
	kc := kubetest.Start(t, 8)
	ctx := t.Context()
	binDir, dataDir := setup(t)
	const image = "registry.example/geth:v1.13.15-custom"
	srv := startServer(t, binDir, dataDir, "--port-range", "32300-32349", "--probe-interval", "500ms", "--image", "geth="+image)
	c := srv.Client
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	cl.ok("cluster", "add", "lab", "--kubeconfig", kc.Kubeconfig)

	spec := []byte("apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: eth}\nspec: {chain: ethereum, runtime: kubernetes, cluster: lab, validators: 3, fullNodes: 1}\n")
	if _, err := c.CreateNetwork(ctx, spec); err != nil {
		t.Fatal(err)
	}
	const ns = "eth"
	nodes := []string{"validator-0", "validator-1", "validator-2", "full-0"}
	service := func(node string) string { return node + "." + ns + ".svc" }

	n, pods := podsRunning(t, kc, c, "eth", ns, 4)

	for _, node := range nodes {
		sts, err := kc.Client.AppsV1().StatefulSets(ns).Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkEthereumPod(t, node, sts.Spec.Template.Spec, image, service, nodes)
		i := slices.IndexFunc(pods.Items, func(p corev1.Pod) bool { return p.Name == node+"-0" })
		if i < 0 {
			t.Fatalf("no pod of %s", node)
		}
		var got []string
		for _, ic := range pods.Items[i].Spec.InitContainers {
			got = append(got, ic.Name)
		}
		if want := []string{"files", "init-peers", "init-genesis"}; !slices.Equal(got, want) {
			t.Errorf("pod %s runs init containers %v, want %v", pods.Items[i].Name, got, want)
		}
		checkEthereumFiles(t, kc, ns, node, service, nodes)

		s, ok := framework.NodeByName(n, node)
		if !ok {
			t.Fatalf("no status of %s: %s", node, framework.Describe(n))
		}
		if !strings.HasPrefix(s.Endpoints["rpc"], "http://"+service(node)+":") || !strings.Contains(s.Endpoints["p2p"], "@"+service(node)+":") {
			t.Errorf("%s endpoints %v, want its Service's name", node, s.Endpoints)
		}
	}
	if n.Status.Phase == apis.PhaseRunning {
		t.Errorf("the network is Running, yet no container runs: %s", framework.Describe(n))
	}

	if _, err := c.DeleteNetwork(ctx, "eth"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "eth", time.Minute); err != nil {
		t.Fatal(err)
	}
	namespaceGone(t, kc, ns)
	cl.ok("cluster", "remove", "lab")
	srv.Stop()
}

// checkEthereumPod checks a node's pod template: the image everywhere,
// the init steps in order, the peers waited for, and geth's flags.
func checkEthereumPod(t *testing.T, node string, pod corev1.PodSpec, image string, service func(string) string, nodes []string) {
	t.Helper()
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 3 {
		t.Fatalf("%s: %d containers, %d init containers", node, len(pod.Containers), len(pod.InitContainers))
	}
	for _, ct := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		if ct.Image != image {
			t.Errorf("%s: container %s runs image %s, want %s as --image said", node, ct.Name, ct.Image, image)
		}
	}
	peers, genesis, geth := pod.InitContainers[1], pod.InitContainers[2], pod.Containers[0]
	if peers.Name != "init-peers" || !slices.Equal(peers.Command, []string{"sh"}) || len(peers.Args) < 3 || peers.Args[0] != "-c" || !strings.Contains(peers.Args[1], "getent hosts") {
		t.Fatalf("%s: peers step %s %v %v", node, peers.Name, peers.Command, peers.Args)
	}
	var want []string
	for _, o := range nodes {
		if o != node {
			want = append(want, service(o))
		}
	}
	if got := peers.Args[3:]; !slices.Equal(got, want) {
		t.Errorf("%s waits for %v, want %v", node, got, want)
	}
	if genesis.Name != "init-genesis" || !slices.Equal(genesis.Command, []string{"geth"}) || !slices.Contains(genesis.Args, "init") {
		t.Errorf("%s: genesis step %s %v %v", node, genesis.Name, genesis.Command, genesis.Args)
	}
	arg := func(name string) string {
		i := slices.Index(geth.Args, name)
		if i < 0 || i+1 >= len(geth.Args) {
			return ""
		}
		return geth.Args[i+1]
	}
	if !slices.Equal(geth.Command, []string{"geth"}) || arg("--http.addr") != "0.0.0.0" || !slices.Contains(strings.Split(arg("--http.vhosts"), ","), service(node)) {
		t.Errorf("%s runs %v %v", node, geth.Command, geth.Args)
	}
	if slices.Contains(geth.Args, "--netrestrict") {
		t.Errorf("%s restricts its peers' addresses in a pod: %v", node, geth.Args)
	}
	if sealer := arg("--miner.etherbase") != ""; sealer != strings.HasPrefix(node, "validator-") {
		t.Errorf("%s seals: %v", node, sealer)
	}
}

// checkEthereumFiles checks a node's ConfigMap and Secret: config.toml
// names the peers by their Services, and the keys are in the Secret only.
func checkEthereumFiles(t *testing.T, kc *kubetest.Cluster, ns, node string, service func(string) string, nodes []string) {
	t.Helper()
	ctx := t.Context()
	cm, err := kc.Client.CoreV1().ConfigMaps(ns).Get(ctx, node+"-files", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := kc.Client.CoreV1().Secrets(ns).Get(ctx, node+"-keys", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var config string
	for _, data := range cm.BinaryData {
		if bytes.Contains(data, []byte("StaticNodes")) {
			config = string(data)
		}
	}
	if !strings.Contains(config, `ListenAddr = "0.0.0.0:`) || strings.Contains(config, "127.0.0.1") {
		t.Errorf("%s config.toml does not listen on all its addresses:\n%s", node, config)
	}
	for _, o := range nodes {
		if n := strings.Count(config, "@"+service(o)+":"); n != map[bool]int{true: 0, false: 2}[o == node] {
			t.Errorf("%s config.toml names %s by its Service %d times:\n%s", node, o, n, config)
		}
	}

	// The node key (and a sealer's keystore and password) are in the
	// Secret, and nowhere in the ConfigMap.
	want := 1
	if strings.HasPrefix(node, "validator-") {
		want = 3
	}
	if len(sec.Data) != want {
		t.Errorf("%s Secret holds %d files, want %d", node, len(sec.Data), want)
	}
	nodeKey := false
	for _, key := range sec.Data {
		if k, err := crypto.HexToECDSA(string(key)); err == nil {
			nodeKey = true
			pub := fmt.Sprintf("%x", crypto.FromECDSAPub(&k.PublicKey)[1:])
			if strings.Contains(config, pub) {
				t.Errorf("%s config.toml names itself as a peer", node)
			}
		}
		for name, data := range cm.BinaryData {
			if bytes.Contains(data, bytes.TrimSpace(key)) {
				t.Errorf("%s ConfigMap %s holds a key of the Secret", node, name)
			}
		}
	}
	if !nodeKey {
		t.Errorf("%s Secret holds no node key", node)
	}
	for name, data := range cm.BinaryData {
		if bytes.Contains(data, []byte(`"ciphertext"`)) {
			t.Errorf("%s ConfigMap %s holds a keystore", node, name)
		}
	}
}
