package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
)

const (
	// healthyAfter is how long a node must run before its crash count is
	// forgiven.
	healthyAfter = time.Minute
	maxBackoff   = 5 * time.Minute
	// stallAfter is how long a node's height may stand still before it is
	// reported Stalled, when the chain makes empty blocks.
	stallAfter   = 30 * time.Second
	probeTimeout = 2 * time.Second
	// fastRequeue is the pace while a network is deploying or healing, and
	// for settleTime after it turned Running, so that users watching a
	// deploy or a heal see heights as they happen.
	fastRequeue = 150 * time.Millisecond
	settleTime  = 10 * time.Second
)

// restartBackoff is the wait before restarting a node that crashed
// crashes times in a row: none for the first crash, so a node heals at
// once, then doubling from one second.
func restartBackoff(crashes int) time.Duration {
	if crashes <= 1 {
		return 0
	}
	d := time.Second << min(crashes-2, 20)
	return min(d, maxBackoff)
}

func (c *Controller) deploy(ctx context.Context, n *apis.Network, drv chain.Driver, rt runtime.Runtime) (Result, error) {
	now := c.now().UTC()
	if n.Status.Phase == "" || n.Status.Phase == apis.PhasePending {
		n.Status.Phase = apis.PhaseDeploying
		n.Status.DeployStartedAt = &now
		c.event(ctx, n, apis.EventNormal, "Deploying", "", "deploying %d nodes of chain %s on runtime %s", len(n.Spec.Nodes()), n.Spec.Chain, n.Spec.Runtime)
		if err := c.writeStatus(ctx, n); err != nil {
			return Result{}, err
		}
		// writeStatus bumped the resource version; read it back.
		return Result{RequeueAfter: time.Millisecond}, nil
	}

	plan, err := c.ensurePlan(ctx, n, drv)
	if err != nil {
		return Result{}, c.fail(ctx, n, "PlanFailed", err)
	}
	n.Status.ChainID = plan.ChainID
	plan, scaling, err := c.reshape(ctx, n, drv, rt, plan)
	if err != nil {
		c.event(ctx, n, apis.EventWarning, "ScaleFailed", "", "%v", err)
		scaling = strings.TrimSpace(scaling + ": " + err.Error())
	}
	var retry time.Duration
	if scaling == "" && err == nil && n.Status.RunningSince != nil {
		plan, scaling, retry = c.reconfigure(ctx, n, drv, plan)
	}
	c.exportCertificates(n, drv, plan)
	roll := c.staleNode(ctx, n, rt, plan)

	prev := map[string]apis.NodeStatus{}
	for _, ns := range n.Status.Nodes {
		prev[ns.Name] = ns
	}
	statuses := make([]apis.NodeStatus, len(plan.Nodes))
	var startErrs []string
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, node := range plan.Nodes {
		wg.Go(func() {
			ns, err := c.reconcileNode(ctx, n, drv, rt, node, prev[node.Name], now, node.Name == roll)
			statuses[i] = ns
			if err != nil {
				mu.Lock()
				startErrs = append(startErrs, err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	n.Status.Nodes = statuses
	n.Status.LastProbeTime = &now
	n.Status.ObservedGeneration = n.Metadata.Generation

	var height int64
	var notReady []string
	_, bootstraps := drv.(chain.Bootstrapper)
	bootstrapping := bootstraps && n.Status.RunningSince == nil
	for i, ns := range statuses {
		height = max(height, ns.Height)
		if plan.Nodes[i].Joining && !bootstrapping {
			continue // a node being added: the network runs on without it
		}
		if plan.Nodes[i].Joining && ns.Phase == apis.NodeRunning {
			// A node of a new network the driver bootstraps: the
			// network runs once it has joined.
			notReady = append(notReady, ns.Name+" joining")
			continue
		}
		if ns.Phase != apis.NodeRunning {
			detail := ns.Phase
			if ns.Message != "" {
				detail += ": " + ns.Message
			}
			notReady = append(notReady, ns.Name+" "+detail)
		}
	}
	n.Status.Height = height
	sort.Strings(startErrs)
	switch {
	case len(notReady) == 0 && (height >= 1 || !chain.MakesEmptyBlocks(drv, &n.Spec)):
		if n.Status.Phase != apis.PhaseRunning {
			took := ""
			if n.Status.DeployStartedAt != nil && n.Status.RunningSince == nil {
				took = fmt.Sprintf(" (deployed in %.1fs)", now.Sub(*n.Status.DeployStartedAt).Seconds())
			}
			c.event(ctx, n, apis.EventNormal, "Running", "", "all %d nodes running at height %d%s", len(statuses), height, took)
		}
		if n.Status.RunningSince == nil || n.Status.Phase != apis.PhaseRunning {
			n.Status.RunningSince = &now
		}
		n.Status.Phase = apis.PhaseRunning
		n.Status.Message = scaling
		if roll != "" {
			n.Status.Message = strings.TrimPrefix(n.Status.Message+"; restarting "+roll+" with its new peers", "; ")
		}
	case len(startErrs) > 0 && n.Status.RunningSince == nil:
		msg := strings.Join(startErrs, "; ")
		if n.Status.Phase != apis.PhaseFailed || n.Status.Message != msg {
			c.event(ctx, n, apis.EventWarning, "DeployFailed", "", "%s", msg)
		}
		n.Status.Phase = apis.PhaseFailed
		n.Status.Message = msg
	case n.Status.RunningSince != nil:
		if n.Status.Phase != apis.PhaseDegraded {
			c.event(ctx, n, apis.EventWarning, "Degraded", "", "not every node is running: %s", strings.Join(notReady, ", "))
		}
		n.Status.Phase = apis.PhaseDegraded
		n.Status.Message = strings.Join(notReady, ", ")
	default:
		n.Status.Phase = apis.PhaseDeploying
		n.Status.Message = "waiting for " + strings.Join(notReady, ", ")
	}
	if err := c.writeStatus(ctx, n); err != nil {
		return Result{}, err
	}
	if len(startErrs) > 0 {
		return Result{}, errors.New(strings.Join(startErrs, "; "))
	}
	if n.Status.Phase == apis.PhaseRunning && now.Sub(*n.Status.RunningSince) > settleTime && scaling == "" && roll == "" {
		return Result{RequeueAfter: c.opts.ProbeInterval}, nil
	}
	if retry > 0 {
		return Result{RequeueAfter: retry}, nil
	}
	return Result{RequeueAfter: fastRequeue}, nil
}

// reconcileNode starts, restarts or just probes one node and returns its
// new status. An error is a start that failed.
func (c *Controller) reconcileNode(ctx context.Context, n *apis.Network, drv chain.Driver, rt runtime.Runtime, node chain.PlannedNode, prev apis.NodeStatus, now time.Time, roll bool) (apis.NodeStatus, error) {
	id := nodeID(n.Metadata.Name, node.Name)
	c.mu.Lock()
	c.nodeNetwork[id] = n.Metadata.Name
	c.mu.Unlock()
	spec := c.withImages(n, node.Spec)
	spec.ID = id
	spec.Labels = map[string]string{LabelNetwork: n.Metadata.Name, LabelNetworkUID: n.Metadata.UID, LabelNode: node.Name}
	if n.Spec.Cluster != "" {
		spec.Labels[LabelCluster] = n.Spec.Cluster
	}
	if rev := revisionLabel(node); rev != "" {
		spec.Labels[LabelRevision] = rev
	}

	ns := prev
	ns.Name, ns.Role, ns.Organization, ns.NodeID = node.Name, node.Role, node.Organization, node.NodeID
	ns.Joining = node.Joining
	ns.Endpoints = node.Endpoints
	ns.Message = ""
	if ns.Phase == "" {
		ns.Phase = apis.NodePending
	}

	st, err := rt.Inspect(ctx, id)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		st, err = rt.Start(ctx, spec)
		if err != nil {
			ns.Phase, ns.Message = apis.NodePending, err.Error()
			c.event(ctx, n, apis.EventWarning, "StartFailed", node.Name, "start %s: %v", node.Name, err)
			return ns, fmt.Errorf("start %s: %w", node.Name, err)
		}
		ns.StartedAt = &now
		c.event(ctx, n, apis.EventNormal, "NodeStarted", node.Name, "started %s (%s, pid %d)", node.Name, node.Role, st.PID)
	case err != nil:
		ns.Message = err.Error()
		return ns, fmt.Errorf("inspect %s: %w", node.Name, err)
	case st.State == runtime.StateExited:
		ns.PID = 0
		if ns.Phase != apis.NodeCrashed {
			ns.ConsecutiveCrashes++
			c.event(ctx, n, apis.EventWarning, "NodeCrashed", node.Name, "%s stopped: %s", node.Name, st.Message)
		}
		ns.Phase = apis.NodeCrashed
		wait := restartBackoff(ns.ConsecutiveCrashes)
		if ns.LastRestart != nil && now.Before(ns.LastRestart.Add(wait)) {
			ns.Message = fmt.Sprintf("%s; crashed %d times in a row, next restart in %s", st.Message, ns.ConsecutiveCrashes, ns.LastRestart.Add(wait).Sub(now).Round(100*time.Millisecond))
			return ns, nil
		}
		st, err = rt.Start(ctx, spec)
		if err != nil {
			ns.Message = err.Error()
			c.event(ctx, n, apis.EventWarning, "RestartFailed", node.Name, "restart %s: %v", node.Name, err)
			return ns, fmt.Errorf("restart %s: %w", node.Name, err)
		}
		ns.Restarts++
		ns.LastRestart, ns.StartedAt = &now, &now
		c.opts.Metrics.NodeRestarts.WithLabelValues(n.Metadata.Name, node.Name).Inc()
		if next := restartBackoff(ns.ConsecutiveCrashes + 1); next > 0 {
			c.event(ctx, n, apis.EventWarning, "NodeRestarted", node.Name, "restarted %s (pid %d, restart %d); it crashed %d times in a row, so the next restart waits %s", node.Name, st.PID, ns.Restarts, ns.ConsecutiveCrashes, next)
		} else {
			c.event(ctx, n, apis.EventNormal, "NodeRestarted", node.Name, "restarted %s (pid %d, restart %d)", node.Name, st.PID, ns.Restarts)
		}
	case st.State == runtime.StateRunning && st.Labels[LabelRevision] != spec.Labels[LabelRevision]:
		// Its spec changed (new peers): restart it with the new one, when
		// it is this node's turn.
		if !roll {
			ns.Message = "restarts with its new configuration when the other nodes run"
			break
		}
		st, err = rt.Start(ctx, spec)
		if err != nil {
			ns.Message = err.Error()
			c.event(ctx, n, apis.EventWarning, "ReconfigureFailed", node.Name, "restart %s with its new configuration: %v", node.Name, err)
			return ns, fmt.Errorf("reconfigure %s: %w", node.Name, err)
		}
		ns.StartedAt = &now
		c.event(ctx, n, apis.EventNormal, "NodeReconfigured", node.Name, "restarted %s with revision %s of its configuration (pid %d)", node.Name, spec.Labels[LabelRevision], st.PID)
	}
	ns.PID = st.PID
	ns.Pod = nil
	if p := st.Pod; p != nil {
		ns.Pod = &apis.PodInfo{Name: p.Name, UID: p.UID, Phase: p.Phase, Ready: p.Ready, Restarts: p.Restarts, PodIP: p.PodIP, HostIP: p.HostIP, Node: p.Node}
		if st.Message != "" && ns.Message == "" {
			ns.Message = st.Message
		}
	}
	// The cluster replaces a pod on its own (evicted, deleted, its
	// machine gone): say so, as the process runtime's crashes are said.
	switch {
	case prev.Pod != nil && prev.Pod.UID != "" && ns.Pod != nil && ns.Pod.UID != "" && prev.Pod.UID != ns.Pod.UID:
		c.event(ctx, n, apis.EventWarning, "PodReplaced", node.Name, "the cluster replaced the pod of %s (%s, uid %s, was %s)", node.Name, ns.Pod.Name, ns.Pod.UID, prev.Pod.UID)
	case prev.Pod != nil && prev.Pod.UID != "" && ns.Pod == nil && st.State == runtime.StateRunning:
		c.event(ctx, n, apis.EventWarning, "PodGone", node.Name, "the pod of %s (%s) is gone; its stateful set makes another", node.Name, prev.Pod.Name)
	}
	if ns.StartedAt == nil && !st.StartedAt.IsZero() {
		t := st.StartedAt
		ns.StartedAt = &t
	}

	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	info, err := drv.Probe(pctx, node)
	cancel()
	if err != nil {
		c.opts.Metrics.NodeUp.WithLabelValues(n.Metadata.Name, node.Name).Set(0)
		ns.Phase = apis.NodeStarting
		ns.Message = "RPC not answering yet"
		if ns.StartedAt != nil && now.Sub(*ns.StartedAt) > 30*time.Second {
			ns.Message = fmt.Sprintf("RPC not answering: %v", err)
		}
		// A node the runtime could not start yet says why (a pod the
		// cluster did not create or schedule); that, not the silent
		// RPC, is the news.
		if st.Waiting != "" {
			ns.Phase, ns.Message = apis.NodePending, st.Waiting
			if prev.Message != st.Waiting {
				c.event(ctx, n, apis.EventWarning, "NodeWaiting", node.Name, "%s: %s", node.Name, st.Waiting)
			}
		}
		return ns, nil
	}
	c.opts.Metrics.NodeUp.WithLabelValues(n.Metadata.Name, node.Name).Set(1)
	c.opts.Metrics.NodeHeight.WithLabelValues(n.Metadata.Name, node.Name).Set(float64(info.Height))
	if info.Height != ns.Height || ns.HeightChangedAt == nil {
		ns.HeightChangedAt = &now
	}
	ns.Height, ns.Peers, ns.CatchingUp, ns.Sealing = info.Height, info.Peers, info.CatchingUp, info.Sealing
	if !info.LastBlockTime.IsZero() {
		t := info.LastBlockTime.UTC()
		ns.LastBlockTime = &t
	}
	emptyBlocks := chain.MakesEmptyBlocks(drv, &n.Spec)
	switch {
	case info.CatchingUp:
		ns.Phase = apis.NodeCatchingUp
	case info.Height < 1 && emptyBlocks:
		ns.Phase = apis.NodeStarting
		ns.Message = "waiting for the first block"
	case emptyBlocks && now.Sub(*ns.HeightChangedAt) > stallAfter:
		ns.Phase = apis.NodeStalled
		ns.Message = fmt.Sprintf("height %d has not changed for %s", ns.Height, now.Sub(*ns.HeightChangedAt).Round(time.Second))
	default:
		if ns.Phase != apis.NodeRunning && prev.Phase != "" {
			c.event(ctx, n, apis.EventNormal, "NodeRunning", node.Name, "%s running at height %d with %d peers", node.Name, info.Height, info.Peers)
		}
		ns.Phase = apis.NodeRunning
	}
	if ns.Phase == apis.NodeRunning && ns.StartedAt != nil && now.Sub(*ns.StartedAt) > healthyAfter {
		ns.ConsecutiveCrashes = 0
	}
	return ns, nil
}

// finalize removes every node of a network, then the network and all it
// owns in the store. Until the store delete, a crash leaves the network in
// Deleting and the next reconcile finishes the job.
func (c *Controller) finalize(ctx context.Context, n *apis.Network, rt runtime.Runtime) (Result, error) {
	if n.Status.Phase != apis.PhaseDeleting {
		n.Status.Phase = apis.PhaseDeleting
		n.Status.Message = "removing nodes"
		c.event(ctx, n, apis.EventNormal, "Deleting", "", "removing %d nodes", len(n.Status.Nodes))
		if err := c.writeStatus(ctx, n); err != nil {
			return Result{}, err
		}
	}
	ids := map[string]bool{}
	for _, node := range n.Spec.Nodes() {
		ids[nodeID(n.Metadata.Name, node.Name)] = true
	}
	// Anything labelled with this network, in case the spec and the
	// runtime disagree.
	all, err := rt.List(ctx)
	if err != nil {
		return Result{}, err
	}
	for _, st := range all {
		if st.Labels[LabelNetworkUID] == n.Metadata.UID {
			ids[st.ID] = true
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for id := range ids {
		wg.Go(func() {
			if err := rt.Remove(ctx, id); err != nil {
				errs <- err
			}
			c.mu.Lock()
			delete(c.nodeNetwork, id)
			c.mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return Result{}, err
	}
	if err := c.deleteIdentities(ctx, n, ""); err != nil {
		return Result{}, err
	}
	if err := c.opts.Store.Delete(ctx, apis.KindNetwork, n.Metadata.Name, n.Metadata.UID); err != nil {
		return Result{}, err
	}
	c.opts.Metrics.ForgetNetwork(n.Metadata.Name)
	c.log.Info("network deleted", "network", n.Metadata.Name, "nodes", len(ids))
	return Result{}, nil
}

// deleteIdentities deletes the application identities enrolled in n, of
// organisation org or, with org empty, of all, and with each its sealed
// key: they are named NETWORK-UID/ORG/NAME.
func (c *Controller) deleteIdentities(ctx context.Context, n *apis.Network, org string) error {
	objs, err := c.opts.Store.List(ctx, apis.KindFabricIdentity)
	if err != nil {
		return err
	}
	prefix := n.Metadata.UID + "/"
	if org != "" {
		prefix += org + "/"
	}
	for _, o := range objs {
		if strings.HasPrefix(o.Name, prefix) {
			if err := c.opts.Store.Delete(ctx, o.Kind, o.Name, o.UID); err != nil {
				return fmt.Errorf("delete identity %s: %w", o.Name, err)
			}
		}
	}
	return nil
}

// collectOrphans removes runtime nodes whose network no longer exists: what
// a crash between a store delete and a runtime remove would leave. The
// runtime is listed before the store, so a node started after the listing
// cannot be mistaken for an orphan.
func (c *Controller) collectOrphans(ctx context.Context) {
	type found struct {
		rt runtime.Runtime
		st runtime.Status
	}
	var nodes []found
	for name, rt := range c.opts.Runtimes {
		list, err := rt.List(ctx)
		if err != nil {
			c.log.Error("collect orphans: list nodes", "runtime", name, "err", err)
			return
		}
		for _, st := range list {
			nodes = append(nodes, found{rt, st})
		}
	}
	objs, err := c.opts.Store.List(ctx, apis.KindNetwork)
	if err != nil {
		c.log.Error("collect orphans: list networks", "err", err)
		return
	}
	live := map[string]bool{}
	for _, o := range objs {
		live[o.UID] = true
	}
	for _, f := range nodes {
		if live[f.st.Labels[LabelNetworkUID]] {
			continue
		}
		c.log.Warn("removing orphaned node", "node_id", f.st.ID, "network", f.st.Labels[LabelNetwork])
		if err := f.rt.Remove(ctx, f.st.ID); err != nil {
			c.log.Error("remove orphaned node", "node_id", f.st.ID, "err", err)
		}
	}
}

// withImages is spec with the images the server was told to use for its
// programs, on runtimes that run containers.
func (c *Controller) withImages(n *apis.Network, spec runtime.NodeSpec) runtime.NodeSpec {
	if len(c.opts.Images) == 0 {
		return spec
	}
	if _, pods := c.opts.Runtimes[n.Spec.Runtime].(runtime.Addresser); !pods {
		return spec
	}
	if im, ok := c.opts.Images[spec.Program]; ok {
		spec.Image = im
	}
	spec.Sidecars = slices.Clone(spec.Sidecars)
	for i, sc := range spec.Sidecars {
		// A sidecar that runs its image's own entrypoint (CouchDB)
		// names no program: its name stands for it.
		program := sc.Program
		if program == "" {
			program = sc.Name
		}
		if im, ok := c.opts.Images[program]; ok {
			spec.Sidecars[i].Image = im
		}
	}
	spec.Init = slices.Clone(spec.Init)
	for i, st := range spec.Init {
		if im, ok := c.opts.Images[st.Program]; ok {
			spec.Init[i].Image = im
		}
	}
	return spec
}

// exportCertificates sets when each certificate the driver issued the
// network expires, for alerts; a certificate renewed keeps its series.
func (c *Controller) exportCertificates(n *apis.Network, drv chain.Driver, plan *chain.Plan) {
	cr, ok := drv.(chain.CertificateReporter)
	if !ok {
		return
	}
	certs, err := cr.Certificates(&n.Spec, plan, c.now())
	if err != nil {
		return // the certificates API names the error
	}
	for _, ct := range certs {
		c.opts.Metrics.CertificateExpiry.WithLabelValues(n.Metadata.Name, ct.Owner, ct.Kind).Set(float64(ct.NotAfter.Unix()))
	}
}
