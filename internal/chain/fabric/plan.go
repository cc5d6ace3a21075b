package fabric

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/builder"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	"github.com/chaindock/chaindock/internal/runtime"
)

// org is an organisation of a network: its MSP, its CAs and its admin.
type org struct {
	name    string
	mspID   string
	domain  string
	orderer bool
	cas     pki.OrgCAs
	// admin signs for the organisation; adminTLS is the client
	// certificate it dials nodes with.
	admin, adminTLS *pki.Identity
	// app is a peer organisation's built-in application identity (node
	// OU client), which the gateway signs transactions with.
	app *pki.Identity
}

// node is a planned node and its identities.
type node struct {
	spec  apis.NodeSpec
	org   *org
	addrs addrs
	cn    string
	msp   *pki.Identity
	tls   *pki.Identity
}

// MSPID is the MSP ID of organisation name: "org1" has "Org1MSP".
func MSPID(name string) string {
	if name == "" {
		return "MSP"
	}
	return strings.ToUpper(name[:1]) + name[1:] + "MSP"
}

// Plan implements chain.Driver.
func (d *Driver) Plan(_ context.Context, req chain.PlanRequest) (*chain.Plan, error) {
	n := req.Network
	if errs := d.Validate(&n.Spec); len(errs) > 0 {
		return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, errs)
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	place := chain.PlacementOf(req.Placement, req.Host)
	chName := ChannelName(n.Metadata.Name, n.Spec.Fabric)

	orgs := map[string]*org{}
	newOrg := func(name string, orderer bool) error {
		o, err := makeOrg(name, n.Metadata.Name, orderer, now)
		if err != nil {
			return err
		}
		orgs[name] = o
		return nil
	}
	ordererOrg := n.Spec.Fabric.OrdererOrg()
	if err := newOrg(ordererOrg, true); err != nil {
		return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, err)
	}
	for _, o := range n.Spec.Organizations {
		if err := newOrg(o.Name, false); err != nil {
			return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, err)
		}
	}

	var nodes []*node
	var chaincodeHost *apis.NodeSpec
	for _, ns := range n.Spec.Nodes() {
		if ns.Role == apis.RoleChaincode {
			chaincodeHost = &ns // no channel member: planned below
			continue
		}
		ports := req.Ports[ns.Name]
		for _, p := range d.PortNames(&n.Spec, ns.Role) {
			if ports[p] == 0 {
				return nil, fmt.Errorf("plan %s: no %s port for node %s", n.Metadata.Name, p, ns.Name)
			}
		}
		nd, err := newNode(ns, orgs[ns.Organization], place, ports, now)
		if err != nil {
			return nil, fmt.Errorf("plan %s: node %s: %w", n.Metadata.Name, ns.Name, err)
		}
		nodes = append(nodes, nd)
	}

	channels := channelsOf(n)
	block, err := genesisBlock(channels[0], n, orgs, ordererOrg, nodes)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, err)
	}
	blockFile := runtime.File{Path: BlockPath(chName), Data: block, Mode: 0o644}

	plan := &chain.Plan{ChainID: chName}
	env := planEnv{network: n, nodes: nodes, block: blockFile, chaindock: d.chaindock, place: place, pods: inPods(req), rand: req.Rand}
	for _, nd := range nodes {
		pn, err := env.plannedNode(nd)
		if err != nil {
			return nil, fmt.Errorf("plan %s: node %s: %w", n.Metadata.Name, nd.spec.Name, err)
		}
		plan.Nodes = append(plan.Nodes, pn)
	}
	plan.Artifacts = append(plan.Artifacts, blockFile)
	// The other channels' genesis blocks: the nodes join with them, and
	// keep none in their homes (a node's block names its shared channel,
	// see channelOf). Their members are recorded too, so that reading them
	// takes no genesis block apart (see planChannel).
	for _, c := range channels[1:] {
		b, err := genesisBlock(c, n, orgs, ordererOrg, nodes)
		if err != nil {
			return nil, fmt.Errorf("plan %s: channel %s: %w", n.Metadata.Name, c.name, err)
		}
		plan.Artifacts = append(plan.Artifacts, runtime.File{Path: BlockPath(c.name), Data: b, Mode: 0o644})
		if plan, err = withMembers(plan, c.name, c.orgs); err != nil {
			return nil, fmt.Errorf("plan %s: channel %s: %w", n.Metadata.Name, c.name, err)
		}
	}
	for _, name := range append([]string{ordererOrg}, orgNames(n.Spec.Organizations)...) {
		files, err := orgArtifacts(orgs[name])
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, err)
		}
		plan.Artifacts = append(plan.Artifacts, files...)
	}
	if chaincodeHost != nil {
		pn, files, err := planChaincode(*chaincodeHost, req.Ports[chaincodeHost.Name], place)
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, err)
		}
		plan.Nodes = append(plan.Nodes, pn)
		plan.Artifacts = append(plan.Artifacts, files...)
	}
	return plan, nil
}

// makeOrg is a new organisation of network: its two CAs and its admin.
func makeOrg(name, network string, orderer bool, now time.Time) (*org, error) {
	o := &org{name: name, mspID: MSPID(name), domain: orgDomain(name, network), orderer: orderer}
	for _, k := range []struct {
		kind pki.Kind
		ca   **pki.CA
	}{{pki.KindMSP, &o.cas.MSP}, {pki.KindTLS, &o.cas.TLS}} {
		ca, err := pki.NewCA(pki.CAOptions{Org: o.domain, Kind: k.kind, Now: now})
		if err != nil {
			return nil, fmt.Errorf("organisation %s: %w", name, err)
		}
		*k.ca = ca
	}
	admin := "Admin@" + o.domain
	var err error
	if o.admin, err = o.cas.MSP.IssueMSP(pki.Request{Name: admin, Role: pki.RoleAdmin, Now: now}); err != nil {
		return nil, fmt.Errorf("organisation %s: %w", name, err)
	}
	if o.adminTLS, err = o.cas.TLS.IssueTLS(pki.Request{Name: admin, Now: now}); err != nil {
		return nil, fmt.Errorf("organisation %s: %w", name, err)
	}
	if !orderer {
		if o.app, err = o.cas.MSP.IssueClient(pki.Request{Name: AppName + "@" + o.domain, Now: now}); err != nil {
			return nil, fmt.Errorf("organisation %s: %w", name, err)
		}
	}
	return o, nil
}

// newNode is node ns of organisation o, reached as place says on ports,
// with an enrolment certificate (the orderer OU in the orderer
// organisation, else peer) and a TLS certificate of o's CAs.
func newNode(ns apis.NodeSpec, o *org, place chain.Placement, ports map[string]int, now time.Time) (*node, error) {
	nd := &node{
		spec:  ns,
		org:   o,
		addrs: addrs{listenHost: place.ListenHost(), host: place.NodeHost(ns.Name), ports: ports},
		cn:    ns.Name + "." + o.domain,
	}
	role := pki.RolePeer
	if o.orderer {
		role = pki.RoleOrderer
	}
	var err error
	if nd.msp, err = o.cas.MSP.IssueMSP(pki.Request{Name: nd.cn, Role: role, Now: now}); err != nil {
		return nil, err
	}
	if nd.tls, err = o.cas.TLS.IssueTLS(pki.Request{Name: nd.cn, Hosts: tlsHosts(nd.addrs.host, ns.Name), Now: now}); err != nil {
		return nil, err
	}
	return nd, nil
}

// orgDomain is the domain of organisation name's certificates.
func orgDomain(name, network string) string { return name + "." + network }

// tlsHosts are the names a node's TLS certificate carries: the host it is
// reached at, its own name and localhost; in a pod, reached at its
// Service's <node>.<namespace>.svc, also <node>.<namespace>, which a
// client in the cluster may dial as well.
func tlsHosts(host, name string) []string {
	hosts := []string{host, name}
	if short, ok := strings.CutSuffix(host, ".svc"); ok && short != name {
		hosts = append(hosts, short)
	}
	if host != "localhost" {
		hosts = append(hosts, "localhost")
	}
	return hosts
}

func orgNames(list []apis.OrganizationNodes) []string {
	out := make([]string, len(list))
	for i, o := range list {
		out[i] = o.Name
	}
	return out
}

// BlockPath is where a node's home, and the plan's artifacts, keep the
// genesis block of channel name.
func BlockPath(name string) string { return dirChannel + "/" + name + ".block" }

// channelOf is the channel of a planned node: the one whose genesis
// block it keeps.
func channelOf(spec runtime.NodeSpec) string {
	for _, f := range spec.Files {
		if name, ok := strings.CutPrefix(f.Path, dirChannel+"/"); ok {
			if name, ok := strings.CutSuffix(name, ".block"); ok {
				return name
			}
		}
	}
	return ""
}

// genesisBlock is block 0 of channel c of the network: its peer
// organisations members, the orderers its consenters.
func genesisBlock(c fabricChannel, n *apis.Network, orgs map[string]*org, ordererOrg string, nodes []*node) ([]byte, error) {
	member := func(o *org) channel.Organization {
		return channel.Organization{MSPID: o.mspID, CACert: o.cas.MSP.Cert, TLSCACert: o.cas.TLS.Cert}
	}
	spec := channel.Spec{Name: c.name}
	for _, o := range c.orgs {
		spec.PeerOrgs = append(spec.PeerOrgs, member(orgs[o]))
	}
	ord := member(orgs[ordererOrg])
	for _, nd := range nodes {
		if !nd.org.orderer {
			continue
		}
		ord.OrdererEndpoints = append(ord.OrdererEndpoints, nd.addrs.reach(PortListen))
		spec.Consenters = append(spec.Consenters, channel.Consenter{
			Host: nd.addrs.host, Port: nd.addrs.ports[PortListen],
			ClientTLSCert: nd.tls.Cert, ServerTLSCert: nd.tls.Cert,
			MSPID: nd.org.mspID, Identity: nd.msp.Cert,
		})
	}
	spec.OrdererOrgs = []channel.Organization{ord}
	return marshalGenesis(spec, n.Spec.Fabric.IsBFT())
}

// marshalGenesis is the genesis block of spec, with BFT ordering when
// bft, as the plan keeps it.
func marshalGenesis(spec channel.Spec, bft bool) ([]byte, error) {
	if bft {
		spec.Consensus = channel.ConsensusBFT
	}
	block, err := channel.GenesisBlock(spec)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(block)
}

// planEnv is what every node of a plan is planned with.
type planEnv struct {
	network *apis.Network
	nodes   []*node
	block   runtime.File
	// chaindock is the server's binary, which ChainDock's external
	// builder runs on the process runtime.
	chaindock string
	place     chain.Placement
	// pods: the nodes run in pods, from the official images.
	pods bool
	// rand is the source of the CouchDB passwords (crypto/rand when nil).
	rand io.Reader
}

// plannedNode is nd with its files, its program and its endpoints.
func (e planEnv) plannedNode(nd *node) (chain.PlannedNode, error) {
	n := e.network
	files, err := pki.MSPFiles(dirMSP, nd.org.cas.MSP.Cert, nd.org.cas.TLS.Cert, nd.msp)
	if err != nil {
		return chain.PlannedNode{}, err
	}
	tlsFiles, err := pki.TLSFiles(dirTLS, nd.org.cas.TLS.Cert, nd.tls)
	if err != nil {
		return chain.PlannedNode{}, err
	}
	files = append(files, tlsFiles...)
	files = append(files, e.block)

	env := chain.GoRuntimeEnv(nd.spec.Resources)
	if env == nil {
		env = map[string]string{}
	}
	env["FABRIC_CFG_PATH"] = "."
	spec := runtime.NodeSpec{
		Env:       env,
		Ports:     map[string]int{},
		Resources: runtime.Resources(nd.spec.Resources),
	}
	endpoints := map[string]string{
		PortListen:     "grpcs://" + nd.addrs.reach(PortListen),
		PortOperations: "http://" + nd.addrs.reach(PortOperations),
	}
	if nd.org.orderer {
		cfg, err := ordererConfig{mspID: nd.org.mspID, addrs: nd.addrs, bft: n.Spec.Fabric.IsBFT()}.yaml()
		if err != nil {
			return chain.PlannedNode{}, err
		}
		files = append(files, runtime.File{Path: fileOrdererYAML, Data: cfg, Mode: 0o644})
		spec.Program, spec.Image, spec.Args = OrdererProgram, OrdererImage, []string{"start"}
		endpoints[PortAdmin] = "https://" + nd.addrs.reach(PortAdmin)
	} else {
		var bootstrap []string
		for _, o := range e.nodes {
			if o.org == nd.org && o != nd {
				bootstrap = append(bootstrap, o.addrs.reach(PortListen))
			}
		}
		pc := peerConfig{id: nd.spec.Name, networkID: n.Metadata.Name, mspID: nd.org.mspID, addrs: nd.addrs, bootstrap: bootstrap, builder: chaindockBuilder, version: fabricVersion(n.Spec.Fabric)}
		if e.pods {
			pc.couchDB, pc.builder = couchDBAddress(e.place), ccaasBuilder
		}
		cfg, err := pc.yaml()
		if err != nil {
			return chain.PlannedNode{}, err
		}
		files = append(files, runtime.File{Path: fileCoreYAML, Data: cfg, Mode: 0o644})
		if e.pods {
			creds, err := couchDBCredentials(e.rand)
			if err != nil {
				return chain.PlannedNode{}, err
			}
			files = append(files, creds...)
			spec.Init = []runtime.InitStep{credentialsStep()}
			spec.Sidecars = []runtime.Sidecar{couchDBSidecar(e.place)}
		} else {
			for _, f := range builder.Files(e.chaindock) {
				f.Path = path.Join(dirBuilders, builder.Name, f.Path)
				files = append(files, f)
			}
		}
		spec.Program, spec.Image, spec.Args = PeerProgram, PeerImage, []string{"node", "start"}
		endpoints[PortChaincode] = "tcp://" + nd.addrs.reach(PortChaincode)
	}
	for name, port := range nd.addrs.ports {
		spec.Ports[name] = port
	}
	spec.Files = files
	return chain.PlannedNode{
		Name:         nd.spec.Name,
		Role:         nd.spec.Role,
		Organization: nd.spec.Organization,
		NodeID:       nd.org.mspID + "/" + nd.cn,
		Spec:         spec,
		Endpoints:    endpoints,
		// It is a member once it has joined the channel (Bootstrap).
		Joining: true,
	}, nil
}

// Artifact paths of an organisation's CAs and admin, under orgs/<name>/.
const (
	artCA       = "ca"
	artTLSCA    = "tlsca"
	artAdminMSP = "admin/msp"
	artAdminTLS = "admin/tls"
	artAppMSP   = "app/msp"
)

// AppName is the name of a peer organisation's built-in application
// identity; its certificate's CN is AppName@<organisation's domain>.
const AppName = "App"

func orgPath(org, p string) string { return path.Join("orgs", org, p) }

// orgArtifacts are the files the platform keeps of an organisation: its
// CAs, to issue more identities later, its admin's MSP and TLS
// directories, to sign and dial with, and a peer organisation's
// application identity's MSP directory, which signs its transactions.
func orgArtifacts(o *org) ([]runtime.File, error) {
	var out []runtime.File
	for _, ca := range []struct {
		dir string
		ca  *pki.CA
	}{{artCA, o.cas.MSP}, {artTLSCA, o.cas.TLS}} {
		certPEM, keyPEM, err := ca.ca.MarshalPEM()
		if err != nil {
			return nil, fmt.Errorf("organisation %s: %w", o.name, err)
		}
		out = append(out,
			runtime.File{Path: orgPath(o.name, ca.dir+"/cert.pem"), Data: certPEM, Mode: 0o644},
			runtime.File{Path: orgPath(o.name, ca.dir+"/key.pem"), Data: keyPEM, Mode: 0o600, Secret: true},
		)
	}
	msp, err := pki.MSPFiles(orgPath(o.name, artAdminMSP), o.cas.MSP.Cert, o.cas.TLS.Cert, o.admin)
	if err != nil {
		return nil, fmt.Errorf("organisation %s admin: %w", o.name, err)
	}
	tls, err := pki.TLSFiles(orgPath(o.name, artAdminTLS), o.cas.TLS.Cert, o.adminTLS)
	if err != nil {
		return nil, fmt.Errorf("organisation %s admin: %w", o.name, err)
	}
	out = append(out, msp...)
	out = append(out, tls...)
	if o.app != nil {
		app, err := pki.MSPFiles(orgPath(o.name, artAppMSP), o.cas.MSP.Cert, o.cas.TLS.Cert, o.app)
		if err != nil {
			return nil, fmt.Errorf("organisation %s application identity: %w", o.name, err)
		}
		out = append(out, app...)
	}
	return out, nil
}
