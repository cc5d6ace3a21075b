package api

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/chain"
)

// ScaleRequest sets how many validators and full nodes a running network
// has; a count left out stays as it is. On a network whose nodes belong
// to organizations, Organization names whose counts change. On a Fabric
// network, Peers is how many peers Organization runs, an organization
// the network does not have yet is added with them (a member of the
// channel every organization shares alone), and one with Peers 0 leaves,
// the channels of spec.fabric.channels too; or Orderers is how many
// orderers its ordering service runs.
type ScaleRequest struct {
	Organization string `json:"organization,omitempty"`
	Validators   *int   `json:"validators,omitempty"`
	FullNodes    *int   `json:"fullNodes,omitempty"`
	Peers        *int   `json:"peers,omitempty"`
	Orderers     *int   `json:"orderers,omitempty"`
}

// scaleNetwork answers PUT /networks/{name}/scale: it changes the spec's
// node counts, which the controller then carries out (new nodes planned
// and started, validators admitted or retired by the chain's own rules).
// Nodes are added and removed at the end of the list: validator-3 goes
// before validator-2.
func (a *API) scaleNetwork(w http.ResponseWriter, r *http.Request) {
	var req ScaleRequest
	if !decodeBody(w, r, &req) {
		return
	}
	// Retry on conflict: the controller writes status concurrently.
	for range 10 {
		n, scope, ok := a.getStored(w, r)
		if !ok || !a.allow(w, r, auth.NetworkWrite, auth.Scope{Org: scope.Org, Network: scope.Network}) {
			return
		}
		if ai := auditFrom(r.Context()); ai != nil {
			ai.detail = fmt.Sprintf("scale %s", scaleDetail(req))
		}
		old := n.Spec
		old.Organizations = slices.Clone(n.Spec.Organizations)
		errs := applyScale(&n.Spec, req)
		if invalid(w, r, errs) {
			return
		}
		if slices.Equal(old.Nodes(), n.Spec.Nodes()) {
			writeJSON(w, http.StatusOK, n)
			return
		}
		if !a.scalable(w, r, n, &old) || !a.consortiumMembers(w, r, n, len(old.Organizations)) {
			return
		}
		if a.storeChange(w, r, n, "ScaleRequested", fmt.Sprintf("from %d to %d nodes: %s", len(old.Nodes()), len(n.Spec.Nodes()), scaleDetail(req))) {
			return
		}
	}
	writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: "the network kept changing; try again"})
}

// applyScale sets the counts of req in spec, naming what is wrong.
func applyScale(spec *apis.NetworkSpec, req ScaleRequest) apis.ErrorList {
	var errs apis.ErrorList
	if spec.Chain == apis.ChainFabric {
		return applyPeers(spec, req)
	}
	if req.Peers != nil || req.Orderers != nil {
		errs.Add("", "peers and orderers apply only to chain %s; give validators or fullNodes", apis.ChainFabric)
		return errs
	}
	if req.Validators == nil && req.FullNodes == nil {
		errs.Add("", "give validators, fullNodes or both")
		return errs
	}
	validators, fullNodes := &spec.Validators, &spec.FullNodes
	switch {
	case len(spec.Organizations) > 0 && req.Organization == "":
		errs.Add("organization", "is required: the network's nodes belong to its organizations %s", orgNames(spec))
		return errs
	case len(spec.Organizations) > 0:
		i := slices.IndexFunc(spec.Organizations, func(o apis.OrganizationNodes) bool { return o.Name == req.Organization })
		if i < 0 {
			errs.Add("organization", "%q is not one of the network's organizations %s", req.Organization, orgNames(spec))
			return errs
		}
		validators, fullNodes = &spec.Organizations[i].Validators, &spec.Organizations[i].FullNodes
	case req.Organization != "":
		errs.Add("organization", "the network's nodes belong to no organization; leave it out")
		return errs
	}
	if req.Validators != nil {
		*validators = *req.Validators
	}
	if req.FullNodes != nil {
		*fullNodes = *req.FullNodes
	}
	return errs
}

// applyPeers sets the peers of a Fabric network's organization, which is
// added when the network has none of that name, and taken out with peers
// 0.
func applyPeers(spec *apis.NetworkSpec, req ScaleRequest) apis.ErrorList {
	var errs apis.ErrorList
	if req.Validators != nil || req.FullNodes != nil {
		errs.Add("", "a %s network's organizations run peers: give organization and peers, or orderers, not validators or fullNodes", apis.ChainFabric)
	}
	if req.Orderers != nil {
		if req.Organization != "" || req.Peers != nil {
			errs.Add("", "give organization and peers, or orderers, not both: one change at a time")
			return errs
		}
		if len(errs) > 0 {
			return errs
		}
		if spec.Fabric == nil {
			spec.Fabric = &apis.FabricSpec{}
		} else {
			f := *spec.Fabric
			spec.Fabric = &f
		}
		spec.Fabric.Orderers = *req.Orderers
		return nil
	}
	if req.Organization == "" {
		errs.Add("organization", "is required: the organization whose peers change, or a new one to add (now %s)", orgNames(spec))
	}
	if req.Peers == nil {
		errs.Add("peers", "is required")
	}
	if len(errs) > 0 {
		return errs
	}
	i := slices.IndexFunc(spec.Organizations, func(o apis.OrganizationNodes) bool { return o.Name == req.Organization })
	switch {
	case *req.Peers == 0 && i < 0:
		errs.Add("organization", "%q is not one of the network's organizations %s, which peers 0 would take out", req.Organization, orgNames(spec))
	case *req.Peers == 0:
		spec.Organizations = slices.Delete(spec.Organizations, i, i+1)
		errs = leaveChannels(spec, req.Organization)
	case i < 0:
		spec.Organizations = append(spec.Organizations, apis.OrganizationNodes{Name: req.Organization, Peers: *req.Peers})
	default:
		spec.Organizations[i].Peers = *req.Peers
	}
	return errs
}

// leaveChannels takes organization org, which leaves the network, out of
// the channels of spec.fabric.channels, in a copy of the spec's Fabric
// settings; one it is the only member of is not left with none.
func leaveChannels(spec *apis.NetworkSpec, org string) apis.ErrorList {
	var errs apis.ErrorList
	if spec.Fabric == nil {
		return nil
	}
	f := *spec.Fabric
	f.Channels = slices.Clone(f.Channels)
	for i, c := range f.Channels {
		if !slices.Contains(c.Organizations, org) {
			continue
		}
		if len(c.Organizations) == 1 {
			errs.Add("organization", "%q is the only member of channel %s (spec.fabric.channels[%d]), which would have none: give the channel another member first (PUT /networks/{name}/channels/%s)", org, c.Name, i, c.Name)
			continue
		}
		f.Channels[i].Organizations = slices.DeleteFunc(slices.Clone(c.Organizations), func(o string) bool { return o == org })
	}
	spec.Fabric = &f
	return errs
}

func orgNames(spec *apis.NetworkSpec) []string {
	var names []string
	for _, o := range spec.Organizations {
		names = append(names, o.Name)
	}
	return names
}

func scaleDetail(req ScaleRequest) string {
	s := ""
	if req.Organization != "" {
		s = "organization " + req.Organization + ": "
	}
	if req.Validators != nil {
		s += fmt.Sprintf("validators %d ", *req.Validators)
	}
	if req.FullNodes != nil {
		s += fmt.Sprintf("fullNodes %d", *req.FullNodes)
	}
	if req.Peers != nil {
		s += fmt.Sprintf("peers %d", *req.Peers)
	}
	if req.Orderers != nil {
		s += fmt.Sprintf("orderers %d", *req.Orderers)
	}
	return s
}

// scalable answers, and returns false, when n cannot go from old to its
// spec now: a spec that is not valid, a chain that cannot scale, a network
// that is not running or is still carrying out the last change, or a
// change the chain could not survive.
func (a *API) scalable(w http.ResponseWriter, r *http.Request, n *apis.Network, old *apis.NetworkSpec) bool {
	errs := apis.ValidateNetwork(n, a.opts.Registries)
	if a.opts.Validate != nil {
		errs = append(errs, a.opts.Validate(&n.Spec)...)
	}
	if len(errs) > 0 {
		writeProblem(w, r, Problem{Type: ProblemInvalid, Status: http.StatusUnprocessableEntity, Detail: "the network spec would not be valid", Errors: errs})
		return false
	}
	conflict := func(format string, args ...any) bool {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: fmt.Sprintf(format, args...)})
		return false
	}
	drv, err := chain.Get(n.Spec.Chain)
	if err != nil {
		return conflict("%v", err)
	}
	scaler, ok := drv.(chain.Scaler)
	if !ok {
		return conflict("the %s driver cannot change the nodes of a running network", n.Spec.Chain)
	}
	if n.Metadata.DeletionTimestamp != nil || n.Status.RunningSince == nil {
		return conflict("network %s is %s; scale a network that has been running", n.Metadata.Name, n.Status.Phase)
	}
	// The nodes run in the order they were added, which need not be the
	// spec's: a validator added after a full node comes after it.
	names := map[string]bool{}
	for _, ns := range old.Nodes() {
		names[ns.Name] = true
	}
	for _, ns := range n.Status.Nodes {
		if ns.Joining || !names[ns.Name] || len(n.Status.Nodes) != len(names) {
			return conflict("network %s is still carrying out its last change (%s); wait until its nodes are those of its spec", n.Metadata.Name, n.Status.Message)
		}
	}
	if rr, ok := drv.(chain.ReconfigureReporter); ok && !slices.Equal(old.Nodes(), n.Spec.Nodes()) {
		plan, err := a.storedPlan(r.Context(), n)
		if err != nil {
			a.storeError(w, r, err)
			return false
		}
		if busy := rr.Reconfiguring(old, plan); busy != "" {
			return conflict("network %s is still changing its channels or renewing its certificates (%s); change its nodes once that is done", n.Metadata.Name, busy)
		}
	}
	if errs := scaler.ValidateScale(old, &n.Spec, &n.Status); len(errs) > 0 {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: "the chain could not go on after this change", Errors: errs})
		return false
	}
	return true
}

// consortiumMembers answers, and returns false, when an organization
// added to a consortium network (those from index from on) is not a
// member of its consortium, as creating the network would.
func (a *API) consortiumMembers(w http.ResponseWriter, r *http.Request, n *apis.Network, from int) bool {
	c := n.Spec.Consortium
	if c == "" || len(n.Spec.Organizations) <= from {
		return true
	}
	cons, err := a.opts.Store.GetConsortium(r.Context(), c)
	if err != nil {
		a.storeError(w, r, err)
		return false
	}
	var errs apis.ErrorList
	for i := from; i < len(n.Spec.Organizations); i++ {
		if o := n.Spec.Organizations[i]; !slices.Contains(cons.Members, o.Name) {
			errs.Add("organization", "%q is not a member of consortium %s (members: %v)", o.Name, c, cons.Members)
		}
	}
	return !invalid(w, r, errs)
}
