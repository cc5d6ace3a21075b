package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/internal/clusters"
	"github.com/chaindock/chaindock/internal/runtime/kubernetes/kubetest"
	"github.com/chaindock/chaindock/tests/framework"
)

// kubePortRange holds the ports the controller hands to pods' nodes:
// two a node, for the scale run's 800 nodes.
const kubePortRange = "34000-35999"

// scaleNetworks is how many 4-validator networks the scale run applies.
const scaleNetworks = 200

// benchT stands in for a test's *testing.T around the control plane: a
// failure ends the part with an error.
type benchT struct {
	ctx      context.Context
	cleanups []func()
	tmp      []string
}

type benchStop struct{ msg string }

func (b *benchT) Helper()                  {}
func (b *benchT) Context() context.Context { return b.ctx }
func (b *benchT) Cleanup(f func())         { b.cleanups = append(b.cleanups, f) }
func (b *benchT) Failed() bool             { return false }
func (b *benchT) Logf(string, ...any)      {}
func (b *benchT) Fatal(args ...any)        { panic(benchStop{fmt.Sprint(args...)}) }
func (b *benchT) Fatalf(f string, a ...any) {
	panic(benchStop{fmt.Sprintf(f, a...)})
}
func (b *benchT) Skipf(f string, a ...any) { panic(benchStop{fmt.Sprintf(f, a...)}) }
func (b *benchT) TempDir() string {
	d, err := os.MkdirTemp("", "chaindock-bench-kube")
	if err != nil {
		b.Fatal(err)
	}
	b.tmp = append(b.tmp, d)
	return d
}

func (b *benchT) close() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	for _, d := range b.tmp {
		_ = os.RemoveAll(d)
	}
}

// benchKubernetes measures, against a real API server with kwok as its
// kubelet: registering a cluster (its reach and every permission checked),
// deploying a 4-validator CometBFT network onto it until every node's pod
// is Running and Ready in the network's status, and deleting it until its
// namespace is gone.
func benchKubernetes(ctx context.Context, binDir string) (err error) {
	bt := &benchT{ctx: ctx}
	defer bt.close()
	defer func() {
		if r := recover(); r != nil {
			s, ok := r.(benchStop)
			if !ok {
				panic(r)
			}
			err = errors.New(s.msg)
		}
	}()
	kc := kubetest.Start(bt, 4*runs)

	srv, _, stop, err := benchServer(ctx, binDir, "kube", "--port-range", kubePortRange, "--rate-limit", "0", "--log-level", "warn", "--probe-interval", "500ms")
	if err != nil {
		return err
	}
	defer stop()
	c := srv.Client

	kubeconfig, err := os.ReadFile(kc.Kubeconfig)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(api.ClusterRequest{Name: "lab", Kubeconfig: string(kubeconfig)})
	start := time.Now()
	var cl api.Cluster
	if err := c.Do(ctx, http.MethodPost, "/api/v1/clusters", body, "application/json", &cl); err != nil {
		return err
	}
	took := round(time.Since(start).Seconds())
	if cl.Status.Phase != "Ready" {
		return fmt.Errorf("cluster: %+v", cl.Status)
	}
	emit(figure{Metric: "k8s_cluster_register_s", Value: took, Unit: "s", Samples: []float64{took},
		Note: fmt.Sprintf("POST /api/v1/clusters: the kubeconfig checked and sealed, the server's version and %d permissions asked by SelfSubjectAccessReview", len(clusters.Permissions))})

	requests := func() float64 {
		v, err := framework.MetricSum(ctx, c, "chaindock_kube_api_requests_total", map[string]string{"cluster": "lab"})
		if err != nil {
			panic(benchStop{err.Error()})
		}
		return v
	}
	var deploys, deletes, perDeploy []float64
	for i := range runs {
		name := fmt.Sprintf("bench-k8s-%d", i)
		spec := fmt.Appendf(nil, "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: %s}\nspec: {chain: cometbft, runtime: kubernetes, cluster: lab, validators: 4}\n", name)
		start := time.Now()
		before := requests()
		if _, err := c.CreateNetwork(ctx, spec); err != nil {
			return err
		}
		for {
			n, err := c.GetNetwork(ctx, name)
			if err != nil {
				return err
			}
			ready := 0
			for _, s := range n.Status.Nodes {
				if s.Pod != nil && s.Pod.Phase == "Running" && s.Pod.Ready {
					ready++
				}
			}
			if ready == 4 {
				break
			}
			if time.Since(start) > 2*time.Minute {
				return fmt.Errorf("deploy %s: %d of 4 pods ready after 2m: %s", name, ready, framework.Describe(n))
			}
			time.Sleep(20 * time.Millisecond)
		}
		deploys = append(deploys, round(time.Since(start).Seconds()))
		perDeploy = append(perDeploy, requests()-before)

		start = time.Now()
		if _, err := c.DeleteNetwork(ctx, name); err != nil {
			return err
		}
		if err := framework.WaitGone(ctx, c, name, time.Minute); err != nil {
			return err
		}
		for {
			_, err := kc.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Since(start) > 2*time.Minute {
				return fmt.Errorf("delete %s: the namespace is still there after 2m: %w", name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		deletes = append(deletes, round(time.Since(start).Seconds()))
	}
	emit(figure{Metric: "k8s_deploy_4v_s", Value: median(deploys), Unit: "s", Samples: deploys,
		Note: "create a 4-validator CometBFT network on a registered cluster until the status shows every node's pod Running and Ready (kube-apiserver v1.34.2 with kwok as the kubelet: no container runs)"})
	emit(figure{Metric: "k8s_deploy_4v_requests", Value: median(perDeploy), Unit: "requests", Samples: perDeploy,
		Note: "requests the server sent the cluster for one such deploy (chaindock_kube_api_requests_total); the first run also opens the watches"})
	emit(figure{Metric: "k8s_delete_4v_s", Value: median(deletes), Unit: "s", Samples: deletes,
		Note: "delete it until the network is gone and its namespace with every object in it"})
	return benchKubernetesScale(ctx, bt, kc, c, requests)
}

// benchKubernetesScale applies scaleNetworks 4-validator networks at once
// and waits until every one of their pods is Running and Ready in the
// statuses; then counts the requests the server sends the cluster in a
// minute while nothing changes.
func benchKubernetesScale(ctx context.Context, bt *benchT, kc *kubetest.Cluster, c *client.Client, requests func() float64) error {
	pods := scaleNetworks * 4
	// 110 pods a fake node, and the volumes just before they are claimed.
	kc.AddNodes(bt, pods/100)
	kc.AddVolumes(bt, pods)
	start := time.Now()
	before := requests()
	for i := range scaleNetworks {
		spec := fmt.Appendf(nil, "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: scale-%d}\nspec: {chain: cometbft, runtime: kubernetes, cluster: lab, validators: 4}\n", i)
		if _, err := c.CreateNetwork(ctx, spec); err != nil {
			return err
		}
	}
	ready := 0
	for {
		list, err := c.ListNetworks(ctx)
		if err != nil {
			return err
		}
		ready = 0
		for _, n := range list {
			for _, s := range n.Status.Nodes {
				if s.Pod != nil && s.Pod.Phase == "Running" && s.Pod.Ready {
					ready++
				}
			}
		}
		if ready == pods {
			break
		}
		if time.Since(start) > 20*time.Minute {
			return fmt.Errorf("scale run: %d of %d pods Running and Ready after 20m", ready, pods)
		}
		time.Sleep(time.Second)
	}
	took := round(time.Since(start).Seconds())
	applied := requests() - before
	emit(figure{Metric: "k8s_scale_200x4_s", Value: took, Unit: "s", Samples: []float64{took},
		Note: fmt.Sprintf("%d CometBFT networks of 4 validators applied at once, until all %d pods are Running and Ready in the statuses (kwok kubelet, 8 fake nodes); %.0f requests to the cluster", scaleNetworks, pods, applied)})

	// At rest: the networks never reach Running (no container runs, so
	// no RPC answers), so the controller keeps probing them; reading
	// their pods must still cost the cluster nothing.
	before = requests()
	time.Sleep(time.Minute)
	atRest := requests() - before
	emit(figure{Metric: "k8s_requests_per_min_at_rest", Value: atRest, Unit: "requests", Samples: []float64{atRest},
		Note: fmt.Sprintf("requests to the cluster in the minute after the scale run, with %d networks reconciled and nothing changing (reads come from watches)", scaleNetworks)})
	return nil
}
