package fabric

import (
	"context"
	"fmt"
	"slices"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// validateOrgChange checks how spec.organizations of a running network
// change: organisations keep their order, new ones come at the end, an
// organisation keeps at least one peer or leaves altogether, and one at
// least stays. Adding or removing an organisation, or an anchor peer, is
// a config update made from the channel's configuration as a member peer
// has it, and ordered: status must show both running.
func validateOrgChange(old, spec *apis.NetworkSpec, status *apis.NetworkStatus) apis.ErrorList {
	var errs apis.ErrorList
	oldAt := map[string]int{}
	for i, o := range old.Organizations {
		oldAt[o.Name] = i
	}
	last, added, updates := -1, false, false
	stays := map[string]bool{}
	for i, nw := range spec.Organizations {
		p := apis.Index("spec.organizations", i)
		j, ok := oldAt[nw.Name]
		if !ok {
			added, updates = true, true
			continue
		}
		stays[nw.Name] = true
		o := old.Organizations[j]
		switch {
		case added:
			errs.Add(apis.Path(p, "name"), "organisation %s was before the new ones: new organisations are added at the end", o.Name)
		case j < last:
			errs.Add(apis.Path(p, "name"), "organisation %s moved: organisations are not reordered on a running network", o.Name)
		}
		last = max(last, j)
		if nw.Resources != o.Resources {
			errs.Add(apis.Path(p, "resources"), "cannot change on a running network")
		}
		if nw.Peers < min(o.Peers, maxAnchors) {
			// One of its anchor peers goes: the others are named
			// anchors by a config update.
			updates = true
		}
	}
	var gone []string
	for _, o := range old.Organizations {
		if !stays[o.Name] {
			gone = append(gone, o.Name)
		}
	}
	if len(gone) > 0 {
		updates = true
		if len(stays) == 0 {
			errs.Add("spec.organizations", "would take out every organisation of the channel (%v): at least one stays; delete the network instead", gone)
		}
	}
	if f := spec.Fabric; f != nil {
		// An organisation that leaves is taken out of the other
		// channels too: the spec names it in none (PUT
		// /networks/{name}/scale does so for it).
		for i, c := range f.Channels {
			for j, o := range c.Organizations {
				if slices.Contains(gone, o) {
					errs.Add(apis.Index(apis.Path(apis.Index("spec.fabric.channels", i), "organizations"), j), "organisation %s leaves the network: it cannot stay a member of channel %s", o, c.Name)
				}
			}
		}
	}
	if updates && status != nil && len(stays) > 0 {
		peer, orderer := false, false
		for _, s := range status.Nodes {
			running := s.Phase == apis.NodeRunning && !s.Joining
			// The update is read from a peer of an organisation that
			// stays: a leaving one's is gone before it is done.
			peer = peer || running && s.Role == apis.RoleFull && !slices.Contains(gone, s.Organization)
			orderer = orderer || running && s.Role == apis.RoleValidator
		}
		if !peer {
			errs.Add("spec.organizations", "no peer of the channel runs to read its configuration from, which the update of its organisations or anchor peers is made of")
		}
		if !orderer {
			errs.Add("spec.organizations", "no orderer runs to order the update of the channel's organisations or anchor peers")
		}
	}
	return errs
}

// Retire implements chain.Scaler for an orderer about to be removed (see
// retireOrderer) and for a peer (see FullNodeAdmitter): the last of an
// organisation that leaves the network to go first takes the
// organisation out of the channel, by a config update that the admins of
// the channel's organisations sign, as for adding one; a peer that is one
// of its organisation's anchors, when the organisation stays, makes way
// for the next, by an update of the organisation's anchor peers. It
// reports true once a member peer has the update.
func (d *Driver) Retire(ctx context.Context, n *apis.Network, plan *chain.Plan, node chain.PlannedNode) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	if node.Role == apis.RoleValidator {
		return retireOrderer(ctx, n, plan, node)
	}
	wanted := map[string]bool{}
	for _, ns := range n.Spec.Nodes() {
		wanted[ns.Name] = true
	}
	staying := *plan
	staying.Nodes = slices.DeleteFunc(slices.Clone(plan.Nodes), func(pn chain.PlannedNode) bool { return !wanted[pn.Name] })
	org := node.Organization
	if !slices.ContainsFunc(n.Spec.Organizations, func(o apis.OrganizationNodes) bool { return o.Name == org }) {
		// Out of the other channels it is a member of first, then out
		// of the shared one, whose members sign nothing for the others.
		for _, name := range planChannelNames(plan) {
			c, ok := planChannel(plan, name)
			if !ok || !c.has(org) {
				continue
			}
			others := fabricChannel{name: name, orgs: slices.DeleteFunc(slices.Clone(c.orgs), func(o string) bool { return o == org })}
			reader, err := channelMember(n, &staying, others)
			if err != nil {
				return false, fmt.Errorf("channel %s: %w", name, err)
			}
			if err := removeFromChannel(ctx, n, plan, name, org, reader); err != nil {
				return false, err
			}
		}
		reader, err := memberPeer(n, &staying)
		if err != nil {
			return false, err
		}
		if err := removeFromChannel(ctx, n, plan, plan.ChainID, org, reader); err != nil {
			return false, err
		}
		return true, nil
	}
	if !slices.ContainsFunc(anchorsOf(plan, org), func(a chain.PlannedNode) bool { return a.Name == node.Name }) {
		return true, nil
	}
	for _, c := range planChannelsOfOrg(plan, org) {
		reader, err := channelMember(n, &staying, c)
		if err != nil {
			return false, err
		}
		if err := setAnchors(ctx, n, &staying, c.name, org, reader); err != nil {
			return false, err
		}
	}
	return true, nil
}

// removeFromChannel takes organisation org out of channel ch's
// configuration, unless it is out, with an update made against reader's
// configuration; it is done once reader has it.
func removeFromChannel(ctx context.Context, n *apis.Network, plan *chain.Plan, ch, org string, reader chain.PlannedNode) error {
	mspID := MSPID(org)
	cfg, err := channelConfig(ctx, plan, ch, reader)
	if err != nil {
		return err
	}
	if !hasOrg(cfg, mspID) {
		return nil
	}
	env, submitter, err := removeOrgUpdate(plan, ch, cfg, org)
	if err != nil {
		return err
	}
	err = orderUpdate(ctx, n, plan, ch, submitter, env, reader, func(cfg *cb.Config) (bool, error) { return !hasOrg(cfg, mspID), nil })
	if err != nil {
		return fmt.Errorf("remove organisation %s from channel %s: %w", mspID, ch, err)
	}
	return nil
}

// removeOrgUpdate is the config update that takes organisation org out
// of channel ch of configuration cfg, signed by the admins of the
// channel's organisations, and who submits it.
func removeOrgUpdate(plan *chain.Plan, ch string, cfg *cb.Config, org string) (*cb.Envelope, *admin, error) {
	u, err := channel.RemoveOrganization(ch, cfg, MSPID(org))
	if err != nil {
		return nil, nil, err
	}
	return signByAdmins(plan, u)
}

// signByAdmins signs u by the admin of every organisation its policy
// names whose admin the plan has, which is all of them on a network
// ChainDock made, and returns the envelope with the first signer, who
// submits it.
func signByAdmins(plan *chain.Plan, u *channel.Update) (*cb.Envelope, *admin, error) {
	names := map[string]string{}
	for _, pn := range plan.Nodes {
		if pn.Role == apis.RoleFull {
			names[MSPID(pn.Organization)] = pn.Organization
		}
	}
	var signers []channel.Signer
	var submitter *admin
	for _, id := range u.Policy.MSPIDs() {
		name, ok := names[id]
		if !ok {
			continue
		}
		sa, err := loadAdmin(plan, name)
		if err != nil {
			return nil, nil, err
		}
		s, err := signerOf(sa)
		if err != nil {
			return nil, nil, err
		}
		signers = append(signers, s)
		if submitter == nil {
			submitter = sa
		}
	}
	env, err := u.Sign(signers...)
	if err != nil {
		return nil, nil, err
	}
	return env, submitter, nil
}

// removeNodes is plan without the named nodes. An organisation that has
// no peer left is no member of the other channels either, as recorded
// (see withMembers): were it to come back, it would be a member of the
// shared channel alone.
func removeNodes(plan *chain.Plan, names []string) (*chain.Plan, error) {
	out := *plan
	out.Nodes, out.Artifacts = nil, slices.Clone(plan.Artifacts)
	for _, pn := range plan.Nodes {
		if !slices.Contains(names, pn.Name) {
			out.Nodes = append(out.Nodes, pn)
		}
	}
	if len(out.Nodes)+len(names) != len(plan.Nodes) {
		return nil, fmt.Errorf("remove %v: the plan has not all of them", names)
	}
	for _, name := range planChannelNames(plan) {
		before, ok := planChannel(plan, name)
		if !ok {
			continue
		}
		after, _ := planChannel(&out, name)
		if len(after.orgs) == len(before.orgs) {
			continue
		}
		next, err := withMembers(&out, name, after.orgs)
		if err != nil {
			return nil, err
		}
		out = *next
	}
	return &out, nil
}
