package fabric

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	"github.com/chaindock/chaindock/internal/runtime"
)

var (
	_ chain.Scaler           = (*Driver)(nil)
	_ chain.FullNodeAdmitter = (*Driver)(nil)
)

// admitWait bounds one Admit: reading the channel's configuration,
// ordering the update that adds an organisation, seeing it on a peer,
// and joining the new peer.
const admitWait = 30 * time.Second

// AdmitsFullNodes implements chain.FullNodeAdmitter: a peer added to a
// running network is a member once it has joined the channel, and its
// organisation, when new, once the channel's configuration has it.
func (d *Driver) AdmitsFullNodes() bool { return true }

// ValidateScale implements chain.Scaler. A running Fabric network's
// organisations get more peers or fewer (at least one), new peer
// organisations join at the end of spec.organizations, organisations
// leave (at least one stays), a Raft or BFT ordering service gets more
// orderers or fewer (see validateOrdererChange), and the channels of
// spec.fabric.channels change members (see validateChannelChange).
// Nothing else of it changes.
func (d *Driver) ValidateScale(old, spec *apis.NetworkSpec, status *apis.NetworkStatus) apis.ErrorList {
	var errs apis.ErrorList
	of, nf := old.Fabric, spec.Fabric
	errs = append(errs, validateOrdererChange(old, spec, status)...)
	if a, b := of.OrdererOrg(), nf.OrdererOrg(); a != b {
		errs.Add("spec.fabric.ordererOrganization", "cannot change from %q to %q on a running network", a, b)
	}
	if of == nil {
		of = &apis.FabricSpec{}
	}
	if nf == nil {
		nf = &apis.FabricSpec{}
	}
	if of.Channel != nf.Channel {
		errs.Add("spec.fabric.channel", "cannot change from %q to %q on a running network: its nodes have joined the channel", of.Channel, nf.Channel)
	}
	if of.Version != nf.Version {
		errs.Add("spec.fabric.version", "cannot change from %q to %q on a running network", of.Version, nf.Version)
	}
	if of.Templates != nf.Templates {
		errs.Add("spec.fabric.templates", "is set when the network is created, not on a running network")
	}
	if a, b := of.IsBFT(), nf.IsBFT(); a != b {
		errs.Add("spec.fabric.consensus", "cannot change from %q to %q on a running network: its channel was made for one consensus", of.Consensus, nf.Consensus)
	}
	errs = append(errs, validateOrgChange(old, spec, status)...)
	errs = append(errs, validateChannelChange(old, spec, status)...)
	return errs
}

// Reshape implements chain.Scaler: it plans the new peers, each with an
// enrolment and a TLS certificate of its organisation's CAs, the
// channel's genesis block, and its organisation's other peers to gossip
// with first. A new organisation gets its CAs and its admin, kept in the
// plan's artifacts as Plan keeps the first ones'. The nodes that stay
// keep their specs: a new peer finds its organisation's other peers, and
// they it, by gossip. New peers are Joining until Admit has joined them
// to the channel. Removed peers (retired first, see Retire) leave the
// plan; an organisation's CAs stay in its artifacts, so that it may come
// back with the same MSP.
func (d *Driver) Reshape(_ context.Context, req chain.ReshapeRequest) (*chain.Plan, error) {
	n := req.Network
	if len(req.Remove) > 0 {
		return removeNodes(req.Plan, req.Remove)
	}
	ch := req.Plan.ChainID
	block := req.Plan.Artifact(BlockPath(ch))
	if block == nil {
		return nil, fmt.Errorf("the plan has no genesis block of channel %s", ch)
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	place := chain.PlacementOf(req.Placement, req.Host)
	out := &chain.Plan{ChainID: ch, Nodes: slices.Clone(req.Plan.Nodes), Artifacts: slices.Clone(req.Plan.Artifacts)}

	orgs := map[string]*org{}
	orgOf := func(name string) (*org, error) {
		if o := orgs[name]; o != nil {
			return o, nil
		}
		o, err := loadOrg(out, name, n.Metadata.Name)
		if err == nil {
			o.orderer = name == n.Spec.Fabric.OrdererOrg()
		}
		if errors.Is(err, errNoOrg) && name != n.Spec.Fabric.OrdererOrg() {
			if o, err = makeOrg(name, n.Metadata.Name, false, now); err != nil {
				return nil, err
			}
			files, err := orgArtifacts(o)
			if err != nil {
				return nil, err
			}
			out.Artifacts = append(out.Artifacts, files...)
		} else if err != nil {
			return nil, err
		}
		orgs[name] = o
		return o, nil
	}

	var added []*node
	for _, ns := range req.Add {
		orderer := ns.Role == apis.RoleValidator && ns.Organization == n.Spec.Fabric.OrdererOrg()
		if !orderer && ns.Role != apis.RoleFull {
			return nil, fmt.Errorf("node %s: only peers and orderers are added to a running Fabric network, not a %s", ns.Name, ns.Role)
		}
		ports := req.Ports[ns.Name]
		for _, p := range d.PortNames(&n.Spec, ns.Role) {
			if ports[p] == 0 {
				return nil, fmt.Errorf("node %s: no %s port", ns.Name, p)
			}
		}
		o, err := orgOf(ns.Organization)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", ns.Name, err)
		}
		nd, err := newNode(ns, o, place, ports, now)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", ns.Name, err)
		}
		added = append(added, nd)
	}

	// The peers planned before, of the new peers' organisations: the new
	// ones gossip with them first.
	var nodes []*node
	for _, pn := range req.Plan.Nodes {
		if o := orgs[pn.Organization]; o != nil && pn.Role == apis.RoleFull {
			nodes = append(nodes, &node{
				spec:  apis.NodeSpec{Name: pn.Name, Role: pn.Role, Organization: pn.Organization},
				org:   o,
				addrs: addrs{listenHost: place.ListenHost(), host: place.NodeHost(pn.Name), ports: pn.Spec.Ports},
			})
		}
	}
	nodes = append(nodes, added...)
	env := planEnv{
		network: n, nodes: nodes, block: runtime.File{Path: BlockPath(ch), Data: block, Mode: 0o644},
		chaindock: d.chaindock, place: place, pods: req.Placement != nil, rand: req.Rand,
	}
	for _, nd := range added {
		pn, err := env.plannedNode(nd)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", nd.spec.Name, err)
		}
		out.Nodes = append(out.Nodes, pn)
	}
	return out, nil
}

// errNoOrg: the plan has no CAs of the organisation; it is a new one.
var errNoOrg = errors.New("no such organisation in the plan")

// loadOrg is an organisation of the plan, with its CAs from the plan's
// artifacts, to issue its new peers' certificates.
func loadOrg(plan *chain.Plan, name, network string) (*org, error) {
	o := &org{name: name, mspID: MSPID(name), domain: orgDomain(name, network)}
	var err error
	if o.cas.MSP, err = loadOrgCA(plan, name, artCA); err != nil {
		return nil, err
	}
	if o.cas.TLS, err = loadOrgCA(plan, name, artTLSCA); err != nil {
		return nil, err
	}
	return o, nil
}

// Admit implements chain.Scaler for a new peer. When its organisation is
// not in the channel's configuration yet, the update that adds it is
// made from the configuration as a running member peer has it (CSCC
// GetConfigBlock), signed by the admins of the channel's organisations
// (its Application group's MAJORITY Admins), and sent to an orderer;
// once the peer sees it committed, the new peer joins. A peer joins with
// the genesis block, as every peer did, and pulls the channel's blocks
// from the orderers, which serve its organisation once the configuration
// has it. Once it lists the channel, and its organisation's anchor peers
// include it when it is one of them (see anchor), it is brought up to the
// chaincode each of its channels runs (see catchUpChaincode): it is
// admitted once it has every committed chaincode's package and its
// organisation's approval of each definition is committed.
func (d *Driver) Admit(ctx context.Context, n *apis.Network, plan *chain.Plan, node chain.PlannedNode) (bool, error) {
	switch node.Role {
	case apis.RoleValidator:
		return d.admitOrderer(ctx, n, plan, node)
	case apis.RoleFull:
	default:
		return false, fmt.Errorf("%s: only peers and orderers are added to a running Fabric network, not a %s", node.Name, node.Role)
	}
	ch := plan.ChainID
	genesis := plan.Artifact(BlockPath(ch))
	if genesis == nil {
		return false, fmt.Errorf("the plan has no genesis block of channel %s", ch)
	}
	a, err := loadAdmin(plan, node.Organization)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	if err := d.addToChannel(ctx, n, plan, node.Organization, genesis); err != nil {
		return false, err
	}
	// A new organisation is a member of the shared channel alone; a new
	// peer of an organisation joins every channel of it, as the plan
	// records them: a channel the spec has just given the organisation
	// refuses its peers until Reconfigure has made it a member, and then
	// joins them all.
	channels := planChannelsOfOrg(plan, node.Organization)
	for _, c := range channels {
		block := genesis
		if c.name != ch {
			if block = plan.Artifact(BlockPath(c.name)); block == nil {
				return false, fmt.Errorf("the plan has no genesis block of channel %s", c.name)
			}
		}
		joined, err := joinPeer(ctx, node, a, c.name, block)
		if err != nil || !joined {
			return false, err
		}
		if ok, err := anchor(ctx, n, plan, c, node); !ok || err != nil {
			return false, err
		}
	}
	done := true
	for _, c := range channels {
		ref, err := channelMember(n, plan, fabricChannel{name: c.name, orgs: []string{node.Organization}})
		if err != nil {
			ref, err = channelMember(n, plan, c)
		}
		if err != nil {
			return false, err
		}
		ok, err := catchUpChaincode(ctx, n, plan, c.name, ref, node, a)
		if err != nil {
			return false, err
		}
		done = done && ok
	}
	return done, nil
}

// addToChannel makes organisation org a member of the channel, unless it
// is one.
func (d *Driver) addToChannel(ctx context.Context, n *apis.Network, plan *chain.Plan, org string, genesis []byte) error {
	ch, mspID := plan.ChainID, MSPID(org)
	var gb cb.Block
	if err := proto.Unmarshal(genesis, &gb); err != nil {
		return fmt.Errorf("genesis block of %s: %w", ch, err)
	}
	gcfg, err := channel.ConfigFromBlock(&gb)
	if err != nil {
		return err
	}
	// The channel's configuration as a member peer has it decides: an
	// organisation of the genesis block may have left and come back.
	// With no member peer running, one of the genesis block is taken
	// for a member (a peer added to an organisation that never left).
	reader, err := memberPeer(n, plan)
	if err != nil {
		if hasOrg(gcfg, mspID) {
			return nil
		}
		return err
	}
	return addOrganization(ctx, n, plan, ch, org, reader)
}

// addOrganization makes organisation org a member of channel ch, unless
// it is one, with an update made against reader's configuration; it is
// done once reader has it.
func addOrganization(ctx context.Context, n *apis.Network, plan *chain.Plan, ch, org string, reader chain.PlannedNode) error {
	mspID := MSPID(org)
	cfg, err := channelConfig(ctx, plan, ch, reader)
	if err != nil {
		return err
	}
	if hasOrg(cfg, mspID) {
		return nil
	}
	env, submitter, err := addOrgUpdate(plan, ch, cfg, org)
	if err != nil {
		return err
	}
	// The orderers cut a config update into a block of its own at once;
	// the new peer joins once a member peer has it.
	err = orderUpdate(ctx, n, plan, ch, submitter, env, reader, func(cfg *cb.Config) (bool, error) { return hasOrg(cfg, mspID), nil })
	if err != nil {
		return fmt.Errorf("add organisation %s to channel %s: %w", mspID, ch, err)
	}
	return nil
}

// addOrgUpdate is the config update that adds organisation org, with its
// CAs from the plan, to channel ch of configuration cfg, signed by the
// admins of the channel's organisations, and who submits it.
func addOrgUpdate(plan *chain.Plan, ch string, cfg *cb.Config, org string) (*cb.Envelope, *admin, error) {
	caCert, err := pki.ParseCertPEM(plan.Artifact(orgPath(org, artCA+"/cert.pem")))
	if err != nil {
		return nil, nil, fmt.Errorf("membership CA of %s: %w", org, err)
	}
	tlsCACert, err := pki.ParseCertPEM(plan.Artifact(orgPath(org, artTLSCA+"/cert.pem")))
	if err != nil {
		return nil, nil, fmt.Errorf("TLS CA of %s: %w", org, err)
	}
	u, err := channel.AddOrganization(ch, cfg, channel.Organization{MSPID: MSPID(org), CACert: caCert, TLSCACert: tlsCACert})
	if err != nil {
		return nil, nil, err
	}
	// Every organisation of the channel whose admin the plan has signs,
	// which is all of them on a network ChainDock made.
	return signByAdmins(plan, u)
}

// hasOrg reports whether a channel configuration has application
// organisation mspID (a group named by its MSP ID, as ChainDock names
// them).
func hasOrg(cfg *cb.Config, mspID string) bool {
	_, ok := cfg.GetChannelGroup().GetGroups()[configtx.ApplicationGroupKey].GetGroups()[mspID]
	return ok
}

// memberPeer is a peer that runs and has joined the channel.
func memberPeer(n *apis.Network, plan *chain.Plan) (chain.PlannedNode, error) {
	for _, s := range n.Status.Nodes {
		if s.Role != apis.RoleFull || s.Joining || s.Phase != apis.NodeRunning {
			continue
		}
		if i := slices.IndexFunc(plan.Nodes, func(pn chain.PlannedNode) bool { return pn.Name == s.Name && !pn.Joining }); i >= 0 {
			return plan.Nodes[i], nil
		}
	}
	return chain.PlannedNode{}, fmt.Errorf("no peer of channel %s runs to read its configuration from", plan.ChainID)
}

// channelConfig is the configuration of channel ch as peer has it: its
// last config block (CSCC GetConfigBlock), asked as its organisation's
// admin.
func channelConfig(ctx context.Context, plan *chain.Plan, ch string, peer chain.PlannedNode) (*cb.Config, error) {
	raw, err := configBlock(ctx, plan, ch, peer)
	if err != nil {
		return nil, err
	}
	var b cb.Block
	if err := proto.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%s: config block of %s: %w", peer.Name, ch, err)
	}
	return channel.ConfigFromBlock(&b)
}

// broadcastTo sends env to an orderer of the network, a running one when
// there is, dialling with the TLS client certificate of a.
func broadcastTo(ctx context.Context, n *apis.Network, plan *chain.Plan, a *admin, env *cb.Envelope) error {
	ord, err := ordererOf(n, plan)
	if err != nil {
		return err
	}
	conn, err := dialOrdererNode(plan, ord, a)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := lifecycle.Broadcast(ctx, conn, env); err != nil {
		return fmt.Errorf("%s: %w", ord.Name, err)
	}
	return nil
}

// dialOrderer connects to an orderer of the network, a running one when
// there is, with the TLS client certificate of a.
func dialOrderer(n *apis.Network, plan *chain.Plan, a *admin) (*grpc.ClientConn, error) {
	ord, err := ordererOf(n, plan)
	if err != nil {
		return nil, err
	}
	return dialOrdererNode(plan, ord, a)
}

// ordererOf is an orderer of the plan, a running one when there is.
func ordererOf(n *apis.Network, plan *chain.Plan) (chain.PlannedNode, error) {
	running := map[string]bool{}
	for _, s := range n.Status.Nodes {
		running[s.Name] = s.Phase == apis.NodeRunning
	}
	var ord *chain.PlannedNode
	for i, pn := range plan.Nodes {
		// An orderer being added is no consenter yet.
		if pn.Role == apis.RoleValidator && !pn.Joining && (ord == nil || running[pn.Name] && !running[ord.Name]) {
			ord = &plan.Nodes[i]
		}
	}
	if ord == nil {
		return chain.PlannedNode{}, errors.New("the plan has no orderer")
	}
	return *ord, nil
}

// dialOrdererNode connects to orderer ord, whose organisation's TLS CA
// verifies it, with the TLS client certificate of a.
func dialOrdererNode(plan *chain.Plan, ord chain.PlannedNode, a *admin) (*grpc.ClientConn, error) {
	ordAdmin, err := loadAdmin(plan, ord.Organization)
	if err != nil {
		return nil, err
	}
	return dialPeer(ord, &admin{tls: a.tls, roots: ordAdmin.roots})
}
