package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/chaindock/chaindock/internal/clusters"
	"github.com/chaindock/chaindock/internal/runtime"
)

// LabelCluster names the registered cluster a node runs on.
const LabelCluster = "chaindock.io/cluster"

func init() {
	runtime.Register(Name, func(cfg runtime.Config) (runtime.Runtime, error) {
		if cfg.Clusters == nil {
			return nil, errors.New("the kubernetes runtime needs the registered clusters")
		}
		return NewClusters(cfg.Clusters, Options{})
	})
}

// Clusters runs each node on the registered cluster its labels name. It
// remembers where each node is; after a restart, it finds a node by asking
// every cluster.
type Clusters struct {
	src  runtime.ClusterSource
	opts Options
	// requests counts the requests sent to each cluster, by method
	// (WATCH for the start of a watch).
	requests *prometheus.CounterVec
	// proxied counts the requests sent to nodes through each cluster's
	// service proxy.
	proxied  *prometheus.CounterVec
	resolver resolver

	mu    sync.Mutex
	rts   map[string]*Runtime // by cluster
	where map[string]string   // node ID → cluster
}

var (
	_ runtime.Runtime      = (*Clusters)(nil)
	_ runtime.LogReader    = (*Clusters)(nil)
	_ runtime.Addresser    = (*Clusters)(nil)
	_ prometheus.Collector = (*Clusters)(nil)
	_ io.Closer            = (*Clusters)(nil)
)

// NewClusters returns the runtime over the clusters src gives.
func NewClusters(src runtime.ClusterSource, opts Options) (*Clusters, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("kubernetes runtime: %w", err)
	}
	return &Clusters{src: src, opts: opts, rts: map[string]*Runtime{}, where: map[string]string{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chaindock_kube_api_requests_total",
			Help: "Requests sent to registered Kubernetes clusters, by cluster and method (WATCH: a watch opened).",
		}, []string{"cluster", "method"}),
		proxied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chaindock_kube_proxied_requests_total",
			Help: "Requests sent to nodes through a registered cluster's service proxy (a server outside the cluster probing or using a node).",
		}, []string{"cluster"}),
	}, nil
}

// Describe implements prometheus.Collector.
func (c *Clusters) Describe(ch chan<- *prometheus.Desc) {
	c.requests.Describe(ch)
	c.proxied.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Clusters) Collect(ch chan<- prometheus.Metric) {
	c.requests.Collect(ch)
	c.proxied.Collect(ch)
}

// Close stops every cluster's watches.
func (c *Clusters) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, rt := range c.rts {
		rt.Close()
		delete(c.rts, name)
	}
	return nil
}

// counted counts each request a client sends to cluster.
func (c *Clusters) counted(cluster string) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			method := req.Method
			if req.URL.Query().Get("watch") == "true" {
				method = "WATCH"
			}
			c.requests.WithLabelValues(cluster, method).Inc()
			return next.RoundTrip(req)
		})
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// ListenHost implements runtime.Addresser: a pod's node listens on all its
// addresses; the namespace's network policy says who may reach it.
func (c *Clusters) ListenHost() string { return "0.0.0.0" }

// NodeHost implements runtime.Addresser: the node's headless Service.
func (c *Clusters) NodeHost(network, node string) string {
	return node + "." + c.opts.NamespacePrefix + network + ".svc"
}

// cluster returns the runtime of a registered cluster.
func (c *Clusters) cluster(ctx context.Context, name string) (*Runtime, error) {
	c.mu.Lock()
	rt, ok := c.rts[name]
	c.mu.Unlock()
	if ok {
		return rt, nil
	}
	kc, kctx, err := c.src.Kubeconfig(ctx, name)
	if err != nil {
		return nil, err
	}
	rc, _, errs := clusters.Config(kc, kctx)
	if len(errs) > 0 {
		return nil, fmt.Errorf("cluster %s: %w", name, errs.Err())
	}
	proxy, err := newServiceProxy(rest.CopyConfig(rc), func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			c.proxied.WithLabelValues(name).Inc()
			return next.RoundTrip(req)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	rc.Wrap(c.counted(name))
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	// A watch lasts minutes; a time limit on requests would cut it and
	// open it again every few seconds.
	wc := rest.CopyConfig(rc)
	wc.Timeout = 0
	watch, err := kubernetes.NewForConfig(wc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	rt, err = NewWithWatchClient(cs, watch, c.opts)
	if err != nil {
		return nil, err
	}
	rt.proxy = proxy
	c.mu.Lock()
	defer c.mu.Unlock()
	if have, ok := c.rts[name]; ok {
		return have, nil // another caller was first
	}
	c.rts[name] = rt
	return rt, nil
}

// forget stops the runtimes of clusters no longer registered.
func (c *Clusters) forget(registered []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, rt := range c.rts {
		if !slices.Contains(registered, name) {
			rt.Close()
			delete(c.rts, name)
		}
	}
}

// locate finds the cluster of node id, asking every cluster when it is
// not known.
func (c *Clusters) locate(ctx context.Context, id string) (*Runtime, error) {
	c.mu.Lock()
	name, ok := c.where[id]
	c.mu.Unlock()
	if ok {
		return c.cluster(ctx, name)
	}
	names, err := c.src.ClusterNames(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range names {
		rt, err := c.cluster(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := rt.find(ctx, id); err == nil {
			c.remember(id, name)
			return rt, nil
		} else if !errors.Is(err, runtime.ErrNotFound) {
			errs = append(errs, fmt.Errorf("cluster %s: %w", name, err))
		}
	}
	if len(errs) > 0 {
		// A cluster that did not answer may have it.
		return nil, fmt.Errorf("node %s: %w", id, errors.Join(errs...))
	}
	return nil, fmt.Errorf("node %s: %w", id, runtime.ErrNotFound)
}

func (c *Clusters) remember(id, cluster string) {
	c.mu.Lock()
	c.where[id] = cluster
	c.mu.Unlock()
}

// Start implements runtime.Runtime on the cluster the spec's labels name.
func (c *Clusters) Start(ctx context.Context, spec runtime.NodeSpec) (runtime.Status, error) {
	name := spec.Labels[LabelCluster]
	if name == "" {
		return runtime.Status{}, fmt.Errorf("node %s: its labels name no cluster (%s)", spec.ID, LabelCluster)
	}
	rt, err := c.cluster(ctx, name)
	if err != nil {
		return runtime.Status{}, err
	}
	c.remember(spec.ID, name)
	return rt.Start(ctx, spec)
}

// Inspect implements runtime.Runtime.
func (c *Clusters) Inspect(ctx context.Context, id string) (runtime.Status, error) {
	rt, err := c.locate(ctx, id)
	if err != nil {
		return runtime.Status{}, err
	}
	return rt.Inspect(ctx, id)
}

// Stop implements runtime.Runtime.
func (c *Clusters) Stop(ctx context.Context, id string) error {
	rt, err := c.locate(ctx, id)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return rt.Stop(ctx, id)
}

// Remove implements runtime.Runtime.
func (c *Clusters) Remove(ctx context.Context, id string) error {
	rt, err := c.locate(ctx, id)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := rt.Remove(ctx, id); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.where, id)
	c.mu.Unlock()
	return nil
}

// List implements runtime.Runtime: the nodes of every registered cluster
// that answers, and an error naming those that do not.
func (c *Clusters) List(ctx context.Context) ([]runtime.Status, error) {
	names, err := c.src.ClusterNames(ctx)
	if err != nil {
		return nil, err
	}
	c.forget(names)
	var out []runtime.Status
	var errs []error
	for _, name := range names {
		rt, err := c.cluster(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		list, err := rt.List(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", name, err))
			continue
		}
		for _, st := range list {
			c.remember(st.ID, name)
		}
		out = append(out, list...)
	}
	return out, errors.Join(errs...)
}

// Logs implements runtime.LogReader.
func (c *Clusters) Logs(ctx context.Context, id string, opts runtime.LogOptions, w io.Writer) error {
	rt, err := c.locate(ctx, id)
	if err != nil {
		return err
	}
	return rt.Logs(ctx, id, opts, w)
}
