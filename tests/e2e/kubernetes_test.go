package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chaindock/chaindock/internal/apis"
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
	ethereum := []byte("apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: eth}\nspec: {chain: ethereum, runtime: kubernetes, cluster: lab, validators: 3}\n")
	if _, err := srv.Client.CreateNetwork(ctx, ethereum); err == nil || !strings.Contains(err.Error(), "ethereum networks do not run on kubernetes yet") {
		t.Fatalf("create an ethereum network on kubernetes: %v", err)
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

	var n *apis.Network
	kc.WaitFor(t, 2*time.Minute, "4 nodes, each with its pod running", func(ctx context.Context) (bool, string) {
		var err error
		if n, err = c.GetNetwork(ctx, "k8s"); err != nil {
			return false, err.Error()
		}
		sts, err := kc.Client.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{LabelSelector: k8srt.LabelManagedBy + "=" + k8srt.ManagedBy})
		if err != nil {
			return false, err.Error()
		}
		pods, err := kc.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == "Running" {
				running++
			}
		}
		return len(sts.Items) == 4 && running == 4 && len(n.Status.Nodes) == 4,
			fmt.Sprintf("%d stateful sets, %d pods running; %s", len(sts.Items), running, framework.Describe(n))
	})
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
	v0, _ := framework.NodeByName(n, "validator-0")
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
	cl.ok("cluster", "remove", "lab")
	srv.Stop()
}
