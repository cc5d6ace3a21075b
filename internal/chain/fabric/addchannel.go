package fabric

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	"github.com/chaindock/chaindock/internal/runtime"
)

// A channel appended to spec.fabric.channels of a running network (POST
// /networks/{name}/channels) is made as Plan makes those a network is
// created with: Reconfigure, finding no genesis block of it in the plan,
// builds one (its members' MSPs, the orderers of the plan its
// consenters), records it and its members, and marks the channel as
// being made (see creatingPath). Then every orderer joins it through its
// participation API, the members' peers join it with the block, and each
// member sets its anchor peers on it, by the calls Bootstrap makes; the
// mark goes once they are done. Raft only: a BFT network has one channel
// (see validateChannels).

// creatingPath is the artifact that marks channel name as being made:
// its genesis block is in the plan, and its nodes have yet to join it.
func creatingPath(name string) string { return dirChannel + "/" + name + ".creating" }

// channelMade says why channel name of plan, one of spec.fabric.channels,
// cannot be used yet: a channel added to the running network is not
// until its genesis block is recorded and its nodes have joined it.
func channelMade(plan *chain.Plan, name string) error {
	switch {
	case plan == nil || name == plan.ChainID:
		return nil
	case plan.Artifact(BlockPath(name)) == nil || plan.Artifact(creatingPath(name)) != nil:
		return fmt.Errorf("channel %s is being made: its nodes have not all joined it yet; try again once the network says it is made", name)
	}
	return nil
}

// ValidateNewChannel checks channel c, to be appended to spec.fabric.channels
// of a running network, as validateChannels checks those a network is
// created with. The errors about c name its fields (name,
// organizations[1]); that the channel is taken is the caller's to say.
func ValidateNewChannel(spec *apis.NetworkSpec, c apis.FabricChannel) apis.ErrorList {
	s := *spec
	f := apis.FabricSpec{}
	if spec.Fabric != nil {
		f = *spec.Fabric
	}
	f.Channels = append(slices.Clone(f.Channels), c)
	s.Fabric = &f
	prefix := apis.Index("spec.fabric.channels", len(f.Channels)-1) + "."
	var errs apis.ErrorList
	for _, e := range validateChannels(&s) {
		e.Field = strings.TrimPrefix(e.Field, prefix)
		errs = append(errs, e)
	}
	return errs
}

// channelGenesis is the genesis block of channel c of a running network,
// made from plan as Plan makes it from the organisations and nodes it
// creates: the members' CA certificates, and the orderers the plan has
// now as its consenters and the orderer organisation's endpoints.
func channelGenesis(n *apis.Network, plan *chain.Plan, c fabricChannel) ([]byte, error) {
	member := func(name string) (channel.Organization, error) {
		o := channel.Organization{MSPID: MSPID(name)}
		for _, ca := range []struct {
			dir  string
			cert **x509.Certificate
		}{{artCA, &o.CACert}, {artTLSCA, &o.TLSCACert}} {
			raw := plan.Artifact(orgPath(name, ca.dir+"/cert.pem"))
			if raw == nil {
				return o, fmt.Errorf("the plan has no %s of organisation %s", ca.dir, name)
			}
			cert, err := pki.ParseCertPEM(raw)
			if err != nil {
				return o, fmt.Errorf("organisation %s: %s: %w", name, ca.dir, err)
			}
			*ca.cert = cert
		}
		return o, nil
	}
	spec := channel.Spec{Name: c.name}
	for _, name := range c.orgs {
		o, err := member(name)
		if err != nil {
			return nil, err
		}
		spec.PeerOrgs = append(spec.PeerOrgs, o)
	}
	ord, err := member(n.Spec.Fabric.OrdererOrg())
	if err != nil {
		return nil, err
	}
	for _, pn := range plan.Nodes {
		if pn.Role != apis.RoleValidator || pn.Joining {
			continue
		}
		cons, err := consenterOf(plan, pn)
		if err != nil {
			return nil, err
		}
		ord.OrdererEndpoints = append(ord.OrdererEndpoints, strings.TrimPrefix(pn.Endpoints[PortListen], "grpcs://"))
		spec.Consenters = append(spec.Consenters, cons)
	}
	if len(spec.Consenters) == 0 {
		return nil, fmt.Errorf("the plan has no orderer to order channel %s", c.name)
	}
	spec.OrdererOrgs = []channel.Organization{ord}
	return marshalGenesis(spec, n.Spec.Fabric.IsBFT())
}

// withNewChannel is plan with the genesis block of channel c, its
// members recorded, and c marked as being made.
func withNewChannel(n *apis.Network, plan *chain.Plan, c fabricChannel) (*chain.Plan, error) {
	block, err := channelGenesis(n, plan, c)
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", c.name, err)
	}
	out := *plan
	out.Artifacts = append(slices.Clone(plan.Artifacts), runtime.File{Path: BlockPath(c.name), Data: block, Mode: 0o644})
	next, err := withMembers(&out, c.name, c.orgs)
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", c.name, err)
	}
	return withArtifact(next, creatingPath(c.name), true)
}

// makeChannel has the nodes of plan join channel c, whose genesis block
// the plan has: every orderer, then its members' peers, then each member
// sets its anchor peers there. It reports true once all is done, else
// what it waits for.
func (d *Driver) makeChannel(ctx context.Context, n *apis.Network, plan *chain.Plan, c fabricChannel) (bool, string, error) {
	block := plan.Artifact(BlockPath(c.name))
	if block == nil {
		return false, "", fmt.Errorf("the plan has no genesis block of channel %s", c.name)
	}
	ctx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	var waiting []string
	for _, pn := range plan.Nodes {
		if pn.Role != apis.RoleValidator || pn.Joining {
			continue
		}
		a, err := loadAdmin(plan, pn.Organization)
		if err != nil {
			return false, "", err
		}
		// Every orderer joins before any is waited for: a Raft of
		// several has no leader until a majority has joined.
		ok, err := d.joinOrderer(ctx, pn, a, c.name, block)
		if err != nil {
			return false, "", err
		}
		if !ok {
			waiting = append(waiting, pn.Name)
		}
	}
	if len(waiting) > 0 {
		return false, "orderers joining: " + strings.Join(waiting, ", "), nil
	}
	var peers []chain.PlannedNode
	for _, pn := range plan.Nodes {
		if pn.Role == apis.RoleFull && !pn.Joining && c.has(pn.Organization) {
			peers = append(peers, pn)
		}
	}
	for _, pn := range peers {
		a, err := loadAdmin(plan, pn.Organization)
		if err != nil {
			return false, "", err
		}
		if _, err := joinPeer(ctx, pn, a, c.name, block); err != nil {
			return false, "", err
		}
	}
	for _, pn := range peers {
		ok, err := anchor(ctx, n, plan, c, pn)
		if err != nil {
			return false, "", err
		}
		if !ok {
			return false, "anchor peers of " + pn.Organization + ": no orderer runs", nil
		}
	}
	return true, "", nil
}
