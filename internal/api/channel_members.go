package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/chain/fabric"
)

// ChannelMembersRequest sets the member organizations of one of a
// running Fabric network's channels of spec.fabric.channels: each one of
// the network's organizations, at least one.
type ChannelMembersRequest struct {
	Organizations []string `json:"organizations"`
}

// setChannelMembers answers PUT /networks/{name}/channels/{channel}: it
// sets the channel's organizations in the spec, which the controller then
// carries out (the channel's configuration updated, the new members'
// peers joined and caught up with its chaincode). The channel every
// organization shares changes by PUT /networks/{name}/scale instead.
func (a *API) setChannelMembers(w http.ResponseWriter, r *http.Request) {
	var req ChannelMembersRequest
	if !decodeBody(w, r, &req) {
		return
	}
	ch := chi.URLParam(r, "channel")
	// Retry on conflict: the controller writes status concurrently.
	for range 10 {
		n, scope, ok := a.getStored(w, r)
		if !ok || !a.allow(w, r, auth.NetworkWrite, auth.Scope{Org: scope.Org, Network: scope.Network}) {
			return
		}
		if ai := auditFrom(r.Context()); ai != nil {
			ai.detail = fmt.Sprintf("channel %s: organizations %s", ch, strings.Join(req.Organizations, ", "))
		}
		old := n.Spec
		i, errs := applyChannelMembers(n, ch, req)
		if i < 0 && len(errs) == 0 {
			writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: noChannel(n, ch)})
			return
		}
		if invalid(w, r, errs) {
			return
		}
		if slices.Equal(old.Fabric.Channels[i].Organizations, n.Spec.Fabric.Channels[i].Organizations) {
			writeJSON(w, http.StatusOK, n)
			return
		}
		if !a.scalable(w, r, n, &old) {
			return
		}
		if a.storeChange(w, r, n, "ChannelMembersRequested", fmt.Sprintf("channel %s: from %s to %s", ch,
			strings.Join(old.Fabric.Channels[i].Organizations, ", "), strings.Join(req.Organizations, ", "))) {
			return
		}
	}
	writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: "the network kept changing; try again"})
}

// applyChannelMembers sets the organizations of n's channel ch, one of
// spec.fabric.channels at index i, to req's, in a copy of the spec's
// Fabric settings, naming what is wrong. i is -1, with no error, when n
// has no such channel.
func applyChannelMembers(n *apis.Network, ch string, req ChannelMembersRequest) (int, apis.ErrorList) {
	var errs apis.ErrorList
	spec := &n.Spec
	if spec.Chain != apis.ChainFabric {
		return -1, nil
	}
	if ch == fabric.ChannelName(n.Metadata.Name, spec.Fabric) {
		errs.Add("channel", "%s is the channel every organization of the network shares: organizations join and leave it by PUT /networks/%s/scale", ch, n.Metadata.Name)
		return -1, errs
	}
	i := specChannel(n, ch)
	if i < 0 {
		return -1, nil
	}
	if len(req.Organizations) == 0 {
		errs.Add("organizations", "is required: at least one of the network's organizations %s; a channel is not left with none", orgNames(spec))
	}
	for j, o := range req.Organizations {
		f := apis.Index("organizations", j)
		switch {
		case !slices.ContainsFunc(spec.Organizations, func(on apis.OrganizationNodes) bool { return on.Name == o }):
			errs.Add(f, "%q is not one of the network's organizations %s", o, orgNames(spec))
		case slices.Index(req.Organizations, o) < j:
			errs.Add(f, "%q is named twice", o)
		}
	}
	if len(errs) > 0 {
		return i, errs
	}
	f := *spec.Fabric
	f.Channels = slices.Clone(f.Channels)
	f.Channels[i].Organizations = slices.Clone(req.Organizations)
	spec.Fabric = &f
	return i, nil
}
