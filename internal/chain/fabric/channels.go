package fabric

import (
	"encoding/json"
	"slices"
	"strings"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/runtime"
)

// A network has one channel every peer organisation is a member of, the
// plan's ChainID: the one the explorer indexes, chaincode is deployed on,
// and calls go to unless they name another. spec.fabric.channels adds
// channels of some of the organisations: their peers join them, every
// orderer orders them, and each member organisation sets its anchor
// peers on each. Their genesis blocks are among the plan's artifacts, and
// their members, once changed on the running network (see members.go).

// maxChannels bounds spec.fabric.channels.
const maxChannels = 16

// fabricChannel is a channel of the network and its member organisations.
type fabricChannel struct {
	name string
	orgs []string
}

func (c fabricChannel) has(org string) bool { return slices.Contains(c.orgs, org) }

// channelsOf are the channels of network n: the one every organisation
// shares, then spec.fabric.channels.
func channelsOf(n *apis.Network) []fabricChannel {
	var all []string
	for _, o := range n.Spec.Organizations {
		all = append(all, o.Name)
	}
	out := []fabricChannel{{name: ChannelName(n.Metadata.Name, n.Spec.Fabric), orgs: all}}
	if f := n.Spec.Fabric; f != nil {
		for _, c := range f.Channels {
			out = append(out, fabricChannel{name: c.Name, orgs: c.Organizations})
		}
	}
	return out
}

// channelsOfOrg are the channels org is a member of.
func channelsOfOrg(n *apis.Network, org string) []fabricChannel {
	var out []fabricChannel
	for _, c := range channelsOf(n) {
		if c.has(org) {
			out = append(out, c)
		}
	}
	return out
}

// validateChannels checks spec.fabric.channels: valid names, none twice
// nor the network's shared channel (which needs the network's name, so
// only a channel named in spec.fabric.channel is compared), members that
// are organisations of the spec, each once, at least one.
func validateChannels(spec *apis.NetworkSpec) apis.ErrorList {
	var errs apis.ErrorList
	f := spec.Fabric
	if f == nil || len(f.Channels) == 0 {
		return nil
	}
	if len(f.Channels) > maxChannels {
		errs.Add("spec.fabric.channels", "%d channels, at most %d", len(f.Channels), maxChannels)
		return errs
	}
	if f.IsBFT() {
		// A BFT orderer's readiness is read from cluster metrics that
		// do not tell its channels apart.
		errs.Add("spec.fabric.channels", "more channels with BFT ordering are not supported yet; use etcdraft, or one channel")
		return errs
	}
	orgs := map[string]bool{}
	for _, o := range spec.Organizations {
		orgs[o.Name] = true
	}
	seen := map[string]bool{}
	if f.Channel != "" {
		seen[f.Channel] = true
	}
	for i, c := range f.Channels {
		p := apis.Index("spec.fabric.channels", i)
		switch msg := checkChannel(c.Name); {
		case c.Name == "":
			errs.Add(apis.Path(p, "name"), "required")
		case msg != "":
			errs.Add(apis.Path(p, "name"), "%s", msg)
		case seen[c.Name]:
			errs.Add(apis.Path(p, "name"), "channel %q is named twice (spec.fabric.channel is the channel every organisation shares)", c.Name)
		}
		seen[c.Name] = true
		if len(c.Organizations) == 0 {
			errs.Add(apis.Path(p, "organizations"), "required: at least one of the peer organisations")
		}
		members := map[string]bool{}
		for j, o := range c.Organizations {
			q := apis.Index(apis.Path(p, "organizations"), j)
			switch {
			case !orgs[o]:
				errs.Add(q, "%q is not one of spec.organizations", o)
			case members[o]:
				errs.Add(q, "%q is named twice", o)
			}
			members[o] = true
		}
	}
	return errs
}

// channelMember is a peer that runs, has joined, and whose organisation
// is a member of channel c.
func channelMember(n *apis.Network, plan *chain.Plan, c fabricChannel) (chain.PlannedNode, error) {
	sub := *plan
	sub.Nodes = slices.DeleteFunc(slices.Clone(plan.Nodes), func(pn chain.PlannedNode) bool { return !c.has(pn.Organization) })
	sub.ChainID = c.name
	return memberPeer(n, &sub)
}

// planChannel is channel name of plan as a ledger knows it, without the
// network's spec: the shared channel (the plan's ChainID) has every
// organisation of the plan, another the members recorded last among the
// plan's artifacts (see withMembers), else those its genesis block names;
// either way only organisations that still have peers in the plan.
func planChannel(plan *chain.Plan, name string) (fabricChannel, bool) {
	var orgs []string
	for _, pn := range plan.Nodes {
		if pn.Role == apis.RoleFull && !slices.Contains(orgs, pn.Organization) {
			orgs = append(orgs, pn.Organization)
		}
	}
	if name == "" || name == plan.ChainID {
		return fabricChannel{name: plan.ChainID, orgs: orgs}, true
	}
	raw := plan.Artifact(BlockPath(name))
	if raw == nil {
		return fabricChannel{}, false
	}
	if rec := plan.Artifact(membersPath(name)); rec != nil {
		var members []string
		if err := json.Unmarshal(rec, &members); err != nil {
			return fabricChannel{}, false
		}
		c := fabricChannel{name: name}
		for _, o := range orgs {
			if slices.Contains(members, o) {
				c.orgs = append(c.orgs, o)
			}
		}
		return c, true
	}
	var b cb.Block
	if err := proto.Unmarshal(raw, &b); err != nil {
		return fabricChannel{}, false
	}
	cfg, err := channel.ConfigFromBlock(&b)
	if err != nil {
		return fabricChannel{}, false
	}
	c := fabricChannel{name: name}
	for _, o := range orgs {
		if hasOrg(cfg, MSPID(o)) {
			c.orgs = append(c.orgs, o)
		}
	}
	return c, true
}

// planChannelsOfOrg are the channels org is a member of as plan records
// them, the shared one first.
func planChannelsOfOrg(plan *chain.Plan, org string) []fabricChannel {
	var out []fabricChannel
	for _, name := range append([]string{plan.ChainID}, planChannelNames(plan)...) {
		if c, ok := planChannel(plan, name); ok && c.has(org) {
			out = append(out, c)
		}
	}
	return out
}

// planChannelNames are the channels of plan besides the shared one: those
// whose genesis blocks are among its artifacts.
func planChannelNames(plan *chain.Plan) []string {
	var out []string
	for _, f := range plan.Artifacts {
		name, ok := strings.CutPrefix(f.Path, dirChannel+"/")
		if !ok {
			continue
		}
		if name, ok = strings.CutSuffix(name, ".block"); ok && name != plan.ChainID {
			out = append(out, name)
		}
	}
	return out
}

// peerOn is a peer of plan whose organisation is a member of c: node
// when it is such a peer, else the first of org, else the first
// member's.
func peerOn(plan *chain.Plan, c fabricChannel, node chain.PlannedNode, org string) (chain.PlannedNode, bool) {
	if node.Role == apis.RoleFull && c.has(node.Organization) {
		return node, true
	}
	var first *chain.PlannedNode
	for i, pn := range plan.Nodes {
		if pn.Role != apis.RoleFull || !c.has(pn.Organization) {
			continue
		}
		if pn.Organization == org {
			return pn, true
		}
		if first == nil {
			first = &plan.Nodes[i]
		}
	}
	if first == nil {
		return chain.PlannedNode{}, false
	}
	return *first, true
}

// membersPath is the artifact that records the member organisations of
// channel name: those it was made with, then those it has once they
// changed on the running network. A plan made before it was recorded
// has the genesis block's alone.
func membersPath(name string) string { return dirChannel + "/" + name + ".members" }

// withMembers is plan with orgs recorded as the members of channel name.
func withMembers(plan *chain.Plan, name string, orgs []string) (*chain.Plan, error) {
	return withArtifact(plan, membersPath(name), orgs)
}

// withArtifact is plan with v, in JSON, as its artifact at path.
func withArtifact(plan *chain.Plan, path string, v any) (*chain.Plan, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := *plan
	out.Artifacts = slices.DeleteFunc(slices.Clone(plan.Artifacts), func(f runtime.File) bool { return f.Path == path })
	out.Artifacts = append(out.Artifacts, runtime.File{Path: path, Data: b, Mode: 0o600})
	return &out, nil
}
