package fabric

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/grpc"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/builder"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
)

var _ chain.Contracts = (*Driver)(nil)

// PackageKind is the kind of package a Fabric network deploys: chaincode
// as a service, whose connection.json names the chaincode server the
// peers dial.
const PackageKind = "fabric-ccaas"

// readmeFile is the templates' one file: what they do. Their chaincode
// packages are made for each network, when it is planned.
const readmeFile = "README.md"

// collectionsFile is a package's private data collections (a JSON array
// of apis.Collection), which a deployment giving none gets.
const collectionsFile = "collections.json"

// deployWait bounds a deployment: install, approvals, commit, and the
// commit seen on every organisation's peer.
const deployWait = 60 * time.Second

// Templates implements chain.Contracts: the chaincode the network's
// chaincode host serves (spec.fabric.templates).
func (d *Driver) Templates() []apis.Package {
	var out []apis.Package
	for _, b := range builtinChaincode {
		name := templatePackage(b.name)
		readme := fmt.Sprintf("# %s\n\n%s\n\nThe template's chaincode package is made for each network with "+
			"`spec.fabric.templates: true` when it is planned: a chaincode-as-a-service package whose "+
			"connection.json names the %s port of the network's node %s, which runs chaindock-chaincode.\n",
			name, b.description, b.name, apis.ChaincodeNode)
		p := apis.Package{Owner: apis.BuiltinOwner, Name: name, Version: TemplateVersion, Chain: Name, Kind: PackageKind,
			Description: b.description, Builtin: true,
			Files: []apis.PackageFile{{Path: readmeFile, Text: readme}}}
		if b.collections != "" {
			p.Files = append(p.Files, apis.PackageFile{Path: collectionsFile, Text: b.collections})
		}
		p.Checksum = p.Digest()
		out = append(out, p)
	}
	return out
}

// ValidatePackage implements chain.Contracts: a package of your own
// chaincode server is its connection.json, which ChainDock's builder
// checks as it would at install, and documentation (*.md) if you like.
func (d *Driver) ValidatePackage(p *apis.Package) apis.ErrorList {
	var errs apis.ErrorList
	if p.Kind != PackageKind {
		errs.Add("kind", "%q: a %s package is of kind %q", p.Kind, Name, PackageKind)
	}
	if err := lifecycle.CheckLabel(chaincodeLabel(p.Name, p.Version)); err != nil {
		errs.Add("version", "%v: the chaincode package's label is the name, '_' and the version", err)
	}
	found := false
	for _, f := range p.Files {
		field := "files[" + f.Path + "]"
		switch {
		case f.Path == builder.ConnectionFile:
			found = true
			_, err := builder.ParseConnection(f.Content(), time.Now())
			var ve *builder.ValidationError
			switch {
			case errors.As(err, &ve):
				for _, pr := range ve.Problems {
					if pr.Field == "" {
						errs.Add(field, "%s", pr.Detail)
					} else {
						errs.Add(field+"."+pr.Field, "%s", pr.Detail)
					}
				}
			case err != nil:
				errs.Add(field, "%v", err)
			}
		case strings.HasSuffix(f.Path, ".md"):
		case f.Path == collectionsFile:
			if _, err := packageCollections(p); err != nil {
				errs.Add(field, "%v", err)
			}
		default:
			errs.Add(field, "a %s package holds %s, naming your chaincode server, %s, its private data collections, and documentation (*.md) only",
				PackageKind, builder.ConnectionFile, collectionsFile)
		}
	}
	if !found {
		errs.Add("files", "has no %s naming the chaincode server the peers dial (its address, and its TLS settings)", builder.ConnectionFile)
	}
	return errs
}

// chaincodePackage is the chaincode package a contract package deploys
// on the network of plan, and its label: a template's was made with the
// plan; another's is made of its connection.json.
func chaincodePackage(n *apis.Network, p *apis.Package, plan *chain.Plan) ([]byte, string, error) {
	if p.Owner == apis.BuiltinOwner {
		for _, b := range builtinChaincode {
			if templatePackage(b.name) != p.Name || p.Version != TemplateVersion {
				continue
			}
			pkg := plan.Artifact(chaincodeArtifact(b.name))
			if pkg == nil {
				return nil, "", fmt.Errorf("%w: network %s runs no chaincode host: the templates are served by its node %s, "+
					"which a network created with spec.fabric.templates: true has; deploy a %s package of your own chaincode server instead",
					chain.ErrContractRefused, n.Metadata.Name, apis.ChaincodeNode, PackageKind)
			}
			c, err := lifecycle.ReadPackage(pkg)
			if err != nil {
				return nil, "", fmt.Errorf("the planned package of %s: %w", p.Ref(), err)
			}
			return pkg, c.Label, nil
		}
		return nil, "", fmt.Errorf("%w: no Fabric template %s", chain.ErrContractRefused, p.Ref())
	}
	if p.Kind != PackageKind {
		return nil, "", fmt.Errorf("%w: package %s is of kind %q, not %q", chain.ErrContractRefused, p.Ref(), p.Kind, PackageKind)
	}
	f, ok := p.File(builder.ConnectionFile)
	if !ok {
		return nil, "", fmt.Errorf("%w: package %s has no %s", chain.ErrContractRefused, p.Ref(), builder.ConnectionFile)
	}
	conn, err := builder.ParseConnection(f.Content(), time.Now())
	if err != nil {
		return nil, "", fmt.Errorf("%w: package %s: %v", chain.ErrContractRefused, p.Ref(), err) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
	}
	label := chaincodeLabel(p.Name, p.Version)
	pkg, err := lifecycle.Package(label, conn)
	if err != nil {
		return nil, "", fmt.Errorf("%w: package %s: %v", chain.ErrContractRefused, p.Ref(), err) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
	}
	return pkg, label, nil
}

// DeployContract implements chain.Contracts with Fabric's chaincode
// lifecycle, as the organisations' admins, whose keys the plan keeps:
// the package is installed on every peer of every organisation, each
// organisation approves the definition (the contract's name, the
// package's version, the next sequence, the installed package, and the
// request's endorsement policy or the channel's default, and its private
// data collections: the request's, else the package's collections.json,
// see collectionsConfig), one
// admin commits it with a peer of each organisation endorsing, and it is
// deployed once every organisation's peer runs that sequence. A new
// chaincode is sequence 1, an upgrade (another version, or the same one
// with another endorsement policy or collections) the next. The steps are
// idempotent: after a failure, the same request picks up where it was.
func (d *Driver) DeployContract(ctx context.Context, n *apis.Network, req chain.DeployRequest) (chain.ContractResult, error) {
	if req.Plan == nil {
		return chain.ContractResult{}, fmt.Errorf("deploy %s on %s: no plan with the organisations' keys", req.Name, n.Metadata.Name)
	}
	if len(req.Args) > 0 {
		return chain.ContractResult{}, fmt.Errorf("%w: Fabric chaincode takes no deployment arguments (its definition requires no init); give none", chain.ErrContractRefused)
	}
	pkg, label, err := chaincodePackage(n, req.Package, req.Plan)
	if err != nil {
		return chain.ContractResult{}, err
	}
	c, err := deployChannel(n, req.Plan, req.Channel)
	if err != nil {
		return chain.ContractResult{}, err
	}
	def := lifecycle.Definition{Name: req.Name, Version: req.Package.Version, Sequence: 1, PackageID: lifecycle.PackageID(label, pkg)}
	var fieldErrs apis.ErrorList
	if req.EndorsementPolicy != "" {
		vp, errs := endorsementParameter(req.Plan, c, req.EndorsementPolicy)
		fieldErrs = append(fieldErrs, errs...)
		def.ValidationParameter = vp
	}
	cols, current, err := contractCollections(req)
	if err != nil {
		return chain.ContractResult{}, err
	}
	if len(cols) > 0 || len(current) > 0 {
		pkg, errs := collectionsConfig(req.Plan, c, cols, current)
		fieldErrs = append(fieldErrs, errs...)
		def.Collections = pkg
	}
	if len(fieldErrs) > 0 {
		return chain.ContractResult{}, fieldErrs
	}
	if err := def.Validate(); err != nil {
		return chain.ContractResult{}, fmt.Errorf("%w: %v", chain.ErrContractRefused, err) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
	}
	ctx, cancel := context.WithTimeout(ctx, deployWait)
	defer cancel()
	dep, err := dialDeployment(n, req.Plan, c)
	if err != nil {
		return chain.ContractResult{}, fmt.Errorf("deploy %s on %s: %w", req.Name, n.Metadata.Name, err)
	}
	defer dep.close()
	// The same version and policy again: a rule (ANY, MAJORITY, ALL)
	// over the channel's organisations now, which changes the definition
	// only when organisations have come since.
	again := req.Current != nil && req.Current.Package.Version == req.Package.Version &&
		strings.TrimSpace(req.Current.EndorsementPolicy) == strings.TrimSpace(req.EndorsementPolicy) &&
		apis.SameCollections(req.Current.Collections, cols)
	res, err := dep.deploy(ctx, def, pkg, again)
	if err != nil {
		return res, fmt.Errorf("deploy %s on %s: %w", req.Name, n.Metadata.Name, err)
	}
	if req.Collections == nil {
		res.Collections = cols
	}
	return res, nil
}

// endorsementParameter is a chaincode's endorsement policy as its
// definition carries it: policy is PolicyAny, PolicyMajority or PolicyAll
// over the peers of the channel's organisations, or a signature policy
// expression, which may name those organisations only. The problems name
// the field endorsementPolicy.
func endorsementParameter(plan *chain.Plan, c fabricChannel, policy string) ([]byte, apis.ErrorList) {
	env, errs := endorsementEnvelope(channelMSPs(plan, c), "endorsementPolicy", policy)
	if len(errs) > 0 {
		return nil, errs
	}
	vp, err := lifecycle.SignatureValidationParameter(env)
	if err != nil {
		errs.Add("endorsementPolicy", "%v", err)
	}
	return vp, errs
}

// channelMSPs are the MSP IDs of the organisations of channel c that
// have peers in the plan, sorted.
func channelMSPs(plan *chain.Plan, c fabricChannel) []string {
	var orgs []string
	for _, node := range plan.Nodes {
		if node.Role == apis.RoleFull && !node.Joining && c.has(node.Organization) && !slices.Contains(orgs, MSPID(node.Organization)) {
			orgs = append(orgs, MSPID(node.Organization))
		}
	}
	slices.Sort(orgs)
	return orgs
}

// endorsementEnvelope is policy, a rule over orgs or a signature policy
// expression naming some of them, as a signature policy; the problems
// name field.
func endorsementEnvelope(orgs []string, field, policy string) (*cb.SignaturePolicyEnvelope, apis.ErrorList) {
	var errs apis.ErrorList
	expr := strings.TrimSpace(policy)
	switch expr {
	case lifecycle.PolicyAny, lifecycle.PolicyMajority, lifecycle.PolicyAll:
		var err error
		if expr, err = lifecycle.RulePolicy(expr, orgs); err != nil {
			errs.Add(field, "%s: %v", policy, err)
			return nil, errs
		}
	}
	env, principals, err := lifecycle.ParseSignaturePolicy(expr)
	if err != nil {
		example := "Org1MSP"
		if len(orgs) > 0 {
			example = orgs[0]
		}
		errs.Add(field, "%v; write %s, %s, %s, or a signature policy such as OR('%s.peer', ...)",
			err, lifecycle.PolicyAny, lifecycle.PolicyMajority, lifecycle.PolicyAll, example)
		return nil, errs
	}
	var unknown []string
	for _, p := range principals {
		if !slices.Contains(orgs, p.MSPID) && !slices.Contains(unknown, p.MSPID) {
			unknown = append(unknown, p.MSPID)
		}
	}
	if len(unknown) > 0 {
		errs.Add(field, "names %s, not an organisation of the channel (its organisations: %s)",
			strings.Join(unknown, ", "), strings.Join(orgs, ", "))
		return nil, errs
	}
	return env, nil
}

// RemoveContract implements chain.Contracts: it refuses. Fabric's
// lifecycle has no step that takes a committed chaincode off a channel:
// its definition stays, and peers keep running it.
func (d *Driver) RemoveContract(_ context.Context, n *apis.Network, current *apis.ContractRevision) (chain.ContractResult, error) {
	ch := current.Channel
	if ch == "" {
		ch = n.Status.ChainID
	}
	return chain.ContractResult{}, fmt.Errorf("%w: a Fabric channel keeps a committed chaincode for good (its lifecycle has no uninstall or decommission): "+
		"chaincode %s stays on channel %s of network %s; upgrade the contract to another version instead",
		chain.ErrContractRefused, current.Ref, ch, n.Metadata.Name)
}

// TxContract implements chain.Contracts: the chaincode a call (see
// ParseCall) names, which is the contract's Ref.
func (d *Driver) TxContract(_ *apis.Network, tx []byte) (string, bool) {
	c, err := ParseCall(tx)
	if err != nil {
		return "", false
	}
	return c.Chaincode, true
}

// deployOrg is a peer organisation as a deployment acts for it.
type deployOrg struct {
	name   string
	admin  *admin
	signer channel.Signer
	// peers are all its peers; peers[lead] the one that endorses its
	// approval and the commit, a running one when there is.
	peers     []*grpc.ClientConn
	nodes     []chain.PlannedNode
	lead      int
	leadReady bool
}

func (o *deployOrg) peer() *grpc.ClientConn { return o.peers[o.lead] }

// deployment holds the connections a deployment uses.
type deployment struct {
	plan    *chain.Plan
	channel string
	orgs    []*deployOrg
	orderer *grpc.ClientConn
	conns   []*grpc.ClientConn
}

func (dep *deployment) close() {
	for _, c := range dep.conns {
		_ = c.Close()
	}
}

// deployChannel is the channel a contract goes on: name, one of the
// network's channels, or the shared one when name is empty.
func deployChannel(n *apis.Network, plan *chain.Plan, name string) (fabricChannel, error) {
	channels := channelsOf(n)
	if name == "" {
		return channels[0], nil
	}
	var names []string
	for _, c := range channels {
		if c.name != name {
			names = append(names, c.name)
			continue
		}
		if err := channelMade(plan, name); err != nil {
			return c, fmt.Errorf("%w: %v", chain.ErrContractRefused, err) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
		}
		return c, nil
	}
	return fabricChannel{}, apis.ErrorList{{Field: "channel", Detail: fmt.Sprintf("network %s has no channel %q (its channels: %s)", n.Metadata.Name, name, strings.Join(names, ", "))}}
}

// dialDeployment connects, as each organisation's admin, to the peers of
// the member organisations of channel c, and to an orderer, preferring
// nodes the network's status has Running.
func dialDeployment(n *apis.Network, plan *chain.Plan, c fabricChannel) (*deployment, error) {
	running := map[string]bool{}
	for _, s := range n.Status.Nodes {
		running[s.Name] = s.Phase == apis.NodeRunning
	}
	dep := &deployment{plan: plan, channel: c.name}
	fail := func(err error) (*deployment, error) {
		dep.close()
		return nil, err
	}
	var orderers []chain.PlannedNode
	for _, node := range plan.Nodes {
		switch node.Role {
		case apis.RoleValidator:
			orderers = append(orderers, node)
		case apis.RoleFull:
			if !c.has(node.Organization) {
				continue
			}
			i := slices.IndexFunc(dep.orgs, func(o *deployOrg) bool { return o.name == node.Organization })
			if i < 0 {
				a, err := loadAdmin(plan, node.Organization)
				if err != nil {
					return fail(err)
				}
				s, err := signerOf(a)
				if err != nil {
					return fail(err)
				}
				dep.orgs = append(dep.orgs, &deployOrg{name: node.Organization, admin: a, signer: s})
				i = len(dep.orgs) - 1
			}
			o := dep.orgs[i]
			conn, err := dialPeer(node, o.admin)
			if err != nil {
				return fail(err)
			}
			dep.conns = append(dep.conns, conn)
			if running[node.Name] && !o.leadReady {
				o.lead, o.leadReady = len(o.peers), true
			}
			o.peers, o.nodes = append(o.peers, conn), append(o.nodes, node)
		}
	}
	if len(dep.orgs) == 0 || len(orderers) == 0 {
		return fail(fmt.Errorf("the plan has %d peer organisations and %d orderers; chaincode needs both", len(dep.orgs), len(orderers)))
	}
	ord := orderers[0]
	for _, o := range orderers {
		if running[o.Name] {
			ord = o
			break
		}
	}
	// The client certificate is the committing organisation's admin's,
	// as Fabric's CLI dials.
	conn, err := dialOrdererNode(plan, ord, dep.orgs[0].admin)
	if err != nil {
		return fail(err)
	}
	dep.conns = append(dep.conns, conn)
	dep.orderer = conn
	return dep, nil
}

// deploy runs the lifecycle for def, whose sequence it sets, with pkg;
// again refuses a def the channel runs already.
func (dep *deployment) deploy(ctx context.Context, def lifecycle.Definition, pkg []byte, again bool) (chain.ContractResult, error) {
	res := chain.ContractResult{Ref: def.Name}
	for _, o := range dep.orgs {
		for i, p := range o.peers {
			if _, err := lifecycle.Install(ctx, p, o.signer, pkg); err != nil {
				return res, fmt.Errorf("%s: %w", o.nodes[i].Name, err)
			}
		}
	}
	lead := dep.orgs[0]
	cur, err := lifecycle.Committed(ctx, lead.peer(), lead.signer, dep.channel, def.Name)
	switch {
	case errors.Is(err, lifecycle.ErrNotCommitted):
		def.Sequence = 1
	case err != nil:
		return res, err
	case cur.Runs(def) && again:
		return res, fmt.Errorf("%w: chaincode %s on channel %s runs that definition already (the policy's organisations are the same)", chain.ErrContractRefused, def.Name, dep.channel)
	case cur.Runs(def):
		// A deployment that committed before it could be recorded.
		def.Sequence = cur.Sequence
	default:
		def.Sequence = cur.Sequence + 1
	}
	if cur == nil || cur.Sequence < def.Sequence {
		for _, o := range dep.orgs {
			if _, err := lifecycle.Approve(ctx, o.peer(), dep.orderer, o.signer, dep.channel, def); err != nil {
				return res, err
			}
		}
		// Each endorsing peer must see every approval before the commit.
		for _, o := range dep.orgs {
			err := poll(ctx, func() (bool, error) {
				a, err := lifecycle.CheckCommitReadiness(ctx, o.peer(), o.signer, dep.channel, def)
				ok := err == nil
				for _, yes := range a {
					ok = ok && yes
				}
				return ok, err
			})
			if err != nil {
				return res, fmt.Errorf("approvals of %s sequence %d on %s: %w", def.Name, def.Sequence, o.nodes[o.lead].Name, err)
			}
		}
		var peers []grpc.ClientConnInterface
		for _, o := range dep.orgs {
			peers = append(peers, o.peer())
		}
		txID, err := lifecycle.Commit(ctx, peers, dep.orderer, lead.signer, dep.channel, def)
		if err != nil {
			return res, err
		}
		res.TxHash = strings.ToUpper(txID)
	}
	for _, o := range dep.orgs {
		err := poll(ctx, func() (bool, error) {
			c, err := lifecycle.Committed(ctx, o.peer(), o.signer, dep.channel, def.Name)
			if errors.Is(err, lifecycle.ErrNotCommitted) {
				return false, err
			}
			return err == nil && c.Sequence >= def.Sequence, err
		})
		if err != nil {
			return res, fmt.Errorf("commit of %s sequence %d on %s: %w", def.Name, def.Sequence, o.nodes[o.lead].Name, err)
		}
	}
	if res.TxHash != "" {
		l := &ledger{plan: dep.plan}
		if tx, err := l.Tx(ctx, lead.nodes[lead.lead], res.TxHash); err == nil {
			res.Height = tx.Height
		}
	}
	return res, nil
}

// poll asks cond every 200ms until it holds or ctx ends; then it says
// why, with cond's last error.
func poll(ctx context.Context, cond func() (bool, error)) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%w (last: %v)", ctx.Err(), err) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
