package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"k8s.io/client-go/kubernetes"

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

	mu    sync.Mutex
	rts   map[string]*Runtime // by cluster
	where map[string]string   // node ID → cluster
}

var (
	_ runtime.Runtime   = (*Clusters)(nil)
	_ runtime.LogReader = (*Clusters)(nil)
	_ runtime.Addresser = (*Clusters)(nil)
)

// NewClusters returns the runtime over the clusters src gives.
func NewClusters(src runtime.ClusterSource, opts Options) (*Clusters, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("kubernetes runtime: %w", err)
	}
	return &Clusters{src: src, opts: opts, rts: map[string]*Runtime{}, where: map[string]string{}}, nil
}

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
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	rt = &Runtime{cs: cs, opts: c.opts}
	c.mu.Lock()
	c.rts[name] = rt
	c.mu.Unlock()
	return rt, nil
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
