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
	"github.com/chaindock/chaindock/internal/clusters"
	"github.com/chaindock/chaindock/internal/runtime/kubernetes/kubetest"
	"github.com/chaindock/chaindock/tests/framework"
)

// kubePortRange holds the ports the controller hands to pods' nodes.
const kubePortRange = "34300-34399"

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

	var deploys, deletes []float64
	for i := range runs {
		name := fmt.Sprintf("bench-k8s-%d", i)
		spec := fmt.Appendf(nil, "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: %s}\nspec: {chain: cometbft, runtime: kubernetes, cluster: lab, validators: 4}\n", name)
		start := time.Now()
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
				return fmt.Errorf("delete %s: the namespace is still there after 2m: %v", name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		deletes = append(deletes, round(time.Since(start).Seconds()))
	}
	emit(figure{Metric: "k8s_deploy_4v_s", Value: median(deploys), Unit: "s", Samples: deploys,
		Note: "create a 4-validator CometBFT network on a registered cluster until the status shows every node's pod Running and Ready (kube-apiserver v1.34.2 with kwok as the kubelet: no container runs)"})
	emit(figure{Metric: "k8s_delete_4v_s", Value: median(deletes), Unit: "s", Samples: deletes,
		Note: "delete it until the network is gone and its namespace with every object in it"})
	return nil
}
