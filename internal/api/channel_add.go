package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/chain/fabric"
)

// addChannel answers POST /networks/{name}/channels with a channel
// ({"name", "organizations"}) appended to a running Fabric network's
// spec.fabric.channels, checked as those a network is created with. The
// controller then makes it: its genesis block, every orderer and the
// members' peers joined, their anchor peers set.
func (a *API) addChannel(w http.ResponseWriter, r *http.Request) {
	var req apis.FabricChannel
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
			ai.detail = fmt.Sprintf("channel %s: organizations %s", req.Name, strings.Join(req.Organizations, ", "))
		}
		conflict := func(errs apis.ErrorList, format string, args ...any) {
			writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: fmt.Sprintf(format, args...), Errors: errs})
		}
		if n.Spec.Chain != apis.ChainFabric || n.Spec.Fabric == nil {
			conflict(nil, "network %s is a %s network, which has no channels", n.Metadata.Name, n.Spec.Chain)
			return
		}
		if req.Name != "" && (req.Name == fabric.ChannelName(n.Metadata.Name, n.Spec.Fabric) || specChannel(n, req.Name) >= 0) {
			var errs apis.ErrorList
			errs.Add("name", "network %s has a channel %s already", n.Metadata.Name, req.Name)
			conflict(errs, "network %s has a channel %s already; change its members with PUT /networks/%s/channels/%s", n.Metadata.Name, req.Name, n.Metadata.Name, req.Name)
			return
		}
		if invalid(w, r, fabric.ValidateNewChannel(&n.Spec, req)) {
			return
		}
		if n.Metadata.DeletionTimestamp != nil || n.Status.Phase != apis.PhaseRunning {
			conflict(nil, "network %s is %s; add a channel to a running network", n.Metadata.Name, n.Status.Phase)
			return
		}
		old := n.Spec
		f := *n.Spec.Fabric
		f.Channels = append(slices.Clone(f.Channels), apis.FabricChannel{Name: req.Name, Organizations: slices.Clone(req.Organizations)})
		n.Spec.Fabric = &f
		if !a.scalable(w, r, n, &old) {
			return
		}
		if a.storeChange(w, r, n, "ChannelAddRequested", fmt.Sprintf("channel %s of %s", req.Name, strings.Join(req.Organizations, ", "))) {
			return
		}
	}
	writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: "the network kept changing; try again"})
}
