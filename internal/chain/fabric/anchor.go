package fabric

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// Anchor peers are how the peers of one organisation learn of another's:
// a peer gossips first with its own organisation's peers, then with the
// anchor peers the channel's configuration names for every organisation,
// and through them with the rest. The Fabric Gateway service and service
// discovery know other organisations' peers only this way.
//
// Each organisation's anchors are its first two peers in the plan (one
// when it runs one), so that another organisation still reaches it when
// one is down. They are set by a config update signed by the
// organisation's admin, whose own Admins policy governs the value.

// maxAnchors is how many of an organisation's peers are its anchors.
const maxAnchors = 2

// anchorsOf are organisation org's anchor peers: its first peers in the
// plan.
func anchorsOf(plan *chain.Plan, org string) []chain.PlannedNode {
	var out []chain.PlannedNode
	for _, pn := range plan.Nodes {
		if pn.Role == apis.RoleFull && pn.Organization == org && len(out) < maxAnchors {
			out = append(out, pn)
		}
	}
	return out
}

// setsAnchors reports whether node is the one that sets its
// organisation's anchors as it joins: the first anchor that joins now.
// One node makes the update, so that two joining at once do not race
// with updates of the same value.
func setsAnchors(plan *chain.Plan, node chain.PlannedNode) bool {
	for _, a := range anchorsOf(plan, node.Organization) {
		if a.Joining || a.Name == node.Name {
			return a.Name == node.Name
		}
	}
	return false
}

// anchorAddress is where other organisations' peers reach node: its
// listen endpoint, which is its gossip external endpoint too.
func anchorAddress(node chain.PlannedNode) (channel.Address, error) {
	u, err := url.Parse(node.Endpoints[PortListen])
	if err != nil || u.Host == "" {
		return channel.Address{}, fmt.Errorf("%s has no listen endpoint", node.Name)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return channel.Address{}, fmt.Errorf("%s: listen endpoint %q has no port", node.Name, u.Host)
	}
	return channel.Address{Host: u.Hostname(), Port: port}, nil
}

// anchorsSet reports whether cfg names exactly want as the anchor peers
// of organisation mspID, in any order.
func anchorsSet(cfg *cb.Config, mspID string, want []channel.Address) (bool, error) {
	tx := configtx.New(cfg)
	org := tx.Application().Organization(mspID)
	if org == nil {
		return false, fmt.Errorf("channel configuration has no organisation %s", mspID)
	}
	have, err := org.AnchorPeers()
	if err != nil {
		return false, err
	}
	if len(have) != len(want) {
		return false, nil
	}
	for _, w := range want {
		if !slices.Contains(have, configtx.Address{Host: w.Host, Port: w.Port}) {
			return false, nil
		}
	}
	return true, nil
}

// anchor makes the first peers of node's organisation its anchor peers
// in the channel's configuration, unless they are, when node, which has
// joined the channel, is the one to set them (see setsAnchors). It
// reports false, to be asked again, while no orderer is a member of the
// channel to order the update.
func anchor(ctx context.Context, n *apis.Network, plan *chain.Plan, c fabricChannel, node chain.PlannedNode) (bool, error) {
	if !setsAnchors(plan, node) {
		return true, nil
	}
	running := map[string]bool{}
	for _, s := range n.Status.Nodes {
		running[s.Name] = s.Phase == apis.NodeRunning
	}
	ordering := slices.ContainsFunc(plan.Nodes, func(pn chain.PlannedNode) bool {
		return pn.Role == apis.RoleValidator && !pn.Joining && running[pn.Name]
	})
	if !ordering {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	// A peer that has been a member for a while has the channel's latest
	// configuration; node may still be pulling blocks. The update is made
	// against the reader's, and done once the reader has it.
	reader, err := channelMember(n, plan, c)
	if err != nil {
		reader = node
	}
	if err := setAnchors(ctx, n, plan, c.name, node.Organization, reader); err != nil {
		return false, err
	}
	return true, nil
}

// setAnchors makes the first peers of organisation org its anchor peers
// on channel ch, unless they are, with a config update made against
// reader's configuration; it is done once reader has it.
func setAnchors(ctx context.Context, n *apis.Network, plan *chain.Plan, ch, org string, reader chain.PlannedNode) error {
	mspID := MSPID(org)
	var want []channel.Address
	for _, a := range anchorsOf(plan, org) {
		addr, err := anchorAddress(a)
		if err != nil {
			return err
		}
		want = append(want, addr)
	}
	cfg, err := channelConfig(ctx, plan, ch, reader)
	if err != nil {
		return err
	}
	if ok, err := anchorsSet(cfg, mspID, want); ok || err != nil {
		return err
	}
	u, err := channel.SetAnchorPeers(ch, cfg, mspID, want)
	if err != nil {
		return err
	}
	a, err := loadAdmin(plan, org)
	if err != nil {
		return err
	}
	env, err := signAsAdmin(u, a)
	if err != nil {
		return err
	}
	err = orderUpdate(ctx, n, plan, ch, a, env, reader, func(cfg *cb.Config) (bool, error) { return anchorsSet(cfg, mspID, want) })
	if err != nil {
		return fmt.Errorf("set anchor peers of %s on channel %s: %w", mspID, ch, err)
	}
	return nil
}
