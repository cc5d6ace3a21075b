package controller

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/metrics"
	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/store"
)

// Labels the controller puts on every runtime node, to find its own.
const (
	LabelNetwork    = "chaindock.io/network"
	LabelNetworkUID = "chaindock.io/network-uid"
	LabelNode       = "chaindock.io/node"
	// LabelCluster names the registered cluster a node runs on.
	LabelCluster = "chaindock.io/cluster"
)

const planBlob = store.PlanBlob

// Options configure a controller.
type Options struct {
	Store    store.Store
	Runtimes map[string]runtime.Runtime
	Metrics  *metrics.Metrics
	Log      *slog.Logger
	// Host is the address nodes listen on.
	Host string
	// Ports is the range host ports are allocated from.
	Ports store.PortRange
	// ProbeInterval is how often a Running network is probed.
	ProbeInterval time.Duration
	// ResyncInterval is how often every network is reconciled even when
	// nothing asked for it, and orphans are collected.
	ResyncInterval time.Duration
	// Workers reconcile different networks at once.
	Workers int
	// Images replace the official image of a node program, a sidecar's
	// or an init step's (by program name), on runtimes that run
	// containers.
	Images map[string]string
}

// Controller reconciles networks.
type Controller struct {
	opts  Options
	log   *slog.Logger
	queue workqueue.TypedRateLimitingInterface[string]
	now   func() time.Time

	mu          sync.Mutex
	nodeNetwork map[string]string // runtime node ID → network name
	// seen is the resource version of each network at the last poll, so
	// that a change written by another server's API is noticed.
	seen map[string]int64
	// reconfFailures are the networks (by UID) whose Reconfigure calls
	// fail, for backoff and to record each error once.
	reconfFailures map[string]reconfigureFailure
}

// New makes a controller; Start runs it.
func New(opts Options) *Controller {
	if opts.ProbeInterval == 0 {
		opts.ProbeInterval = 2 * time.Second
	}
	if opts.ResyncInterval == 0 {
		opts.ResyncInterval = 30 * time.Second
	}
	if opts.Workers == 0 {
		opts.Workers = 4
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	c := &Controller{
		opts: opts,
		log:  opts.Log.With("component", "controller"),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "networks"}),
		now:         time.Now,
		nodeNetwork: map[string]string{},
		seen:        map[string]int64{},

		reconfFailures: map[string]reconfigureFailure{},
	}
	for _, rt := range opts.Runtimes {
		if n, ok := rt.(runtime.ExitNotifier); ok {
			n.OnExit(c.nodeExited)
		}
	}
	return c
}

// Enqueue asks for a reconcile of the network name.
func (c *Controller) Enqueue(name string) { c.queue.Add(name) }

func (c *Controller) nodeExited(id string) {
	c.mu.Lock()
	name, ok := c.nodeNetwork[id]
	c.mu.Unlock()
	if ok {
		c.log.Info("node exited", "network", name, "node_id", id)
		c.queue.Add(name)
	}
}

// Start runs the controller until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	c.collectOrphans(ctx)
	c.resync(ctx)
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	wg.Go(func() {
		resync := time.NewTicker(c.opts.ResyncInterval)
		defer resync.Stop()
		poll := time.NewTicker(changePoll)
		defer poll.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-poll.C:
				c.enqueueChanged(ctx)
			case <-resync.C:
				c.collectOrphans(ctx)
				c.resync(ctx)
			}
		}
	})
	<-ctx.Done()
	c.queue.ShutDownWithDrain()
	wg.Wait()
	return nil
}

func (c *Controller) resync(ctx context.Context) {
	objs, err := c.opts.Store.List(ctx, apis.KindNetwork)
	if err != nil {
		c.log.Error("resync: list networks", "err", err)
		return
	}
	for _, o := range objs {
		c.queue.Add(o.Name)
	}
}

// changePoll is how often the store is read for networks another server's
// API changed; this server's API tells the controller at once.
const changePoll = 2 * time.Second

func (c *Controller) enqueueChanged(ctx context.Context) {
	objs, err := c.opts.Store.List(ctx, apis.KindNetwork)
	if err != nil {
		c.log.Error("poll for changes", "err", err)
		return
	}
	present := make(map[string]bool, len(objs))
	for _, o := range objs {
		present[o.Name] = true
		if c.seen[o.Name] != o.ResourceVersion {
			c.seen[o.Name] = o.ResourceVersion
			c.queue.Add(o.Name)
		}
	}
	for name := range c.seen {
		if !present[name] {
			delete(c.seen, name)
		}
	}
	uids := make(map[string]bool, len(objs))
	for _, o := range objs {
		uids[o.UID] = true
	}
	c.mu.Lock()
	for uid := range c.reconfFailures {
		if !uids[uid] {
			delete(c.reconfFailures, uid)
		}
	}
	c.mu.Unlock()
}

func (c *Controller) processNext(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	start := time.Now()
	res, err := c.Reconcile(ctx, name)
	result := "success"
	switch {
	case ctx.Err() != nil:
		// Shutting down: the next server picks up where this one stopped.
		return true
	case err != nil:
		result = "error"
		c.opts.Metrics.ReconcileErrors.WithLabelValues(name).Inc()
		c.log.Warn("reconcile failed", "network", name, "err", err)
		c.queue.AddRateLimited(name)
	default:
		c.queue.Forget(name)
		if res.RequeueAfter > 0 {
			c.queue.AddAfter(name, res.RequeueAfter)
		}
	}
	c.opts.Metrics.ReconcileDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return true
}

// Result tells the queue when to reconcile the network again.
type Result struct {
	RequeueAfter time.Duration
}

// Reconcile makes one network match its spec, as far as one pass can.
func (c *Controller) Reconcile(ctx context.Context, name string) (Result, error) {
	obj, err := c.opts.Store.Get(ctx, apis.KindNetwork, name)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	n, err := store.ObjectToNetwork(obj)
	if err != nil {
		return Result{}, err
	}
	drv, err := chain.Get(n.Spec.Chain)
	if err != nil {
		return Result{}, c.fail(ctx, n, "UnknownChain", err)
	}
	rt, ok := c.opts.Runtimes[n.Spec.Runtime]
	if !ok {
		return Result{}, c.fail(ctx, n, "UnknownRuntime", fmt.Errorf("runtime %q is not enabled on this server", n.Spec.Runtime))
	}
	if n.Metadata.DeletionTimestamp != nil {
		return c.finalize(ctx, n, rt)
	}
	return c.deploy(ctx, n, drv, rt)
}

func nodeID(network, node string) string { return network + "." + node }

// placement is where n's runtime puts its nodes, when they do not all run
// on the server's host.
func (c *Controller) placement(n *apis.Network) chain.Placement {
	a, ok := c.opts.Runtimes[n.Spec.Runtime].(runtime.Addresser)
	if !ok {
		return nil
	}
	return podPlacement{a: a, network: n.Metadata.Name}
}

// podPlacement places nodes in pods: each listens on all its addresses,
// is reached at its own name, and reaches its sidecars on loopback.
type podPlacement struct {
	a       runtime.Addresser
	network string
}

func (p podPlacement) ListenHost() string          { return p.a.ListenHost() }
func (p podPlacement) NodeHost(node string) string { return p.a.NodeHost(p.network, node) }
func (p podPlacement) LocalHost() string           { return "127.0.0.1" }

func (c *Controller) event(ctx context.Context, n *apis.Network, typ, reason, node, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e := apis.Event{Time: c.now().UTC(), Kind: apis.KindNetwork, Name: n.Metadata.Name, UID: n.Metadata.UID, Type: typ, Reason: reason, Node: node, Message: msg}
	if err := c.opts.Store.AddEvent(ctx, e); err != nil {
		c.log.Error("record event", "network", n.Metadata.Name, "reason", reason, "err", err)
	}
	level := slog.LevelInfo
	if typ == apis.EventWarning {
		level = slog.LevelWarn
	}
	c.log.Log(ctx, level, msg, "network", n.Metadata.Name, "node", node, "reason", reason)
}

// fail records a failure the user must act on; the network is retried with
// backoff all the same, as the cause may go away.
func (c *Controller) fail(ctx context.Context, n *apis.Network, reason string, err error) error {
	if n.Status.Phase != apis.PhaseFailed || n.Status.Message != err.Error() {
		c.event(ctx, n, apis.EventWarning, reason, "", "%v", err)
		n.Status.Phase = apis.PhaseFailed
		n.Status.Message = err.Error()
		if uerr := c.writeStatus(ctx, n); uerr != nil {
			return uerr
		}
	}
	return err
}

func (c *Controller) writeStatus(ctx context.Context, n *apis.Network) error {
	o, err := store.NetworkToObject(n)
	if err != nil {
		return err
	}
	if _, err := c.opts.Store.UpdateStatus(ctx, o); err != nil {
		return fmt.Errorf("write status of %s: %w", n.Metadata.Name, err)
	}
	phase := n.Status.Phase
	for _, p := range []string{apis.PhasePending, apis.PhaseDeploying, apis.PhaseRunning, apis.PhaseDegraded, apis.PhaseDeleting, apis.PhaseFailed} {
		v := 0.0
		if p == phase {
			v = 1
		}
		c.opts.Metrics.NetworkPhase.WithLabelValues(n.Metadata.Name, p).Set(v)
	}
	return nil
}

// ensurePlan returns the network's stored plan, making it first when there
// is none: ports (idempotent per node), then keys, genesis and configs.
func (c *Controller) ensurePlan(ctx context.Context, n *apis.Network, drv chain.Driver) (*chain.Plan, error) {
	uid := n.Metadata.UID
	b, err := c.opts.Store.GetBlob(ctx, uid, planBlob)
	if err == nil {
		var p chain.Plan
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("decode stored plan: %w", err)
		}
		return &p, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	ports := map[string]map[string]int{}
	total := 0
	for _, node := range n.Spec.Nodes() {
		names := drv.PortNames(&n.Spec, node.Role)
		got, err := c.opts.Store.AllocatePorts(ctx, uid, node.Name, len(names), c.opts.Ports, c.portFree)
		if err != nil {
			return nil, fmt.Errorf("allocate ports for %s: %w", node.Name, err)
		}
		ports[node.Name] = map[string]int{}
		for i, pn := range names {
			ports[node.Name][pn] = got[i]
		}
		total += len(got)
	}
	c.event(ctx, n, apis.EventNormal, "PortsAllocated", "", "allocated %d ports on %s for %d nodes", total, c.opts.Host, len(ports))
	plan, err := drv.Plan(ctx, chain.PlanRequest{Network: n, Ports: ports, Host: c.opts.Host, Placement: c.placement(n), Rand: rand.Reader, Now: c.now()})
	if err != nil {
		return nil, err
	}
	b, err = json.Marshal(plan)
	if err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	if err := c.opts.Store.PutBlob(ctx, uid, planBlob, b); err != nil {
		return nil, err
	}
	c.event(ctx, n, apis.EventNormal, "Planned", "", "generated keys, genesis and configs for %d nodes of chain %s", len(plan.Nodes), plan.ChainID)
	return plan, nil
}

// portFree reports whether nothing on this host listens on port.
func (c *Controller) portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(c.opts.Host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
