package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/runtime/kubernetes/kubetest"
)

func nodeSpec(network, node string) runtime.NodeSpec {
	return runtime.NodeSpec{
		ID:      network + "." + node,
		Labels:  map[string]string{LabelNetwork: network, LabelNode: node, "chaindock.io/network-uid": "uid-1"},
		Program: "cometbft",
		Image:   "cometbft/cometbft:v0.38.26",
		Args:    []string{"start", "--home", "."},
		Env:     map[string]string{"GOMAXPROCS": "2"},
		Files: []runtime.File{
			{Path: "config/config.toml", Data: []byte("moniker = \"" + node + "\"\n"), Mode: 0o600},
			{Path: "config/priv_validator_key.json", Data: []byte(`{"key":"secret"}`), Mode: 0o600, Secret: true},
			{Path: "data/priv_validator_state.json", Data: []byte(`{"height":"0"}`), Mode: 0o600, KeepExisting: true},
		},
		Ports:     map[string]int{"p2p": 26656, "rpc": 26657, "abci": 26658},
		Resources: runtime.Resources{CPU: "250m", Memory: "256Mi"},
		Sidecars: []runtime.Sidecar{{Name: "app", Program: "chaindock-app", Image: "chaindock/chaindock-app:dev",
			Args: []string{"--addr", "tcp://127.0.0.1:26658"}, ReadyAddress: "127.0.0.1:26658"}},
	}
}

func newRuntime(t *testing.T, c *kubetest.Cluster) *Runtime {
	t.Helper()
	rt, err := New(c.Client, Options{StorageClass: kubetest.StorageClass, PlatformNamespace: "chaindock-system", NamespacePrefix: "cd-"})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// objects counts a node's objects of each kind in its namespace.
func objects(ctx context.Context, t *testing.T, c *kubetest.Cluster, ns, id string) map[string]int {
	t.Helper()
	sel := metav1.ListOptions{LabelSelector: LabelNodeID + "=" + id}
	out := map[string]int{}
	sts, err := c.Client.AppsV1().StatefulSets(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	out["StatefulSet"] = len(sts.Items)
	svc, _ := c.Client.CoreV1().Services(ns).List(ctx, sel)
	out["Service"] = len(svc.Items)
	cm, _ := c.Client.CoreV1().ConfigMaps(ns).List(ctx, sel)
	out["ConfigMap"] = len(cm.Items)
	sec, _ := c.Client.CoreV1().Secrets(ns).List(ctx, sel)
	out["Secret"] = len(sec.Items)
	pvc, _ := c.Client.CoreV1().PersistentVolumeClaims(ns).List(ctx, sel)
	out["PersistentVolumeClaim"] = len(pvc.Items)
	return out
}

func waitRunning(t *testing.T, c *kubetest.Cluster, rt *Runtime, id string) runtime.Status {
	t.Helper()
	var st runtime.Status
	c.WaitFor(t, 2*time.Minute, id+"'s pod to run and be ready", func(ctx context.Context) (bool, string) {
		var err error
		st, err = rt.Inspect(ctx, id)
		if err != nil {
			return false, err.Error()
		}
		return st.State == runtime.StateRunning && st.Pod != nil && st.Pod.Phase == "Running" && st.Pod.Ready && st.Pod.PodIP != "",
			st.Message + " " + describePod(st.Pod)
	})
	return st
}

func describePod(p *runtime.PodStatus) string {
	if p == nil {
		return "no pod"
	}
	return p.Name + " " + p.Phase + " node=" + p.Node + " ip=" + p.PodIP
}

// TestANodeOnARealAPIServer applies a node to a real kube-apiserver with a
// controller manager, a scheduler and kwok as its kubelet, and checks
// every object, the pod's status, a restart-free reapply, a spec change,
// a stop, an interrupted apply, and a removal that leaves nothing of the
// node and nothing else touched.
func TestANodeOnARealAPIServer(t *testing.T) {
	c := kubetest.Start(t, 4)
	ctx := t.Context()
	rt := newRuntime(t, c)
	spec := nodeSpec("net1", "validator-0")
	ns := "cd-net1"

	// Somebody else's namespace and objects, which must stay.
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cd-theirs"}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "validator-0-files", Namespace: "cd-theirs"}}
	if _, err := c.Client.CoreV1().ConfigMaps("cd-theirs").Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Start(ctx, nodeSpec("theirs", "validator-0")); err == nil || !strings.Contains(err.Error(), "namespace cd-theirs exists and is not this ChainDock's") {
		t.Fatalf("start in a namespace ChainDock did not make: %v", err)
	}

	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	// The volume claim comes from the stateful set's controller, with
	// the pod; the rest at once.
	got := objects(ctx, t, c, ns, spec.ID)
	for kind, n := range got {
		if n != 1 && kind != "PersistentVolumeClaim" {
			t.Errorf("%d %s objects of the node, want 1: %v", n, kind, got)
		}
	}
	nsObj, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || nsObj.Labels[LabelManagedBy] != ManagedBy || nsObj.Labels[LabelNetwork] != "net1" {
		t.Fatalf("namespace: %v %v", nsObj.Labels, err)
	}
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "validator-0-files", metav1.GetOptions{})
	if err != nil || len(cm.BinaryData) != 2 || string(cm.BinaryData["file-0"]) != "moniker = \"validator-0\"\n" {
		t.Fatalf("config map: %v %v", cm.BinaryData, err)
	}
	sec, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "validator-0-keys", metav1.GetOptions{})
	if err != nil || len(sec.Data) != 1 || string(sec.Data["file-1"]) != `{"key":"secret"}` {
		t.Fatalf("secret: %v %v", sec.Data, err)
	}
	svc, err := c.Client.CoreV1().Services(ns).Get(ctx, "validator-0", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != corev1.ClusterIPNone || len(svc.Spec.Ports) != 3 || !svc.Spec.PublishNotReadyAddresses {
		t.Fatalf("service: %+v %v", svc.Spec, err)
	}
	sts, err := c.Client.AppsV1().StatefulSets(ns).Get(ctx, "validator-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := sts.Spec.Template.Spec
	node := pod.Containers[0]
	if *sts.Spec.Replicas != 1 || sts.Spec.ServiceName != "validator-0" || node.Name != "node" ||
		!slices.Equal(node.Command, []string{"cometbft"}) || !slices.Equal(node.Args, spec.Args) || node.WorkingDir != HomeDir ||
		node.ReadinessProbe == nil || node.ReadinessProbe.TCPSocket.Port.IntValue() != 26657 || node.LivenessProbe == nil ||
		node.Resources.Limits.Cpu().String() != "250m" || node.Resources.Requests.Memory().String() != "256Mi" {
		t.Fatalf("node container: %+v", node)
	}
	if len(pod.InitContainers) != 2 || pod.InitContainers[0].Name != "files" || pod.InitContainers[1].Name != "app" ||
		pod.InitContainers[1].RestartPolicy == nil || pod.InitContainers[1].StartupProbe == nil {
		t.Fatalf("init containers (files, then the app as a native sidecar): %+v", pod.InitContainers)
	}
	script := pod.InitContainers[0].Command[2]
	for _, want := range []string{
		"cp '/chaindock/files/file-0' '" + HomeDir + "/config/config.toml'",
		"cp '/chaindock/keys/file-1' '" + HomeDir + "/config/priv_validator_key.json'",
		"[ -e '" + HomeDir + "/data/priv_validator_state.json' ] || cp",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the files script lacks %q:\n%s", want, script)
		}
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 || *sts.Spec.VolumeClaimTemplates[0].Spec.StorageClassName != kubetest.StorageClass {
		t.Fatalf("volume claim templates: %+v", sts.Spec.VolumeClaimTemplates)
	}
	managers := []string{}
	for _, mf := range sts.ManagedFields {
		if mf.Operation == metav1.ManagedFieldsOperationApply {
			managers = append(managers, mf.Manager)
		}
	}
	if !slices.Equal(managers, []string{FieldManager}) {
		t.Errorf("applied by %v, want only %s", managers, FieldManager)
	}
	policy, err := c.Client.NetworkingV1().NetworkPolicies(ns).Get(ctx, "chaindock", metav1.GetOptions{})
	if err != nil || len(policy.Spec.Ingress) != 1 || len(policy.Spec.Ingress[0].From) != 2 ||
		policy.Spec.Ingress[0].From[1].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "chaindock-system" {
		t.Fatalf("network policy: %+v %v", policy.Spec, err)
	}
	if q, err := c.Client.CoreV1().ResourceQuotas(ns).Get(ctx, "chaindock", metav1.GetOptions{}); err != nil || q.Spec.Hard.Cpu().IsZero() && len(q.Spec.Hard) == 0 {
		t.Fatalf("resource quota: %v", err)
	}
	if _, err := c.Client.CoreV1().LimitRanges(ns).Get(ctx, "chaindock", metav1.GetOptions{}); err != nil {
		t.Fatalf("limit range: %v", err)
	}

	st := waitRunning(t, c, rt, spec.ID)
	pvcs, err := c.Client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelNodeID + "=" + spec.ID})
	if err != nil || len(pvcs.Items) != 1 || pvcs.Items[0].Status.Phase != corev1.ClaimBound {
		t.Fatalf("the node's volume claim: %+v %v", pvcs, err)
	}
	if st.Pod.Node != kubetest.FakeNode || st.Labels[LabelNode] != "validator-0" || st.SpecHash == "" {
		t.Fatalf("status: %+v pod %+v", st, st.Pod)
	}

	// The same spec again changes nothing; another restarts the pod
	// with it.
	gen := sts.Generation
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Client.AppsV1().StatefulSets(ns).Get(ctx, "validator-0", metav1.GetOptions{}); again.Generation != gen {
		t.Errorf("reapplying the same spec moved the generation from %d to %d", gen, again.Generation)
	}
	changed := spec
	changed.Args = append(slices.Clone(spec.Args), "--log_level", "debug")
	if _, err := rt.Start(ctx, changed); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, time.Minute, "the pod to run the new spec", func(ctx context.Context) (bool, string) {
		st, err := rt.Inspect(ctx, spec.ID)
		return err == nil && st.SpecHash == specHash(changed) && st.State == runtime.StateRunning && st.Pod != nil && st.Pod.Ready,
			st.SpecHash
	})

	// Stop keeps the volume; Start brings the pod back.
	if err := rt.Stop(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := rt.Inspect(ctx, spec.ID); err != nil || st.State != runtime.StateExited {
		t.Fatalf("stopped node: %+v %v", st, err)
	}
	if got := objects(ctx, t, c, ns, spec.ID)["PersistentVolumeClaim"]; got != 1 {
		t.Fatalf("%d volume claims after a stop, want 1", got)
	}
	if _, err := rt.Start(ctx, changed); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, rt, spec.ID)

	// A second node, whose apply was cut off after its config map: the
	// next Start completes it, with no object twice.
	half := nodeSpec("net1", "validator-1")
	p, _ := rt.placeOf(half)
	files, _, _ := filesOf(half)
	if err := rt.ensureNamespace(ctx, p.namespace, "net1"); err != nil {
		t.Fatal(err)
	}
	cmAC := rt.configMap(half, p, files)
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Apply(ctx, cmAC, applyOpts); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Start(ctx, half); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, rt, half.ID)
	for kind, n := range objects(ctx, t, c, ns, half.ID) {
		if n != 1 {
			t.Errorf("after an interrupted apply: %d %s objects, want 1", n, kind)
		}
	}
	list, err := rt.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}

	// Removal: the first node's objects go, the namespace stays for the
	// second; with the second, the namespace goes.
	if err := rt.Remove(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, time.Minute, "validator-0's objects to go", func(ctx context.Context) (bool, string) {
		left := objects(ctx, t, c, ns, spec.ID)
		for _, n := range left {
			if n > 0 {
				return false, fmt.Sprint("left: ", left)
			}
		}
		return true, ""
	})
	if _, err := rt.Inspect(ctx, spec.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("inspect a removed node: %v", err)
	}
	if err := rt.Remove(ctx, half.ID); err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(ctx, half.ID); err != nil {
		t.Fatalf("removing a removed node: %v", err)
	}
	c.WaitFor(t, 2*time.Minute, "the network's namespace to go", func(ctx context.Context) (bool, string) {
		n, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, string(n.Status.Phase)
	})
	if _, err := c.Client.CoreV1().ConfigMaps("cd-theirs").Get(ctx, "validator-0-files", metav1.GetOptions{}); err != nil {
		t.Fatalf("somebody else's config map: %v", err)
	}
}

func TestOptionsNameWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{StorageSize: "lots"}, `storage size "lots"`},
		{Options{QuotaCPU: "-x"}, `quota cpu "-x"`},
		{Options{NamespacePrefix: "Chain_"}, `namespace prefix "Chain_"`},
	} {
		if _, err := New(nil, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opts, err, c.want)
		}
	}
	rt, _ := New(nil, Options{})
	bad := nodeSpec("net1", "validator-0")
	delete(bad.Labels, LabelNode)
	if _, err := rt.placeOf(bad); err == nil || !strings.Contains(err.Error(), "labels name no") {
		t.Errorf("a spec without a node label: %v", err)
	}
	long := nodeSpec(strings.Repeat("n", 70), "validator-0")
	if _, err := rt.placeOf(long); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("a network name too long for a namespace: %v", err)
	}
}

// TestStatusSaysWhyAPodDoesNotRun checks that the cluster's own word
// reaches a node's status: a node asking more CPU than any node has is not
// scheduled, and its status says so.
func TestStatusSaysWhyAPodDoesNotRun(t *testing.T) {
	c := kubetest.Start(t, 4)
	ctx := t.Context()
	rt, err := New(c.Client, Options{QuotaCPU: "1000", QuotaMemory: "1Ti"})
	if err != nil {
		t.Fatal(err)
	}
	spec := nodeSpec("starved", "validator-0")
	spec.Sidecars = nil
	spec.Resources = runtime.Resources{CPU: "80", Memory: "1Gi"}
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, time.Minute, "the status to say the pod is not scheduled", func(ctx context.Context) (bool, string) {
		st, err := rt.Inspect(ctx, spec.ID)
		if err != nil {
			return false, err.Error()
		}
		return st.State == runtime.StateRunning && st.Pod != nil && st.Pod.Phase == "Pending" && st.Waiting == st.Message &&
			strings.Contains(st.Message, "Unschedulable") && strings.Contains(st.Message, "Insufficient cpu"), st.Message
	})
}

// labClusters is one registered cluster, "lab".
type labClusters struct{ kubeconfig []byte }

func (l labClusters) ClusterNames(context.Context) ([]string, error) { return []string{"lab"}, nil }
func (l labClusters) Kubeconfig(_ context.Context, name string) ([]byte, string, error) {
	if name != "lab" {
		return nil, "", fmt.Errorf("no cluster %q", name)
	}
	return l.kubeconfig, "", nil
}

// counter sums a counter of the collector's, over the series whose labels
// include match.
func counter(t *testing.T, c prometheus.Collector, name string, match map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for k, v := range match {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestWatchesCostNothingAtRest checks that the runtime of registered
// clusters reads nodes from its watches: once two nodes run, hundreds of
// reads send the cluster no request; a pod deleted behind the runtime's
// back shows in the status with no read asked for; a request for a node's
// Service name, which does not resolve outside the cluster, goes through
// the API server's service proxy; and a cluster that cannot be reached or
// watched is an error within seconds, not a hang.
func TestWatchesCostNothingAtRest(t *testing.T) {
	c := kubetest.Start(t, 4)
	ctx := t.Context()
	kubeconfig, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewClusters(labClusters{kubeconfig}, Options{StorageClass: kubetest.StorageClass, NamespacePrefix: "cd-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	requests := func() float64 {
		return counter(t, rt, "chaindock_kube_api_requests_total", map[string]string{"cluster": "lab"})
	}
	a, b := nodeSpec("rest", "validator-0"), nodeSpec("rest", "validator-1")
	for _, s := range []runtime.NodeSpec{a, b} {
		s.Labels[LabelCluster] = "lab"
		if _, err := rt.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// A list and a watch each of stateful sets and pods; the namespace,
	// quota, limits and policy once, with a look for the namespace; four
	// objects a node.
	if n := requests(); n != 4+5+2*4 {
		t.Errorf("two nodes started with %v requests, want %d", n, 4+5+2*4)
	}
	var first runtime.Status
	for _, id := range []string{a.ID, b.ID} {
		c.WaitFor(t, 2*time.Minute, id+"'s pod to run and be ready", func(ctx context.Context) (bool, string) {
			st, err := rt.Inspect(ctx, id)
			if err != nil {
				return false, err.Error()
			}
			if id == a.ID {
				first = st
			}
			return st.Pod != nil && st.Pod.Phase == "Running" && st.Pod.Ready, st.Message + " " + describePod(st.Pod)
		})
	}

	before := requests()
	for range 300 {
		for _, id := range []string{a.ID, b.ID} {
			st, err := rt.Inspect(ctx, id)
			if err != nil || st.Pod == nil || !st.Pod.Ready {
				t.Fatalf("inspect %s: %+v %v", id, st, err)
			}
		}
		if list, err := rt.List(ctx); err != nil || len(list) != 2 {
			t.Fatalf("list: %d nodes, %v", len(list), err)
		}
	}
	if n := requests() - before; n != 0 {
		t.Errorf("900 reads of 2 running nodes sent %v requests, want 0", n)
	}

	// A pod replaced behind the runtime's back: the watch brings the new
	// one.
	if err := c.Client.CoreV1().Pods("cd-rest").Delete(ctx, "validator-0-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(t, time.Minute, "the replaced pod to show", func(ctx context.Context) (bool, string) {
		st, err := rt.Inspect(ctx, a.ID)
		if err != nil {
			return false, err.Error()
		}
		return st.Pod != nil && st.Pod.UID != first.Pod.UID && st.Pod.Ready, describePod(st.Pod)
	})

	// A node's RPC by its Service's name: the API server's proxy for the
	// service answers (no endpoint: kwok's pods have loopback addresses,
	// which no endpoint may carry, so nothing is dialed).
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://validator-1.cd-rest.svc:26657/status?x=1", nil)
	resp, ok, err := rt.Route(req)
	if !ok || err != nil {
		t.Fatalf("route to validator-1: ok %v, %v", ok, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `no endpoints available for service \"validator-1\"`) {
		t.Errorf("through the service proxy: %s %s", resp.Status, body)
	}
	if n := counter(t, rt, "chaindock_kube_proxied_requests_total", map[string]string{"cluster": "lab"}); n != 1 {
		t.Errorf("%v proxied requests counted, want 1", n)
	}
	for _, host := range []string{"validator-9.cd-rest.svc:26657", "127.0.0.1:26657", "validator-1.cd-rest.svc.cluster.local:26657"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/status", nil)
		if _, ok, err := rt.Route(req); ok || err != nil {
			t.Errorf("route to %s: ok %v, %v; want it left to the usual dial", host, ok, err)
		}
	}

	// A user with no rights, and a server that is not there.
	forbidden, err := clientcmd.RESTConfigFromKubeConfig(c.UserKubeconfig(t, "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	dead := rest.CopyConfig(c.Config)
	dead.Host = "https://127.0.0.1:" + closedPort(t)
	for _, tc := range []struct {
		cfg  *rest.Config
		want string
	}{{forbidden, "forbidden"}, {dead, "connection refused"}} {
		cs, err := kubernetes.NewForConfig(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := New(cs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = rt.Inspect(ctx, a.ID)
		if err == nil || !strings.Contains(err.Error(), "cannot watch") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("inspect on %s: %v, want an error saying it cannot watch: %s", tc.cfg.Host, err, tc.want)
		}
		if took := time.Since(start); took > SyncTimeout+time.Second {
			t.Errorf("inspect on %s took %s", tc.cfg.Host, took)
		}
		rt.Close()
	}
}

// closedPort is a port on 127.0.0.1 nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	_ = l.Close()
	return port
}
