package fabric

import (
	"context"
	"fmt"
	"slices"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

// A Raft ordering service grows and shrinks one consenter at a time, as
// etcdraft requires: a new orderer is made a consenter by a config update
// of the channel (its address and TLS certificates in the ConsensusType
// value, its address among its organisation's orderer endpoints), signed
// by the orderer organisation's admin; then it joins the channel through
// its participation API with the channel's latest config block, and
// pulls the blocks before it from the other orderers. An orderer that
// goes is taken out of the consenters and endpoints by the same kind of
// update before it stops. A BFT ordering service changes the same way,
// one consenter per update: the update maps the orderer in the Orderers
// value (with its enrolment certificate, which its block signatures are
// checked against, and a fresh id) and rewrites the BlockValidation
// policy to the new quorum (see channel.AddConsenter).

// validateOrdererChange checks a change of spec.fabric.orderers: the
// counts a new network may have, and every orderer running, so that the
// consensus keeps its quorum while a consenter comes or goes. A Raft
// service goes between 1, 3 and 5 orderers, a BFT one between 1, 4 and 7
// (3f+1, see bftOrderers): the orderers between are passed through one
// at a time, and tolerate no more faults than the count below them.
func validateOrdererChange(old, spec *apis.NetworkSpec, status *apis.NetworkStatus) apis.ErrorList {
	var errs apis.ErrorList
	a, b := old.Fabric.OrdererCount(), spec.Fabric.OrdererCount()
	if a == b {
		return nil
	}
	const p = "spec.fabric.orderers"
	consensus, quorum := "Raft", "a majority"
	switch bft := spec.Fabric.IsBFT(); {
	case bft != old.Fabric.IsBFT():
		return errs // the change of consensus is refused by ValidateScale
	case bft && !slices.Contains(bftOrderers, b):
		errs.Add(p, "must be 1, 4 or 7 with consensus %s, not %d: BFT with 3f+1 orderers survives f faulty ones, and %d survive no more than %d; ChainDock passes through the counts between one orderer at a time", apis.FabricConsensusBFT, b, b, bftFaults(b))
		return errs
	case bft:
		consensus, quorum = "BFT", "a quorum (2f+1 of 3f+1)"
	case b != 1 && b != 3 && b != 5:
		errs.Add(p, "must be 1, 3 or 5, not %d: Raft needs a majority of its orderers, so an even number survives no more failures than one fewer", b)
		return errs
	}
	if status == nil {
		return errs
	}
	var down []string
	peer := false
	for _, s := range status.Nodes {
		running := s.Phase == apis.NodeRunning && !s.Joining
		if s.Role == apis.RoleValidator && !running {
			down = append(down, s.Name)
		}
		peer = peer || running && s.Role == apis.RoleFull
	}
	if len(down) > 0 {
		errs.Add(p, "cannot change from %d to %d while %v do not run: %s takes a consenter in or out only with the others up, as it needs %s of the new count before the new one has caught up", a, b, down, consensus, quorum)
	}
	if !peer {
		errs.Add(p, "no peer of the channel runs to read its configuration from, which the update of its consenters is made of")
	}
	return errs
}

// consenterOf is orderer node as the channel's consensus knows it: its
// listen address and its TLS certificate, from the plan, and (read by
// BFT) its enrolment certificate.
func consenterOf(plan *chain.Plan, node chain.PlannedNode) (channel.Consenter, error) {
	addr, err := anchorAddress(node)
	if err != nil {
		return channel.Consenter{}, err
	}
	c := channel.Consenter{Host: addr.Host, Port: addr.Port, MSPID: MSPID(node.Organization)}
	tlsPEM := nodeFile(node, dirTLS+"/"+pki.TLSCert)
	if tlsPEM == nil {
		return channel.Consenter{}, fmt.Errorf("%s: the plan has no TLS certificate of it", node.Name)
	}
	cert, err := pki.ParseCertPEM(tlsPEM)
	if err != nil {
		return channel.Consenter{}, fmt.Errorf("%s: TLS certificate: %w", node.Name, err)
	}
	c.ClientTLSCert, c.ServerTLSCert = cert, cert
	if mspPEM := nodeFile(node, dirMSP+"/"+pki.MSPSignCert); mspPEM != nil {
		if c.Identity, err = pki.ParseCertPEM(mspPEM); err != nil {
			return channel.Consenter{}, fmt.Errorf("%s: enrolment certificate: %w", node.Name, err)
		}
	}
	return c, nil
}

// nodeFile is the content of a file the plan gives node, or nil.
func nodeFile(node chain.PlannedNode, path string) []byte {
	for _, f := range node.Spec.Files {
		if f.Path == path {
			return f.Data
		}
	}
	return nil
}

func hasConsenter(cfg *cb.Config, c channel.Consenter) (bool, error) {
	addrs, err := channel.Consenters(cfg)
	if err != nil {
		return false, err
	}
	return slices.Contains(addrs, channel.Address{Host: c.Host, Port: c.Port}), nil
}

// consenterChange is a change of the channels' consenters by orderer
// node: the orderer organisation's admin, who signs it, and the node as
// a consenter.
type consenterChange struct {
	admin *admin
	c     channel.Consenter
}

func newConsenterChange(plan *chain.Plan, node chain.PlannedNode) (*consenterChange, error) {
	a, err := loadAdmin(plan, node.Organization)
	if err != nil {
		return nil, err
	}
	c, err := consenterOf(plan, node)
	if err != nil {
		return nil, err
	}
	return &consenterChange{admin: a, c: c}, nil
}

// on reads channel c's configuration from a member peer of it, the
// reader the change is made against, and reports whether it has the node
// as a consenter.
func (ch *consenterChange) on(ctx context.Context, n *apis.Network, plan *chain.Plan, c fabricChannel) (reader chain.PlannedNode, cfg *cb.Config, in bool, err error) {
	if reader, err = channelMember(n, plan, c); err != nil {
		return reader, nil, false, err
	}
	if cfg, err = channelConfig(ctx, plan, c.name, reader); err != nil {
		return reader, nil, false, err
	}
	in, err = hasConsenter(cfg, ch.c)
	return reader, cfg, in, err
}

// order has the orderer organisation's admin sign u, an update of
// channel name, and orders it, waiting until the reader's configuration
// has the node as a consenter, or has it no more.
func (ch *consenterChange) order(ctx context.Context, n *apis.Network, plan *chain.Plan, name string, reader chain.PlannedNode, u *channel.Update, in bool) error {
	env, err := signAsAdmin(u, ch.admin)
	if err != nil {
		return err
	}
	return orderUpdate(ctx, n, plan, name, ch.admin, env, reader, func(cfg *cb.Config) (bool, error) {
		has, err := hasConsenter(cfg, ch.c)
		return has == in, err
	})
}

// admitOrderer makes a new orderer a consenter of the channel and joins
// it, once every orderer planned before it has joined: Raft and BFT take
// one consenter at a time. It reports true once the orderer is active on
// the channel and its Raft has a leader that hears from a majority; a
// BFT orderer once it follows the leader and has caught up with the
// channel's height (see bftCaughtUp).
func (d *Driver) admitOrderer(ctx context.Context, n *apis.Network, plan *chain.Plan, node chain.PlannedNode) (bool, error) {
	for _, pn := range plan.Nodes {
		if pn.Name == node.Name {
			break
		}
		if pn.Role == apis.RoleValidator && pn.Joining {
			return false, nil // one consenter at a time
		}
	}
	ctx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	ch, err := newConsenterChange(plan, node)
	if err != nil {
		return false, err
	}
	all := true
	for _, c := range channelsOf(n) {
		reader, cfg, in, err := ch.on(ctx, n, plan, c)
		if err != nil {
			return false, err
		}
		if !in {
			u, err := channel.AddConsenter(c.name, cfg, MSPID(node.Organization), ch.c)
			if err != nil {
				return false, err
			}
			if err := ch.order(ctx, n, plan, c.name, reader, u, true); err != nil {
				return false, fmt.Errorf("make %s a consenter of channel %s: %w", node.Name, c.name, err)
			}
		}
		// The orderer joins with the block that made it a consenter, or
		// a later config block: it pulls the blocks before it from the
		// other orderers.
		block, err := configBlock(ctx, plan, c.name, reader)
		if err != nil {
			return false, err
		}
		joined, err := d.joinOrderer(ctx, node, ch.admin, c.name, block)
		if err != nil {
			return false, err
		}
		if joined && n.Spec.Fabric.IsBFT() {
			if joined, err = d.bftCaughtUp(ctx, n, plan, node, c.name); err != nil {
				return false, err
			}
		}
		all = all && joined
	}
	return all, nil
}

// retireOrderer takes an orderer out of the channel's consenters, unless
// it is out, and reports true once a member peer has the update.
func retireOrderer(ctx context.Context, n *apis.Network, plan *chain.Plan, node chain.PlannedNode) (bool, error) {
	ch, err := newConsenterChange(plan, node)
	if err != nil {
		return false, err
	}
	for _, c := range channelsOf(n) {
		reader, cfg, in, err := ch.on(ctx, n, plan, c)
		if err != nil {
			return false, err
		}
		if !in {
			continue
		}
		u, err := channel.RemoveConsenter(c.name, cfg, MSPID(node.Organization), channel.Address{Host: ch.c.Host, Port: ch.c.Port})
		if err != nil {
			return false, err
		}
		if err := ch.order(ctx, n, plan, c.name, reader, u, false); err != nil {
			return false, fmt.Errorf("take %s out of the consenters of channel %s: %w", node.Name, c.name, err)
		}
	}
	return true, nil
}

// configBlock is channel ch's latest config block as peer has it (CSCC
// GetConfigBlock), asked as its organisation's admin.
func configBlock(ctx context.Context, plan *chain.Plan, ch string, peer chain.PlannedNode) ([]byte, error) {
	a, err := loadAdmin(plan, peer.Organization)
	if err != nil {
		return nil, err
	}
	conn, err := dialPeer(peer, a)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := invoke(ctx, pb.NewEndorserClient(conn), a, "cscc", "GetConfigBlock", []byte(ch))
	if err != nil {
		return nil, fmt.Errorf("%s: config block of %s: %w", peer.Name, ch, err)
	}
	b := resp.GetResponse().GetPayload()
	if err := proto.Unmarshal(b, &cb.Block{}); err != nil {
		return nil, fmt.Errorf("%s: config block of %s: %w", peer.Name, ch, err)
	}
	return b, nil
}
