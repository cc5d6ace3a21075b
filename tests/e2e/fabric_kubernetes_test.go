package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/runtime/kubernetes/kubetest"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricOnKubernetes deploys a Fabric network of 3 orderers, 2
// organisations of one peer and the chaincode host onto a registered
// cluster (a real API server, with kwok as its kubelet: pods report
// Running, but no container runs, so neither do the nodes, nor does the
// channel join). Orderers run the official orderer image; peers the peer
// image the server was told to use, with CouchDB as a native sidecar; the
// chaincode host chaindock-chaincode from the image the server was told
// to use, reached at its Service, which the templates' packages name.
// Keys and CouchDB's credentials are in the nodes' Secrets only, and the
// configuration names every node by its Service. Deleting the network
// removes its namespace.
func TestFabricOnKubernetes(t *testing.T) {
	kc := kubetest.Start(t, 8)
	ctx := t.Context()
	binDir, dataDir := setup(t)
	const peerImage = "registry.example/fabric-peer:3.1.5-custom"
	const chaincodeImage = "registry.example/chaindock:custom"
	srv := startServer(t, binDir, dataDir, "--port-range", "32350-32399", "--probe-interval", "500ms",
		"--image", "peer="+peerImage, "--image", fabric.CouchDBSidecar+"="+couchImage,
		"--image", fabric.ChaincodeProgram+"="+chaincodeImage)
	c := srv.Client
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	cl.ok("cluster", "add", "lab", "--kubeconfig", kc.Kubeconfig)

	spec := func(version string) []byte {
		return []byte(`apiVersion: chaindock/v1
kind: Network
metadata: {name: fab}
spec:
  chain: fabric
  runtime: kubernetes
  cluster: lab
  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {orderers: 3, templates: true` + version + `}
`)
	}
	// The pods run the 3.1 images: another release is refused there.
	if _, err := c.CreateNetwork(ctx, spec(`, version: "2.5"`)); err == nil || !strings.Contains(err.Error(), "spec.fabric.version: must be 3.1 or left out on runtime kubernetes") {
		t.Fatalf("create a Fabric 2.5 network on kubernetes: %v", err)
	}
	if _, err := c.CreateNetwork(ctx, spec("")); err != nil {
		t.Fatal(err)
	}
	const ns = "fab"
	service := func(node string) string { return node + "." + ns + ".svc" }
	orderers := []string{"orderer-0", "orderer-1", "orderer-2"}
	peers := []string{"org1-peer-0", "org2-peer-0"}

	n, pods := podsRunning(t, kc, c, "fab", ns, 6)
	checkChaincodeHost(t, kc, n, ns, chaincodeImage)

	for _, node := range append(slices.Clone(orderers), peers...) {
		peer := slices.Contains(peers, node)
		sts, err := kc.Client.AppsV1().StatefulSets(ns).Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		image := fabric.OrdererImage
		if peer {
			image = peerImage
		}
		checkFabricPod(t, node, sts.Spec.Template.Spec, image, peer)
		i := slices.IndexFunc(pods.Items, func(p corev1.Pod) bool { return p.Name == node+"-0" })
		if i < 0 {
			t.Fatalf("no pod of %s", node)
		}
		if peer && !slices.ContainsFunc(pods.Items[i].Spec.InitContainers, func(c corev1.Container) bool {
			return c.Name == fabric.CouchDBSidecar && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		}) {
			t.Errorf("pod %s has no CouchDB sidecar", pods.Items[i].Name)
		}
		checkFabricFiles(t, kc, ns, node, sts, peer, service, orderers)

		s, ok := framework.NodeByName(n, node)
		if !ok {
			t.Fatalf("no status of %s: %s", node, framework.Describe(n))
		}
		if !strings.HasPrefix(s.Endpoints[fabric.PortListen], "grpcs://"+service(node)+":") || !strings.HasPrefix(s.Endpoints[fabric.PortOperations], "http://"+service(node)+":") {
			t.Errorf("%s endpoints %v, want its Service's name", node, s.Endpoints)
		}
	}
	if n.Status.Phase == apis.PhaseRunning {
		t.Errorf("the network is Running, yet no container runs: %s", framework.Describe(n))
	}

	if _, err := c.DeleteNetwork(ctx, "fab"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "fab", time.Minute); err != nil {
		t.Fatal(err)
	}
	namespaceGone(t, kc, ns)
	cl.ok("cluster", "remove", "lab")
	srv.Stop()
}

// checkChaincodeHost checks the chaincode host's pod and Service: it runs
// chaindock-chaincode from image, serves each template on 0.0.0.0 at a
// port of its Service, under the package ID of the package whose
// connection.json names that Service, and its status names the Service.
func checkChaincodeHost(t *testing.T, kc *kubetest.Cluster, n *apis.Network, ns, image string) {
	t.Helper()
	ctx := t.Context()
	sts, err := kc.Client.AppsV1().StatefulSets(ns).Get(ctx, apis.ChaincodeNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := sts.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 1 {
		t.Fatalf("%s: %d containers, %d init containers, want 1 and 1 (files)", apis.ChaincodeNode, len(pod.Containers), len(pod.InitContainers))
	}
	ct := pod.Containers[0]
	if ct.Image != image || !slices.Equal(ct.Command, []string{fabric.ChaincodeProgram}) {
		t.Errorf("%s runs %s %v, want %s from %s", apis.ChaincodeNode, ct.Image, ct.Command, fabric.ChaincodeProgram, image)
	}
	svc, err := kc.Client.CoreV1().Services(ns).Get(ctx, apis.ChaincodeNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host, ok := framework.NodeByName(n, apis.ChaincodeNode)
	if !ok || host.Role != apis.RoleChaincode {
		t.Fatalf("no status of the chaincode host: %s", framework.Describe(n))
	}
	var want []string
	for _, name := range []string{"notary", "asset"} {
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == name })
		if i < 0 {
			t.Fatalf("Service %s has no port %s: %+v", apis.ChaincodeNode, name, svc.Spec.Ports)
		}
		port := int(svc.Spec.Ports[i].Port)
		if !slices.ContainsFunc(ct.Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == port }) {
			t.Errorf("%s: the container does not expose %s's port %d", apis.ChaincodeNode, name, port)
		}
		address := fmt.Sprintf("%s.%s.svc:%d", apis.ChaincodeNode, ns, port)
		if host.Endpoints[name] != "tcp://"+address {
			t.Errorf("%s endpoint %q, want tcp://%s", name, host.Endpoints[name], address)
		}
		// The package ID hashes the whole package: the host serves the
		// package whose connection.json names its Service.
		_, id, err := fabric.TemplatePackage(name, address)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, "--serve", fmt.Sprintf("%s=%s@0.0.0.0:%d", name, id, port))
	}
	if !slices.Equal(ct.Args, want) {
		t.Errorf("%s args\n got: %q\nwant: %q", apis.ChaincodeNode, ct.Args, want)
	}
	t.Logf("%s: %s %s, Service ports %v", apis.ChaincodeNode, ct.Image, strings.Join(append(ct.Command, ct.Args...), " "), svc.Spec.Ports)
}

// couchImage replaces the official CouchDB image of peers' sidecars.
const couchImage = "registry.example/couchdb:3.3.3-custom"

// checkFabricPod checks a node's pod template: its images, its init
// containers in order, and a peer's CouchDB sidecar.
func checkFabricPod(t *testing.T, node string, pod corev1.PodSpec, image string, peer bool) {
	t.Helper()
	var names []string
	for _, ic := range pod.InitContainers {
		names = append(names, ic.Name)
	}
	want := []string{"files"}
	if peer {
		want = append(want, "init-couchdb-credentials", fabric.CouchDBSidecar)
	}
	if len(pod.Containers) != 1 || !slices.Equal(names, want) {
		t.Fatalf("%s: containers %d, init containers %v, want 1 and %v", node, len(pod.Containers), names, want)
	}
	program := fabric.OrdererProgram
	if peer {
		program = fabric.PeerProgram
	}
	if ct := pod.Containers[0]; ct.Image != image || !slices.Equal(ct.Command, []string{program}) {
		t.Errorf("%s runs %s %v, want %s from %s", node, ct.Image, ct.Command, program, image)
	}
	for _, ct := range pod.InitContainers {
		if ct.Name == fabric.CouchDBSidecar {
			continue
		}
		if ct.Image != image {
			t.Errorf("%s: init container %s runs %s, want the node's %s", node, ct.Name, ct.Image, image)
		}
	}
	if !peer {
		return
	}
	sc := pod.InitContainers[2]
	if sc.Image != couchImage || sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways || len(sc.Command) != 0 {
		t.Errorf("%s: CouchDB sidecar %s %v (restart %v)", node, sc.Image, sc.Command, sc.RestartPolicy)
	}
	if p := sc.StartupProbe; p == nil || p.TCPSocket == nil || p.TCPSocket.Port.IntValue() != fabric.CouchDBPort {
		t.Errorf("%s: CouchDB sidecar's startup probe %+v, want TCP %d", node, p, fabric.CouchDBPort)
	}
	for _, e := range sc.Env {
		if strings.Contains(e.Name, "PASSWORD") {
			t.Errorf("%s: CouchDB sidecar has %s in its environment", node, e.Name)
		}
	}
}

// checkFabricFiles checks a node's ConfigMap and Secret: the keys and
// CouchDB's credentials are in the Secret and nowhere else, and the
// configuration names the nodes by their Services.
func checkFabricFiles(t *testing.T, kc *kubetest.Cluster, ns, node string, sts *appsv1.StatefulSet, peer bool, service func(string) string, orderers []string) {
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
	// An orderer's keys: its MSP key and TLS key; a peer's also CouchDB's
	// user and password.
	want := 2
	if peer {
		want = 4
	}
	if len(sec.Data) != want {
		t.Errorf("%s Secret holds %d files, want %d", node, len(sec.Data), want)
	}
	template, err := json.Marshal(sts.Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	password := false
	for name, v := range sec.Data {
		v = bytes.TrimSpace(v)
		if regexp.MustCompile(`^[0-9a-f]{32}$`).Match(v) {
			password = true
		}
		for cmName, data := range cm.BinaryData {
			if len(v) >= 16 && bytes.Contains(data, v) {
				t.Errorf("%s ConfigMap %s holds the Secret's %s", node, cmName, name)
			}
		}
		if len(v) >= 16 && bytes.Contains(template, v) {
			t.Errorf("%s pod template holds the Secret's %s", node, name)
		}
	}
	if password != peer {
		t.Errorf("%s Secret holds a CouchDB password: %v", node, password)
	}

	var config, block []byte
	for _, data := range cm.BinaryData {
		switch {
		case bytes.Contains(data, []byte("ChannelParticipation:")), bytes.Contains(data, []byte("chaincodeListenAddress:")):
			config = data
		case bytes.Contains(data, []byte(fabric.OrdererProgram+"-0."+ns+".svc")):
			block = data
		}
	}
	var wants []string
	if peer {
		wants = []string{
			"address: " + service(node) + ":",
			"externalEndpoint: " + service(node) + ":",
			"listenAddress: 0.0.0.0:",
			"stateDatabase: CouchDB",
			"couchDBAddress: 127.0.0.1:5984",
			"password: '@COUCHDB_PASSWORD@'",
			"path: /opt/hyperledger/ccaas_builder",
		}
	} else {
		wants = []string{"ListenAddress: 0.0.0.0\n", "ListenAddress: 0.0.0.0:"}
	}
	for _, w := range wants {
		if !bytes.Contains(config, []byte(w)) {
			t.Errorf("%s: its config lacks %q:\n%s", node, w, config)
		}
	}
	loopback := 0
	if peer {
		loopback = 1 // CouchDB's address
	}
	if bytes.Count(config, []byte("127.0.0.1")) != loopback {
		t.Errorf("%s: its config names loopback for more than CouchDB:\n%s", node, config)
	}
	// The genesis block names every orderer by its Service.
	for _, o := range orderers {
		if !bytes.Contains(block, []byte(service(o))) {
			t.Errorf("%s: the genesis block does not name %s", node, service(o))
		}
	}
}
