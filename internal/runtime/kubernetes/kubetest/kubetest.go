// Package kubetest runs a real Kubernetes control plane for tests: etcd and
// kube-apiserver (through controller-runtime's envtest), the controller
// manager and the scheduler, so that a StatefulSet gets a pod and the pod a
// node, and kwok as the kubelet of one fake node, so that pods report
// Running. Containers do not run: kwok only plays their status.
//
// The binaries come from scripts/kube-test-bins.sh, which prints the
// directory to put in CHAINDOCK_KUBE_BIN_DIR.
package kubetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// EnvBinDir names the directory holding the control plane's binaries.
const EnvBinDir = "CHAINDOCK_KUBE_BIN_DIR"

// StorageClass is the cluster's default class, whose volumes it binds at
// once from the PersistentVolumes it is started with.
const StorageClass = "chaindock-test"

// FakeNode is the node kwok plays.
const FakeNode = "kwok-node-0"

// T is what the control plane needs of its caller: a test's *testing.T,
// or a benchmark's stand-in.
type T interface {
	Helper()
	Context() context.Context
	Cleanup(func())
	TempDir() string
	Failed() bool
	Logf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Cluster is a running control plane.
type Cluster struct {
	Config     *rest.Config
	Client     kubernetes.Interface
	Kubeconfig string // path of an admin kubeconfig
	// Logs holds each component's output, shown when a test fails.
	Logs string

	env     *envtest.Environment
	volumes int // PersistentVolumes made so far
	nodes   int // fake nodes made so far
}

// UserKubeconfig is a kubeconfig of a new user of the cluster, in groups.
func (c *Cluster) UserKubeconfig(t T, name string, groups ...string) []byte {
	t.Helper()
	u, err := c.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

// Start runs a control plane for the test and stops it when the test ends;
// it skips the test when the binaries are missing. volumes is how many
// 1Gi PersistentVolumes of StorageClass to offer.
func Start(t T, volumes int) *Cluster {
	t.Helper()
	dir := os.Getenv(EnvBinDir)
	if dir == "" {
		t.Skipf("%s is not set: run scripts/kube-test-bins.sh, which builds kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok, and set it to the directory it prints", EnvBinDir)
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Skipf("%s has no %s: run scripts/kube-test-bins.sh", dir, b)
		}
	}
	// envtest logs through controller-runtime, which warns with a stack
	// trace when no logger is set; its lines say nothing a test needs.
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{BinaryAssetsDirectory: dir, ControlPlaneStopTimeout: 30 * time.Second}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stop kube-apiserver and etcd: %v", err)
		}
	})
	admin, err := env.AddUser(envtest.User{Name: "chaindock-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	c := &Cluster{Config: admin.Config(), Kubeconfig: filepath.Join(work, "kubeconfig"), Logs: filepath.Join(work, "logs"), env: env}
	if err := os.WriteFile(c.Kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.Logs, 0o755); err != nil {
		t.Fatal(err)
	}
	c.Client, err = kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// No component serves a port of its own (--secure-port=0, no kwok
	// server): a port picked free here could be taken, before the
	// component binds it, by a node of a test running beside this one.
	c.run(t, dir, "kube-controller-manager",
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--controllers=*", "--use-service-account-credentials=false",
		// Only what the tests need runs fast: no node life-cycle
		// eviction of kwok's pods.
		"--concurrent-statefulset-syncs=5", "--node-monitor-grace-period=1h")
	c.run(t, dir, "kube-scheduler",
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port=0")
	c.run(t, dir, "kwok",
		"--kubeconfig", c.Kubeconfig, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		// Loopback addresses for pods and nodes: an endpoint may not
		// carry one, so nothing a test starts ever dials a fake pod
		// beyond this machine.
		"--cidr=127.10.0.0/16", "--node-ip=127.10.0.1", "--node-lease-duration-seconds=40")
	c.prepare(t, volumes)
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"kube-controller-manager", "kube-scheduler", "kwok"} {
				b, _ := os.ReadFile(filepath.Join(c.Logs, name+".log"))
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("%s log (end):\n%s", name, b)
			}
		}
	})
	return c
}

// run starts a component until the test ends.
func (c *Cluster) run(t T, dir, name string, args ...string) {
	t.Helper()
	log, err := os.Create(filepath.Join(c.Logs, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, name), args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
	})
}

// prepare makes the fake node, the storage class and its volumes, and
// waits for the node to be Ready.
func (c *Cluster) prepare(t T, volumes int) {
	t.Helper()
	ctx := t.Context()
	immediate := storagev1.VolumeBindingImmediate
	// The default class, so that claims that name none bind too.
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: StorageClass,
		Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner: "kubernetes.io/no-provisioner", VolumeBindingMode: &immediate}
	if _, err := c.Client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.AddVolumes(t, volumes)
	c.AddNodes(t, 1)
}

// AddNodes makes n more fake nodes of 64 CPUs, 256Gi and 110 pods each
// (the first is FakeNode), and waits for kwok to make them Ready.
func (c *Cluster) AddNodes(t T, n int) {
	t.Helper()
	ctx := t.Context()
	var names []string
	for range n {
		name := "kwok-node-" + strconv.Itoa(c.nodes)
		c.nodes++
		names = append(names, name)
		capacity := corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110"),
		}
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": name},
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			},
			Status: corev1.NodeStatus{Allocatable: capacity, Capacity: capacity},
		}
		if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create node: %v", err)
		}
	}
	for _, name := range names {
		c.WaitFor(t, 2*time.Minute, "the kwok node "+name+" to be Ready", func(ctx context.Context) (bool, string) {
			n, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return true, ""
				}
			}
			return false, fmt.Sprintf("conditions %v", n.Status.Conditions)
		})
	}
}

// AddVolumes offers n more 1Gi PersistentVolumes of StorageClass. Offer
// them shortly before they are claimed: the volume binder walks every
// free volume for each claim.
func (c *Cluster) AddVolumes(t T, n int) {
	t.Helper()
	ctx := t.Context()
	for range n {
		i := c.volumes
		c.volumes++
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pv-" + strconv.Itoa(i)},
			Spec: corev1.PersistentVolumeSpec{
				StorageClassName: StorageClass,
				Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				// A released volume stays released: offer one per claim.
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
					Path: filepath.Join(os.TempDir(), "chaindock-kubetest-pv", strconv.Itoa(i)),
				}},
			},
		}
		if _, err := c.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// WaitFor polls cond every 200 ms until it holds, or fails the test with
// what it last said.
func (c *Cluster) WaitFor(t T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	last := ""
	for {
		ok, msg := cond(ctx)
		if ok {
			return
		}
		last = msg
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
