package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	k8srt "github.com/chaindock/chaindock/internal/runtime/kubernetes"
	"github.com/chaindock/chaindock/internal/runtime/kubernetes/kubetest"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestCometBFTOnKubernetes deploys a 4-validator CometBFT network onto a
// registered cluster (a real API server, with kwok as its kubelet: pods
// report Running, but no container runs, so the chain itself does not).
// The server is killed with SIGKILL while it applies the network; the next
// one completes it with every object once. The nodes' configuration names
// their peers by their Services' DNS names. Deleting the network removes
// its namespace and everything in it.
func TestCometBFTOnKubernetes(t *testing.T) {
	kc := kubetest.Start(t, 8)
	ctx := t.Context()
	binDir, dataDir := setup(t)
	// The server is told to use another CometBFT image: the nodes it
	// applies take it.
	const image = "registry.example/cometbft:v0.38.26-custom"
	args := []string{"--port-range", "31925-31949", "--probe-interval", "500ms", "--image", "cometbft=" + image}
	srv := startServer(t, binDir, dataDir, args...)
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	cl.ok("cluster", "add", "lab", "--kubeconfig", kc.Kubeconfig)

	spec := func(name, extra string) []byte {
		return fmt.Appendf(nil, `apiVersion: chaindock/v1
kind: Network
metadata: {name: %s}
spec:
  chain: cometbft
  runtime: kubernetes
  validators: 4
%s`, name, extra)
	}
	for _, c := range []struct{ extra, want string }{
		{"", "spec.cluster: is required on runtime kubernetes"},
		{"  cluster: nope\n", `spec.cluster: no registered cluster "nope"`},
	} {
		if _, err := srv.Client.CreateNetwork(ctx, spec("k8s", c.extra)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("create %q: %v, want %q", c.extra, err, c.want)
		}
	}
	// Ethereum networks run on kubernetes too (TestEthereumOnKubernetes),
	// and are refused for the same reasons.
	ethereum := []byte("apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: eth}\nspec: {chain: ethereum, runtime: kubernetes, validators: 3}\n")
	if _, err := srv.Client.CreateNetwork(ctx, ethereum); err == nil || !strings.Contains(err.Error(), "spec.cluster: is required on runtime kubernetes") || strings.Contains(err.Error(), "spec.runtime") {
		t.Fatalf("create an ethereum network on kubernetes without a cluster: %v", err)
	}

	// Killed while it applies: as soon as the first stateful set shows.
	if _, err := srv.Client.CreateNetwork(ctx, spec("k8s", "  cluster: lab\n")); err != nil {
		t.Fatal(err)
	}
	ns := "k8s"
	kc.WaitFor(t, time.Minute, "the first stateful set", func(ctx context.Context) (bool, string) {
		list, err := kc.Client.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) > 0, "none yet"
	})
	srv.Kill()
	srv = startServer(t, binDir, dataDir, args...)
	c := srv.Client

	n, _ := podsRunning(t, kc, c, "k8s", ns, 4)
	for _, kind := range []string{"services", "configmaps", "secrets", "persistentvolumeclaims"} {
		var got int
		switch kind {
		case "services":
			l, _ := kc.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
			got = len(l.Items)
		case "configmaps":
			l, _ := kc.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: k8srt.LabelManagedBy + "=" + k8srt.ManagedBy})
			got = len(l.Items)
		case "secrets":
			l, _ := kc.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: k8srt.LabelManagedBy + "=" + k8srt.ManagedBy})
			got = len(l.Items)
		case "persistentvolumeclaims":
			l, _ := kc.Client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
			got = len(l.Items)
		}
		if got != 4 {
			t.Errorf("%d %s after the server was killed during the apply, want 4", got, kind)
		}
	}

	stsList, err := kc.Client.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sts := range stsList.Items {
		if got := sts.Spec.Template.Spec.Containers[0].Image; got != image {
			t.Errorf("%s runs image %s, want %s as --image said", sts.Name, got, image)
		}
	}

	// Each node names its peers by their Services, listens on all its
	// addresses, and is reached by the platform at its own name.
	cm, err := kc.Client.CoreV1().ConfigMaps(ns).Get(ctx, "validator-0-files", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var config string
	for _, data := range cm.BinaryData {
		if strings.Contains(string(data), "persistent_peers") {
			config = string(data)
		}
	}
	for _, want := range []string{"validator-1.k8s.svc:", "validator-3.k8s.svc:", `laddr = "tcp://0.0.0.0:`, `external_address = "validator-0.k8s.svc:`} {
		if !strings.Contains(config, want) {
			t.Fatalf("validator-0's config.toml lacks %q:\n%s", want, config)
		}
	}
	// The status shows each node's pod, as the cluster reports it.
	kc.WaitFor(t, time.Minute, "every node's pod in the status", func(ctx context.Context) (bool, string) {
		var err error
		if n, err = c.GetNetwork(ctx, "k8s"); err != nil {
			return false, err.Error()
		}
		for _, s := range n.Status.Nodes {
			if s.Pod == nil || s.Pod.Phase != "Running" || !s.Pod.Ready || s.Pod.Node != kubetest.FakeNode || s.Pod.PodIP == "" || s.Pod.Name != "k8s/"+s.Name+"-0" {
				return false, fmt.Sprintf("%s: pod %+v", s.Name, s.Pod)
			}
		}
		return true, ""
	})
	// At rest the pods are read from watches: no request to the cluster
	// while nothing changes, though the controller probes the nodes all
	// along (through the API server's service proxy, as the Services'
	// names do not resolve here).
	metric := func(name string) float64 {
		v, err := framework.MetricSum(ctx, c, name, map[string]string{"cluster": "lab"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	requests, proxied := metric("chaindock_kube_api_requests_total"), metric("chaindock_kube_proxied_requests_total")
	time.Sleep(12 * time.Second)
	if n := metric("chaindock_kube_api_requests_total") - requests; n != 0 {
		t.Errorf("%v requests to the cluster in 12 s at rest, want 0", n)
	}
	if n := metric("chaindock_kube_proxied_requests_total") - proxied; n < 4 {
		t.Errorf("%v node probes through the service proxy in 12 s, want some for each of the 4 nodes", n)
	}

	// A pod the cluster replaces shows as such, with its new UID.
	v0, _ := framework.NodeByName(n, "validator-0")
	if err := kc.Client.CoreV1().Pods(ns).Delete(ctx, "validator-0-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	kc.WaitFor(t, time.Minute, "the replaced pod in the status and the events", func(ctx context.Context) (bool, string) {
		n, err := c.GetNetwork(ctx, "k8s")
		if err != nil {
			return false, err.Error()
		}
		now, _ := framework.NodeByName(n, "validator-0")
		if now.Pod == nil || now.Pod.UID == v0.Pod.UID {
			return false, fmt.Sprintf("pod %+v", now.Pod)
		}
		for _, e := range networkEvents(t, c, "k8s") {
			if (e.Reason == "PodReplaced" || e.Reason == "PodGone") && e.Node == "validator-0" {
				return true, ""
			}
		}
		return false, "no PodReplaced or PodGone event"
	})
	if !strings.HasPrefix(v0.Endpoints["rpc"], "http://validator-0.k8s.svc:") {
		t.Errorf("validator-0's RPC endpoint %q, want its Service's name", v0.Endpoints["rpc"])
	}
	if n.Status.Phase == apis.PhaseRunning {
		t.Errorf("the network is Running, yet no container runs: %s", framework.Describe(n))
	}

	// A node beyond its namespace's quota (16 CPUs by default) gets no
	// pod: its status and an event say why, in the cluster's words.
	hungry := []byte("apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: hungry}\nspec: {chain: cometbft, runtime: kubernetes, cluster: lab, validators: 1, resources: {cpu: \"80\", memory: 1Gi}}\n")
	if _, err := c.CreateNetwork(ctx, hungry); err != nil {
		t.Fatal(err)
	}
	kc.WaitFor(t, time.Minute, "the hungry node's status to say why it has no pod", func(ctx context.Context) (bool, string) {
		h, err := c.GetNetwork(ctx, "hungry")
		if err != nil || len(h.Status.Nodes) != 1 {
			return false, fmt.Sprint(err)
		}
		s := h.Status.Nodes[0]
		return s.Phase == apis.NodePending && strings.Contains(s.Message, "exceeded quota"), fmt.Sprintf("%s: %s (pod %+v)", s.Phase, s.Message, s.Pod)
	})
	pending := false
	for _, e := range networkEvents(t, c, "hungry") {
		pending = pending || e.Reason == "NodeWaiting" && strings.Contains(e.Message, "exceeded quota")
	}
	if !pending {
		t.Error("no NodeWaiting event for the node its namespace's quota refuses")
	}
	if _, err := c.DeleteNetwork(ctx, "hungry"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "hungry", time.Minute); err != nil {
		t.Fatal(err)
	}

	// A cluster a network runs on stays registered.
	cl.fails("networks k8s run on cluster lab: delete them first", "cluster", "remove", "lab")
	if _, err := c.DeleteNetwork(ctx, "k8s"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "k8s", time.Minute); err != nil {
		t.Fatal(err)
	}
	namespaceGone(t, kc, ns)
	cl.ok("cluster", "remove", "lab")
	srv.Stop()
}

// podsRunning waits until network (in namespace ns) has want nodes in its
// status, and the cluster want stateful sets of ChainDock's and want pods
// Running; it returns the network and the pods.
func podsRunning(t *testing.T, kc *kubetest.Cluster, c *client.Client, network, ns string, want int) (*apis.Network, *corev1.PodList) {
	t.Helper()
	var n *apis.Network
	var pods *corev1.PodList
	kc.WaitFor(t, 2*time.Minute, fmt.Sprintf("%d nodes, each with its pod running", want), func(ctx context.Context) (bool, string) {
		var err error
		if n, err = c.GetNetwork(ctx, network); err != nil {
			return false, err.Error()
		}
		sts, err := kc.Client.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{LabelSelector: k8srt.LabelManagedBy + "=" + k8srt.ManagedBy})
		if err != nil {
			return false, err.Error()
		}
		if pods, err = kc.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
			return false, err.Error()
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return len(sts.Items) == want && running == want && len(n.Status.Nodes) == want,
			fmt.Sprintf("%d stateful sets, %d pods running; %s", len(sts.Items), running, framework.Describe(n))
	})
	return n, pods
}

// namespaceGone waits until the cluster has no namespace ns.
func namespaceGone(t *testing.T, kc *kubetest.Cluster, ns string) {
	t.Helper()
	kc.WaitFor(t, 2*time.Minute, "the network's namespace to go", func(ctx context.Context) (bool, string) {
		nsObj, err := kc.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, string(nsObj.Status.Phase)
	})
}
