// Package helm tests deploy/helm/chaindock: helm lint, helm template with
// the defaults and with values set, and the rendered manifests applied to
// a real kube-apiserver, where the server's pod is scheduled and its
// service account can do what the Kubernetes runtime does, and no more.
package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/chaindock/chaindock/internal/clusters"
	"github.com/chaindock/chaindock/internal/runtime"
	k8srt "github.com/chaindock/chaindock/internal/runtime/kubernetes"
	"github.com/chaindock/chaindock/internal/runtime/kubernetes/kubetest"
)

const namespace = "chaindock-system"

func chartDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../deploy/helm/chaindock")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func helmBin(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(kubetest.EnvBinDir)
	if dir == "" {
		t.Skipf("%s is not set: run scripts/kube-test-bins.sh, which installs helm, and set it to the directory it prints", kubetest.EnvBinDir)
	}
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s has no helm: run scripts/kube-test-bins.sh", dir)
	}
	return bin
}

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	// Keep helm's caches and config inside the test.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errors.New(strings.TrimSpace(errOut.String() + " " + err.Error()))
	}
	return out.String(), nil
}

// render runs helm template and decodes every object.
func render(t *testing.T, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "cd", chartDir(t), "--namespace", namespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decode the rendered chart: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, &u)
		}
	}
	return objs
}

func byKind(objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	return nil
}

func TestChartLints(t *testing.T) {
	if out, err := helm(t, "lint", "--strict", chartDir(t)); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
}

func TestChartRenders(t *testing.T) {
	objs := render(t)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
		if o.GetLabels()["app.kubernetes.io/instance"] != "cd" {
			t.Errorf("%s %s has no instance label", o.GetKind(), o.GetName())
		}
	}
	slices.Sort(kinds)
	want := []string{"ClusterRole", "ClusterRoleBinding", "Deployment", "PersistentVolumeClaim", "Service", "ServiceAccount"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	// Least privilege: no wildcard, nothing on cluster-scoped objects but
	// namespaces, no RBAC objects.
	rules, _, _ := unstructured.NestedSlice(byKind(objs, "ClusterRole").Object, "rules")
	for _, r := range rules {
		rule := r.(map[string]any)
		for _, field := range []string{"apiGroups", "resources", "verbs"} {
			for _, v := range rule[field].([]any) {
				if v == "*" {
					t.Errorf("rule %v grants * in %s", rule, field)
				}
			}
		}
		for _, res := range rule["resources"].([]any) {
			if slices.Contains([]string{"nodes", "clusterroles", "clusterrolebindings", "roles", "rolebindings", "persistentvolumes"}, res.(string)) {
				t.Errorf("rule %v reaches %s", rule, res)
			}
		}
	}
	// Exactly what the runtime needs, as cluster registration checks it.
	var granted []string
	for _, r := range rules {
		rule := r.(map[string]any)
		for _, g := range rule["apiGroups"].([]any) {
			for _, res := range rule["resources"].([]any) {
				for _, v := range rule["verbs"].([]any) {
					granted = append(granted, clusters.Permission{Group: g.(string), Resource: res.(string), Verb: v.(string)}.String())
				}
			}
		}
	}
	var needed []string
	for _, p := range clusters.Permissions {
		needed = append(needed, p.String())
	}
	slices.Sort(granted)
	slices.Sort(needed)
	if !slices.Equal(granted, needed) {
		t.Errorf("the chart's ClusterRole grants\n%v\nthe runtime needs\n%v", granted, needed)
	}
	dep := byKind(objs, "Deployment")
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	if !slices.Contains(args, "server") || !slices.Contains(args, "--data-dir=/var/lib/chaindock") || !slices.Contains(args, "--listen=0.0.0.0:7400") {
		t.Errorf("server args %v", args)
	}
	if image, _, _ := unstructured.NestedString(containers[0].(map[string]any), "image"); image != "chaindock/chaindock:0.1.0" {
		t.Errorf("image %s, want the chart's appVersion", image)
	}

	// Values: no RBAC, a storage class, a PostgreSQL store, an image tag.
	objs = render(t, "rbac.create=false", "persistence.storageClass=fast", "store.dsnSecret=pg", "image.tag=v9", "resources.limits.cpu=2")
	if byKind(objs, "ClusterRole") != nil || byKind(objs, "ClusterRoleBinding") != nil {
		t.Error("rbac.create=false still renders RBAC")
	}
	if sc, _, _ := unstructured.NestedString(byKind(objs, "PersistentVolumeClaim").Object, "spec", "storageClassName"); sc != "fast" {
		t.Errorf("storage class %q, want fast", sc)
	}
	containers, _, _ = unstructured.NestedSlice(byKind(objs, "Deployment").Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	env, _, _ := unstructured.NestedSlice(c, "env")
	if len(env) != 1 || env[0].(map[string]any)["name"] != "CHAINDOCK_STORE_DSN" {
		t.Errorf("env %v, want the store DSN from secret pg", env)
	}
	if image, _, _ := unstructured.NestedString(c, "image"); image != "chaindock/chaindock:v9" {
		t.Errorf("image %s", image)
	}
	// --set writes 2 as a number, which the API takes as a quantity.
	if cpu, _, _ := unstructured.NestedFieldNoCopy(c, "resources", "limits", "cpu"); fmt.Sprint(cpu) != "2" {
		t.Errorf("cpu limit %v", cpu)
	}
}

// TestChartAppliesToAnAPIServer applies the rendered chart to a real
// kube-apiserver: every object is accepted, the server's pod is scheduled
// with its volume bound, and its service account can run a node through
// the Kubernetes runtime, but not touch what the runtime does not need.
func TestChartAppliesToAnAPIServer(t *testing.T) {
	helmBin(t)
	c := kubetest.Start(t, 3)
	ctx := t.Context()
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	for _, o := range render(t, "persistence.storageClass="+kubetest.StorageClass, "persistence.size=1Gi") {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(schema.GroupKind{Group: gvk.Group, Kind: gvk.Kind}, gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == "namespace" {
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "helm-test", Force: true}); err != nil {
			t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	c.WaitFor(t, 2*time.Minute, "the server's pod to be scheduled and run", func(ctx context.Context) (bool, string) {
		pods, err := c.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=cd"})
		if err != nil || len(pods.Items) != 1 {
			return false, "no pod yet"
		}
		p := pods.Items[0]
		return p.Spec.NodeName == kubetest.FakeNode && p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
	})
	// The volume controller writes the claim's Bound phase in a request
	// of its own, after the binding that lets the pod run.
	c.WaitFor(t, time.Minute, "the data volume to be bound", func(ctx context.Context) (bool, string) {
		pvc, err := c.Client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, "cd-chaindock-data", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return pvc.Status.Phase == corev1.ClaimBound, string(pvc.Status.Phase)
	})

	// The service account runs a node through the runtime: its RBAC is
	// enough.
	sa := "system:serviceaccount:" + namespace + ":cd-chaindock"
	cfg := *c.Config
	cfg.Impersonate.UserName = sa
	cs, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := k8srt.New(cs, k8srt.Options{StorageClass: kubetest.StorageClass, PlatformNamespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	spec := runtime.NodeSpec{
		ID:      "rbac.validator-0",
		Labels:  map[string]string{k8srt.LabelNetwork: "rbac", k8srt.LabelNode: "validator-0"},
		Program: "cometbft", Image: "cometbft/cometbft:v0.38.26", Args: []string{"start"},
		Files: []runtime.File{{Path: "config/node_key.json", Data: []byte("{}"), Mode: 0o600, Secret: true}},
		Ports: map[string]int{"rpc": 26657, "p2p": 26656},
	}
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatalf("start a node as %s: %v", sa, err)
	}
	c.WaitFor(t, time.Minute, "the node to run", func(ctx context.Context) (bool, string) {
		st, err := rt.Inspect(ctx, spec.ID)
		if err != nil {
			return false, err.Error()
		}
		return st.State == runtime.StateRunning && st.Pod != nil && st.Pod.Phase == "Running", st.Message
	})
	if _, err := rt.List(ctx); err != nil {
		t.Fatalf("list as %s: %v", sa, err)
	}
	if err := rt.Stop(ctx, spec.ID); err != nil {
		t.Fatalf("stop as %s: %v", sa, err)
	}
	if err := rt.Remove(ctx, spec.ID); err != nil {
		t.Fatalf("remove as %s: %v", sa, err)
	}
	// And no more than that.
	for _, attr := range []authv1.ResourceAttributes{
		{Verb: "list", Resource: "nodes"},
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		{Verb: "create", Resource: "pods", Namespace: "rbac"},
		{Verb: "create", Group: "apps", Resource: "deployments", Namespace: "rbac"},
		{Verb: "delete", Resource: "persistentvolumes"},
	} {
		r, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{
			User: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}, ResourceAttributes: &attr,
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed {
			t.Errorf("the server's service account may %s %s/%s", attr.Verb, attr.Group, attr.Resource)
		}
	}
}
