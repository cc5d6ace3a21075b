package fabric

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
)

// The members of a channel of spec.fabric.channels change on a running
// network: the spec names the new ones (PUT
// /networks/{name}/channels/{channel}), and Reconfigure brings the
// channel to it. An organisation added to a channel is made a member by
// a config update its current members' admins sign, as the channel's
// Application policy (MAJORITY Admins) needs; then its peers join the
// channel, its anchor peers are set on it, and it is caught up with the
// chaincode committed there (installed and approved, as a new
// organisation is on the shared channel). One taken out is removed from
// the configuration alike; its peers keep the blocks they had, and are
// no longer asked about the channel. The plan records the members once
// the channel has them (see withMembers), so that the gateway, the
// ledger and the explorer follow.

var (
	_ chain.Reconfigurer        = (*Driver)(nil)
	_ chain.ReconfigureReporter = (*Driver)(nil)
)

// Reconfiguring implements chain.ReconfigureReporter: the channels of
// spec.fabric.channels being made (see addchannel.go), and those whose
// members plan does not record as the spec's, or whose change is
// recorded as under way. Peers are not added or
// removed meanwhile: Reconfigure runs once the nodes are the spec's, and
// joins the peers of an organisation it adds.
func (d *Driver) Reconfiguring(spec *apis.NetworkSpec, plan *chain.Plan) string {
	if spec.Fabric == nil {
		return ""
	}
	var parts []string
	for _, want := range spec.Fabric.Channels {
		have, ok := planChannel(plan, want.Name)
		if !ok || plan.Artifact(creatingPath(want.Name)) != nil {
			parts = append(parts, fmt.Sprintf("channel %s: making it", want.Name))
			continue
		}
		add, remove := memberChange(have.orgs, want.Organizations)
		switch {
		case len(add) > 0 || len(remove) > 0:
			parts = append(parts, fmt.Sprintf("channel %s: %s", want.Name, describeChange(add, remove)))
		case plan.Artifact(changingPath(want.Name)) != nil:
			parts = append(parts, fmt.Sprintf("channel %s: changing its members", want.Name))
		}
	}
	if r := renewing(spec, plan, time.Now()); r != "" {
		parts = append(parts, r)
	}
	return strings.Join(parts, "; ")
}

// Reconfigure implements chain.Reconfigurer: it makes the first channel
// of the spec the plan has no genesis block of, or is still making (see
// addchannel.go), else brings the first channel whose members as the
// plan records them are not the spec's to the spec, and records its
// members once they are. A call is bounded (admitWait a
// step); a step left undone is done on the next call. The organisations
// being added or removed are recorded first (see changingPath), so that
// a spec that changes again before the channel has the last one still
// brings each of them to it: their membership is not known until done.
func (d *Driver) Reconfigure(ctx context.Context, n *apis.Network, plan *chain.Plan) (chain.Reconfigured, error) {
	var res chain.Reconfigured
	for _, want := range channelsOf(n)[1:] {
		if plan.Artifact(BlockPath(want.name)) == nil || plan.Artifact(creatingPath(want.name)) != nil {
			// A channel added to the running network (see addchannel.go).
			if res.Plan != nil || res.Pending != "" {
				res.Pending = strings.TrimPrefix(res.Pending+"; making channel "+want.name, "; ")
				continue
			}
			if plan.Artifact(BlockPath(want.name)) == nil {
				// The block is stored before any node joins it: a
				// block made again would differ (its nonce and time), and
				// nodes joined with two would never agree.
				next, err := withNewChannel(n, plan, want)
				if err != nil {
					return res, err
				}
				res.Plan, res.Pending = next, fmt.Sprintf("channel %s: making it (its genesis block recorded)", want.name)
				return res, nil
			}
			c, _ := planChannel(plan, want.name)
			res.Pending = fmt.Sprintf("channel %s: making it", want.name)
			done, waiting, err := d.makeChannel(ctx, n, plan, c)
			if waiting != "" {
				res.Pending += " (" + waiting + ")"
			}
			if err != nil || !done {
				return res, err
			}
			next := *plan
			next.Artifacts = slices.DeleteFunc(slices.Clone(plan.Artifacts), func(f runtime.File) bool { return f.Path == creatingPath(want.name) })
			plan, res.Plan, res.Pending = &next, &next, ""
			res.Done = fmt.Sprintf("channel %s made; its members are %s", want.name, strings.Join(c.orgs, ", "))
			continue
		}
		have, ok := planChannel(plan, want.name)
		if !ok {
			return res, fmt.Errorf("channel %s: the plan has no genesis block of it", want.name)
		}
		add, remove := memberChange(have.orgs, want.orgs)
		var changing []string
		if b := plan.Artifact(changingPath(want.name)); b != nil {
			if err := json.Unmarshal(b, &changing); err != nil {
				return res, fmt.Errorf("channel %s: %s: %w", want.name, changingPath(want.name), err)
			}
		}
		for _, o := range changing {
			switch {
			case slices.Contains(add, o) || slices.Contains(remove, o):
			case want.has(o):
				add = append(add, o)
			case have.has(o) || slices.ContainsFunc(plan.Nodes, func(pn chain.PlannedNode) bool { return pn.Organization == o }):
				remove = append(remove, o)
			}
		}
		if len(add) == 0 && len(remove) == 0 && changing == nil {
			continue
		}
		if res.Plan != nil || res.Pending != "" {
			res.Pending = strings.TrimPrefix(res.Pending+"; changing the members of channel "+want.name, "; ")
			continue
		}
		touched := append(slices.Clone(add), remove...)
		if !slices.Equal(touched, changing) {
			next, err := withArtifact(plan, changingPath(want.name), touched)
			if err != nil {
				return res, err
			}
			plan, res.Plan = next, next
		}
		res.Pending = fmt.Sprintf("channel %s: %s", want.name, describeChange(add, remove))
		done, err := changeMembers(ctx, n, plan, have, add, remove)
		if err != nil || !done {
			return res, err
		}
		next, err := withMembers(plan, want.name, want.orgs)
		if err != nil {
			return res, err
		}
		next.Artifacts = slices.DeleteFunc(next.Artifacts, func(f runtime.File) bool { return f.Path == changingPath(want.name) })
		res.Plan, res.Pending = next, ""
		res.Done = fmt.Sprintf("channel %s: %s; its members are %s", want.name, describeChange(add, remove), strings.Join(want.orgs, ", "))
	}
	if res.Plan != nil || res.Pending != "" || res.Done != "" {
		return res, nil
	}
	return d.renewCertificates(ctx, n, plan, time.Now())
}

// changingPath is the artifact that records the organisations whose
// membership of channel name is being changed.
func changingPath(name string) string { return dirChannel + "/" + name + ".changing" }

// memberChange are the organisations of want that have is without, and
// those of have that want is without.
func memberChange(have, want []string) (add, remove []string) {
	for _, o := range want {
		if !slices.Contains(have, o) {
			add = append(add, o)
		}
	}
	for _, o := range have {
		if !slices.Contains(want, o) {
			remove = append(remove, o)
		}
	}
	return add, remove
}

func describeChange(add, remove []string) string {
	var parts []string
	if len(add) > 0 {
		parts = append(parts, "adding "+strings.Join(add, ", "))
	}
	if len(remove) > 0 {
		parts = append(parts, "removing "+strings.Join(remove, ", "))
	}
	return strings.Join(parts, ", ")
}

// changeMembers takes channel have to want's members: the organisations
// of add join it first, while its members sign, then those of remove
// leave it. It reports true once every step is done.
func changeMembers(ctx context.Context, n *apis.Network, plan *chain.Plan, have fabricChannel, add, remove []string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	// Updates are made against the configuration of a peer that has
	// been a member for a while, of an organisation that stays when
	// there is one.
	stays := fabricChannel{name: have.name, orgs: slices.DeleteFunc(slices.Clone(have.orgs), func(o string) bool { return slices.Contains(remove, o) })}
	reader, err := channelMember(n, plan, stays)
	if err != nil {
		if reader, err = channelMember(n, plan, have); err != nil {
			return false, fmt.Errorf("channel %s: %w", have.name, err)
		}
	}
	for _, org := range add {
		done, err := joinChannel(ctx, n, plan, have.name, org, reader)
		if err != nil || !done {
			return false, err
		}
	}
	if len(remove) > 0 && slices.Contains(remove, reader.Organization) {
		// No member that stays has run for a while: a new one reads.
		if reader, err = channelMember(n, plan, fabricChannel{name: have.name, orgs: add}); err != nil {
			return false, fmt.Errorf("channel %s: %w", have.name, err)
		}
	}
	for _, org := range remove {
		if err := removeFromChannel(ctx, n, plan, have.name, org, reader); err != nil {
			return false, err
		}
	}
	return true, nil
}

// joinChannel makes organisation org a member of channel ch: the config
// update that adds it, made against reader's configuration; its peers
// joined with the channel's genesis block; its anchor peers; the
// chaincode committed on the channel, installed on its peers and
// approved by it. It reports false while a peer still pulls the
// channel's blocks.
func joinChannel(ctx context.Context, n *apis.Network, plan *chain.Plan, ch, org string, reader chain.PlannedNode) (bool, error) {
	block := plan.Artifact(BlockPath(ch))
	if block == nil {
		return false, fmt.Errorf("the plan has no genesis block of channel %s", ch)
	}
	a, err := loadAdmin(plan, org)
	if err != nil {
		return false, err
	}
	if err := addOrganization(ctx, n, plan, ch, org, reader); err != nil {
		return false, err
	}
	var peers []chain.PlannedNode
	for _, pn := range plan.Nodes {
		if pn.Role == apis.RoleFull && pn.Organization == org && !pn.Joining {
			peers = append(peers, pn)
		}
	}
	if len(peers) == 0 {
		return false, fmt.Errorf("organisation %s has no peer to join channel %s", org, ch)
	}
	for _, pn := range peers {
		if _, err := joinPeer(ctx, pn, a, ch, block); err != nil {
			return false, err
		}
	}
	if err := setAnchors(ctx, n, plan, ch, org, reader); err != nil {
		return false, err
	}
	done := true
	for _, pn := range peers {
		ok, err := catchUpChaincode(ctx, n, plan, ch, reader, pn, a)
		if err != nil {
			return false, err
		}
		done = done && ok
	}
	return done, nil
}

// validateChannelChange checks how the members of spec.fabric.channels
// change on a running network: the channels it has stay, in their order,
// and new ones come at the end, every member with a running peer and an
// orderer running to join them; an organisation added to one has a
// running peer to join it; and a peer of a current member and an orderer
// run to make and order the config update (status is the network as it
// runs).
func validateChannelChange(old, spec *apis.NetworkSpec, status *apis.NetworkStatus) apis.ErrorList {
	var errs apis.ErrorList
	var was, is []apis.FabricChannel
	if old.Fabric != nil {
		was = old.Fabric.Channels
	}
	if spec.Fabric != nil {
		is = spec.Fabric.Channels
	}
	if len(is) < len(was) || !slices.EqualFunc(was, is[:len(was)], func(a, b apis.FabricChannel) bool { return a.Name == b.Name }) {
		errs.Add("spec.fabric.channels", "channels are not removed or renamed on a running network; change their organizations, or add a channel at the end")
		return errs
	}
	running := map[string]bool{}
	orderer := false
	// down are the nodes not running, by organisation ("" for the
	// orderers): a channel being made is joined by every orderer and
	// every peer of its members.
	down := map[string][]string{}
	if status != nil {
		for _, s := range status.Nodes {
			up := s.Phase == apis.NodeRunning && !s.Joining
			if up && s.Role == apis.RoleFull {
				running[s.Organization] = true
			}
			orderer = orderer || up && s.Role == apis.RoleValidator
			switch {
			case up:
			case s.Role == apis.RoleValidator:
				down[""] = append(down[""], s.Name)
			case s.Role == apis.RoleFull:
				down[s.Organization] = append(down[s.Organization], s.Name)
			}
		}
	}
	for i, c := range is[len(was):] {
		i += len(was)
		p := apis.Index("spec.fabric.channels", i)
		for j, o := range c.Organizations {
			switch {
			case !running[o]:
				errs.Add(apis.Index(apis.Path(p, "organizations"), j), "organisation %s has no running peer to join channel %s", o, c.Name)
			case len(down[o]) > 0:
				errs.Add(apis.Index(apis.Path(p, "organizations"), j), "%v of organisation %s do not run: every peer of a member joins channel %s as it is made", down[o], o, c.Name)
			}
		}
		switch {
		case status != nil && !orderer:
			errs.Add(p, "no orderer runs to join channel %s", c.Name)
		case len(down[""]) > 0:
			errs.Add(p, "%v do not run: every orderer joins channel %s as it is made", down[""], c.Name)
		}
	}
	for i, c := range is[:len(was)] {
		add, remove := memberChange(was[i].Organizations, c.Organizations)
		if len(add) == 0 && len(remove) == 0 {
			continue
		}
		p := apis.Path(apis.Index("spec.fabric.channels", i), "organizations")
		for j, o := range c.Organizations {
			if slices.Contains(add, o) && !running[o] {
				errs.Add(apis.Index(p, j), "organisation %s has no running peer to join channel %s", o, c.Name)
			}
		}
		if status == nil {
			continue
		}
		if !slices.ContainsFunc(was[i].Organizations, func(o string) bool { return running[o] }) {
			errs.Add(p, "no peer of a member of channel %s runs to read its configuration from", c.Name)
		}
		if !orderer {
			errs.Add(p, "no orderer runs to order the update of channel %s's members", c.Name)
		}
	}
	return errs
}
