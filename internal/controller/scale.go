package controller

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
)

// LabelRevision carries a node's plan revision (chain.PlannedNode.Revision)
// once scaling changed its spec.
const LabelRevision = "chaindock.io/revision"

// reshape brings the plan to the spec's nodes, one step per call, and
// says what is under way ("" when nothing is), so that the network is
// looked at again soon:
//
//   - nodes the spec has and the plan has not are planned, all at once,
//     with ports, keys and configs (the nodes that stay get their new
//     peers, and are restarted with them later, one at a time);
//   - new validators that run are admitted to consensus, and the nodes
//     of a new network whose driver bootstraps it (chain.Bootstrapper),
//     of any role, are bootstrapped once they run;
//   - nodes the plan has and the spec has not are removed one at a time:
//     a validator is retired from consensus first, then its node goes,
//     then its place in the plan and its ports.
//
// Each step is stored before the next begins, so a server that dies in
// the middle resumes where it was.
func (c *Controller) reshape(ctx context.Context, n *apis.Network, drv chain.Driver, rt runtime.Runtime, plan *chain.Plan) (*chain.Plan, string, error) {
	want := n.Spec.Nodes()
	var add []apis.NodeSpec
	for _, ns := range want {
		if !slices.ContainsFunc(plan.Nodes, func(pn chain.PlannedNode) bool { return pn.Name == ns.Name }) {
			add = append(add, ns)
		}
	}
	var remove []chain.PlannedNode
	joining := false
	for _, pn := range plan.Nodes {
		if !slices.ContainsFunc(want, func(ns apis.NodeSpec) bool { return ns.Name == pn.Name }) {
			remove = append(remove, pn)
		}
		joining = joining || pn.Joining
	}
	if len(add) == 0 && len(remove) == 0 && !joining {
		return plan, "", nil
	}
	// A new network whose driver bootstraps it has Joining nodes and
	// needs no scaling: it is joined below, node by node.
	_, bootstraps := drv.(chain.Bootstrapper)
	bootstrapping := bootstraps && n.Status.RunningSince == nil
	scaler, ok := drv.(chain.Scaler)
	onlyJoins := bootstrapping && len(add) == 0 && len(remove) == 0
	if !ok && !onlyJoins {
		return plan, "", fmt.Errorf("the %s driver cannot change the nodes of a running network", n.Spec.Chain)
	}

	if len(add) > 0 {
		ports, err := c.allocatePorts(ctx, n, drv, add)
		if err != nil {
			return plan, "", err
		}
		next, err := scaler.Reshape(ctx, chain.ReshapeRequest{Network: n, Plan: plan, Add: add, Ports: ports, Host: c.opts.Host, Placement: c.placement(n), Rand: rand.Reader, Now: c.now()})
		if err != nil {
			return plan, "", fmt.Errorf("plan nodes %s: %w", nodeNames(add), err)
		}
		if err := c.storePlan(ctx, n, next); err != nil {
			return plan, "", err
		}
		msg := "planned " + nodeNames(add)
		if slices.ContainsFunc(next.Nodes, func(pn chain.PlannedNode) bool {
			i := slices.IndexFunc(plan.Nodes, func(o chain.PlannedNode) bool { return o.Name == pn.Name })
			return i >= 0 && pn.Revision > plan.Nodes[i].Revision
		}) {
			msg += "; the nodes that stay restart with their new peers one at a time"
		}
		c.event(ctx, n, apis.EventNormal, "NodesAdded", "", "%s", msg)
		return next, "adding " + nodeNames(add), nil
	}

	// A new validator is admitted once it runs; a new full node has
	// nothing to wait for, unless the driver admits full nodes too.
	fa, isFA := drv.(chain.FullNodeAdmitter)
	admitsFull := isFA && fa.AdmitsFullNodes()
	prev := map[string]apis.NodeStatus{}
	for _, ns := range n.Status.Nodes {
		prev[ns.Name] = ns
	}
	changed := false
	var waiting []string
	for i, pn := range plan.Nodes {
		if pn.Joining {
			waiting = append(waiting, pn.Name)
		}
		if !pn.Joining || prev[pn.Name].Phase != apis.NodeRunning {
			continue
		}
		driverAdmits := pn.Role == apis.RoleValidator || pn.Role == apis.RoleFull && admitsFull
		admitted := !driverAdmits && !bootstrapping
		switch {
		case admitted:
		case bootstrapping:
			var err error
			if admitted, err = drv.(chain.Bootstrapper).Bootstrap(ctx, n, plan, pn); err != nil {
				c.event(ctx, n, apis.EventWarning, "BootstrapFailed", pn.Name, "bootstrap %s: %v", pn.Name, err)
				continue
			}
		default:
			var err error
			if admitted, err = scaler.Admit(ctx, n, plan, pn); err != nil {
				c.event(ctx, n, apis.EventWarning, "AdmitFailed", pn.Name, "admit %s: %v", pn.Name, err)
				continue
			}
		}
		if admitted {
			waiting = slices.DeleteFunc(waiting, func(s string) bool { return s == pn.Name })
			plan.Nodes[i].Joining = false
			changed = true
			c.event(ctx, n, apis.EventNormal, "NodeJoined", pn.Name, "%s (%s) joined the network", pn.Name, pn.Role)
		}
	}
	if changed {
		if err := c.storePlan(ctx, n, plan); err != nil {
			return plan, "", err
		}
	}
	note := ""
	switch {
	case len(waiting) > 0 && bootstrapping:
		note = "bootstrapping: waiting for " + strings.Join(waiting, ", ") + " to run and join"
	case len(waiting) > 0:
		note = "adding " + strings.Join(waiting, ", ") + ": waiting for it to run and be admitted"
	}
	if len(remove) == 0 {
		return plan, note, nil
	}

	// One removal at a time, from the end of the list: retire, stop,
	// forget.
	pn := remove[len(remove)-1]
	if pn.Role == apis.RoleValidator || pn.Role == apis.RoleFull && admitsFull {
		out, err := scaler.Retire(ctx, n, plan, pn)
		if err != nil {
			return plan, "removing " + pn.Name, fmt.Errorf("retire %s: %w", pn.Name, err)
		}
		if !out && pn.Role == apis.RoleValidator {
			return plan, "removing " + pn.Name + ": waiting for the validators to vote it out", nil
		}
		if !out {
			return plan, "removing " + pn.Name + ": waiting for the chain to let it go", nil
		}
	}
	if err := rt.Remove(ctx, nodeID(n.Metadata.Name, pn.Name)); err != nil {
		return plan, "removing " + pn.Name, fmt.Errorf("remove %s: %w", pn.Name, err)
	}
	next, err := scaler.Reshape(ctx, chain.ReshapeRequest{Network: n, Plan: plan, Remove: []string{pn.Name}, Host: c.opts.Host, Placement: c.placement(n), Rand: rand.Reader, Now: c.now()})
	if err != nil {
		return plan, "removing " + pn.Name, fmt.Errorf("plan without %s: %w", pn.Name, err)
	}
	if err := c.storePlan(ctx, n, next); err != nil {
		return plan, "removing " + pn.Name, err
	}
	if err := c.opts.Store.ReleasePorts(ctx, n.Metadata.UID, pn.Name); err != nil {
		return next, "removing " + pn.Name, err
	}
	c.mu.Lock()
	delete(c.nodeNetwork, nodeID(n.Metadata.Name, pn.Name))
	c.mu.Unlock()
	c.opts.Metrics.ForgetNode(n.Metadata.Name, pn.Name)
	c.event(ctx, n, apis.EventNormal, "NodeRemoved", pn.Name, "removed %s (%s)", pn.Name, pn.Role)
	if org := pn.Organization; org != "" && !slices.ContainsFunc(next.Nodes, func(o chain.PlannedNode) bool { return o.Organization == org }) &&
		!slices.ContainsFunc(n.Spec.Organizations, func(o apis.OrganizationNodes) bool { return o.Name == org }) {
		// The organisation has left: the identities enrolled in it go too.
		if err := c.deleteIdentities(ctx, n, org); err != nil {
			return next, "removed " + pn.Name, err
		}
	}
	return next, "removed " + pn.Name, nil
}

// allocatePorts gives each node its ports, as the driver names them.
func (c *Controller) allocatePorts(ctx context.Context, n *apis.Network, drv chain.Driver, nodes []apis.NodeSpec) (map[string]map[string]int, error) {
	ports := map[string]map[string]int{}
	for _, node := range nodes {
		names := drv.PortNames(&n.Spec, node.Role)
		got, err := c.opts.Store.AllocatePorts(ctx, n.Metadata.UID, node.Name, len(names), c.opts.Ports, c.portFree)
		if err != nil {
			return nil, fmt.Errorf("allocate ports for %s: %w", node.Name, err)
		}
		ports[node.Name] = map[string]int{}
		for i, pn := range names {
			ports[node.Name][pn] = got[i]
		}
	}
	return ports, nil
}

func (c *Controller) storePlan(ctx context.Context, n *apis.Network, plan *chain.Plan) error {
	b, err := json.Marshal(plan)
	if err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	return c.opts.Store.PutBlob(ctx, n.Metadata.UID, planBlob, b)
}

func nodeNames(nodes []apis.NodeSpec) string {
	names := make([]string, len(nodes))
	for i, ns := range nodes {
		names[i] = ns.Name
	}
	return strings.Join(names, ", ")
}

// revisionLabel is the label value of a planned node's revision; none for
// revision 0, so that nodes planned before scaling existed keep their
// spec, and are not restarted by an upgrade of the platform.
func revisionLabel(pn chain.PlannedNode) string {
	if pn.Revision == 0 {
		return ""
	}
	return strconv.Itoa(pn.Revision)
}

// staleNode is the first node, in plan order, that runs an older revision
// of its spec, and may be restarted with the new one now: when every
// validator that has joined runs, so that one restart at a time keeps the
// chain going. A full node that is not running holds nothing up: it may
// be the one just added, which finds its peers only once they restart
// with it in their configuration. It is "" when there is none, or none
// may restart yet.
func (c *Controller) staleNode(ctx context.Context, n *apis.Network, rt runtime.Runtime, plan *chain.Plan) string {
	phase := map[string]string{}
	for _, ns := range n.Status.Nodes {
		phase[ns.Name] = ns.Phase
	}
	stale := ""
	for _, pn := range plan.Nodes {
		if pn.Joining {
			continue
		}
		if phase[pn.Name] != apis.NodeRunning {
			if pn.Role == apis.RoleValidator {
				return ""
			}
			continue
		}
		if stale != "" || pn.Revision == 0 {
			continue
		}
		st, err := rt.Inspect(ctx, nodeID(n.Metadata.Name, pn.Name))
		if err == nil && st.State == runtime.StateRunning && st.Labels[LabelRevision] != revisionLabel(pn) {
			stale = pn.Name
		}
	}
	return stale
}

// reconfigure has a chain.Reconfigurer driver bring the running chain a
// step closer to the spec's settings that are no nodes, stores the plan
// it changed, even with an error (what it recorded as under way must not
// be lost), and says what is under way ("" when nothing is). After an
// error, retry is how long to wait before the next call, growing while
// the calls keep failing; the error is an event when it is not the one
// of the last call.
func (c *Controller) reconfigure(ctx context.Context, n *apis.Network, drv chain.Driver, plan *chain.Plan) (_ *chain.Plan, pending string, retry time.Duration) {
	rc, ok := drv.(chain.Reconfigurer)
	if !ok {
		return plan, "", 0
	}
	res, err := rc.Reconfigure(ctx, n, plan)
	if res.Plan != nil {
		if serr := c.storePlan(ctx, n, res.Plan); serr != nil {
			err = errors.Join(err, serr)
		} else {
			plan = res.Plan
		}
	}
	uid := n.Metadata.UID
	if err != nil {
		msg := strings.TrimPrefix(res.Pending+": "+err.Error(), ": ")
		c.mu.Lock()
		f := c.reconfFailures[uid]
		f.count++
		same := f.message == msg
		f.message = msg
		c.reconfFailures[uid] = f
		c.mu.Unlock()
		if !same {
			c.event(ctx, n, apis.EventWarning, "ReconfigureFailed", "", "%s", msg)
		}
		return plan, msg, reconfigureBackoff(f.count)
	}
	c.mu.Lock()
	delete(c.reconfFailures, uid)
	c.mu.Unlock()
	if res.Done != "" {
		c.event(ctx, n, apis.EventNormal, "Reconfigured", "", "%s", res.Done)
	}
	return plan, res.Pending, 0
}

// reconfigureFailure is how many Reconfigure calls of a network failed
// in a row, and the last one's message.
type reconfigureFailure struct {
	count   int
	message string
}

// reconfigureBackoff is the wait after the failures-th Reconfigure call
// in a row failed: one second, doubling up to a minute.
func reconfigureBackoff(failures int) time.Duration {
	return min(time.Second<<min(max(failures-1, 0), 6), time.Minute)
}
