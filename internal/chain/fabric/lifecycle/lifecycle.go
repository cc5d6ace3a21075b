package lifecycle

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"

	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	lb "github.com/hyperledger/fabric-protos-go-apiv2/peer/lifecycle"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// Errors of the steps, to tell with errors.Is what to do next.
var (
	// ErrNotCommitted: the channel has no definition of the chaincode.
	ErrNotCommitted = errors.New("chaincode not committed")
	// ErrNotReady: too few organisations approved the definition to
	// commit it; approve with more, then commit again.
	ErrNotReady = errors.New("not enough approvals")
	// ErrSuperseded: the channel runs a later sequence, or another
	// definition at the same sequence.
	ErrSuperseded = errors.New("definition superseded")
	// ErrDefinition: the definition is one Fabric would refuse.
	ErrDefinition = errors.New("invalid chaincode definition")
)

// DefaultEndorsementPolicy is the channel policy a chaincode's
// transactions are endorsed by unless its definition names another: the
// channel's Application/Endorsement, MAJORITY Endorsement in the channels
// ChainDock makes.
const DefaultEndorsementPolicy = "/Channel/Application/Endorsement"

// The endorsement and validation plugins of Fabric's sample core.yaml
// (peer.handlers), which _lifecycle also fills in when a definition
// leaves them empty. A peer whose core.yaml names no escc endorses
// nothing.
const (
	endorsementPlugin = "escc"
	validationPlugin  = "vscc"
)

// Definition is a chaincode definition, as an organisation approves it
// and the channel commits it.
type Definition struct {
	Name    string
	Version string
	// Sequence is 1 for the first definition of Name on the channel and
	// one more for each upgrade.
	Sequence int64
	// PackageID is the package the approving organisation's peers run
	// (Install returns it). Commit ignores it: each organisation chooses
	// its own.
	PackageID string
	// EndorsementPolicy is the channel policy that endorses the
	// chaincode's transactions; empty means DefaultEndorsementPolicy,
	// unless ValidationParameter is set.
	EndorsementPolicy string
	// ValidationParameter, when set, is the endorsement policy as
	// _lifecycle keeps it (an ApplicationPolicy: see
	// SignatureValidationParameter), sent as is: every organisation's
	// approval and the commit must carry the same bytes. EndorsementPolicy
	// must then be empty.
	ValidationParameter []byte
	InitRequired        bool
	// Collections are the chaincode's private data collections (see
	// CollectionPackage), sent as they are: every organisation's approval
	// and the commit must carry the same. nil for none.
	Collections *pb.CollectionConfigPackage
}

// Fabric's rules for a chaincode name and version
// (core/chaincode/lifecycle.ChaincodeNameRegExp, ChaincodeVersionRegExp).
var (
	nameRE    = regexp.MustCompile(`^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)
	// packageIDRE is what PackageID makes.
	packageIDRE = regexp.MustCompile(`^[[:alnum:]][[:alnum:]_.+-]*:[0-9a-f]{64}$`)
)

// systemChaincodes are names Fabric keeps for its own chaincodes.
var systemChaincodes = []string{"cscc", "escc", "lscc", "qscc", "vscc", SystemChaincode}

// Validate returns every problem with the definition at once, each naming
// its field; the error wraps ErrDefinition.
func (d Definition) Validate() error {
	var problems []string
	add := func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	}
	switch {
	case !nameRE.MatchString(d.Name):
		add("name", "%q: letters and digits, joined by single '-' or '_'", d.Name)
	case slices.Contains(systemChaincodes, d.Name):
		add("name", "%q is the name of a system chaincode", d.Name)
	}
	if !versionRE.MatchString(d.Version) {
		add("version", "%q: letters, digits, '_', '.', '+' and '-', not empty", d.Version)
	}
	if d.Sequence < 1 {
		add("sequence", "%d: the first definition is sequence 1", d.Sequence)
	}
	if d.PackageID != "" && !packageIDRE.MatchString(d.PackageID) {
		add("packageID", "%q is not LABEL:SHA256 as Install returns it", d.PackageID)
	}
	if p := d.EndorsementPolicy; p != "" && !strings.HasPrefix(p, "/Channel/") {
		add("endorsementPolicy", "%q is not a channel policy such as %s", p, DefaultEndorsementPolicy)
	}
	if len(d.ValidationParameter) > 0 {
		var ap pb.ApplicationPolicy
		switch {
		case d.EndorsementPolicy != "":
			add("validationParameter", "is set with endorsementPolicy %q; give one", d.EndorsementPolicy)
		case proto.Unmarshal(d.ValidationParameter, &ap) != nil || ap.GetType() == nil:
			add("validationParameter", "is not an endorsement policy (an ApplicationPolicy)")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s: %s", ErrDefinition, d.Name, strings.Join(problems, "; "))
	}
	return nil
}

// validationParameter is the endorsement policy as _lifecycle stores it.
func (d Definition) validationParameter() ([]byte, error) {
	if len(d.ValidationParameter) > 0 {
		return d.ValidationParameter, nil
	}
	ref := d.EndorsementPolicy
	if ref == "" {
		ref = DefaultEndorsementPolicy
	}
	return proto.Marshal(&pb.ApplicationPolicy{
		Type: &pb.ApplicationPolicy_ChannelConfigPolicyReference{ChannelConfigPolicyReference: ref},
	})
}

// Endpoint is a peer's or an orderer's gRPC service, as an admin dials
// it.
type Endpoint struct {
	// Address is host:port.
	Address string
	// RootCAs is the PEM of the TLS CA that issued the node's TLS
	// certificate.
	RootCAs []byte
	// ServerName is the name the node's certificate must have; empty
	// means the host of Address.
	ServerName string
	// Client is the admin's TLS client certificate, for nodes that
	// require one.
	Client *tls.Certificate
}

// Dial returns a connection to the endpoint over TLS. It does not wait
// for the node: the first call does.
func Dial(e Endpoint) (*grpc.ClientConn, error) {
	host, _, err := net.SplitHostPort(e.Address)
	if err != nil {
		return nil, fmt.Errorf("dial %q: %w", e.Address, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(e.RootCAs) {
		return nil, fmt.Errorf("dial %s: no PEM certificate in the TLS roots", e.Address)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: e.ServerName}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if e.Client != nil {
		cfg.Certificates = []tls.Certificate{*e.Client}
	}
	conn, err := grpc.NewClient(e.Address, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", e.Address, err)
	}
	return conn, nil
}

// InstalledPackage is a package installed on a peer.
type InstalledPackage struct {
	PackageID string
	Label     string
	// References are, by channel, the chaincode definitions that run it.
	References map[string][]string
}

// Installed lists the packages installed on a peer, in package ID order.
// The admin must be an admin of the peer's organisation.
func Installed(ctx context.Context, peer grpc.ClientConnInterface, admin channel.Signer) ([]InstalledPackage, error) {
	id, err := newIdentity(admin)
	if err != nil {
		return nil, err
	}
	return installed(ctx, peer, id)
}

func installed(ctx context.Context, peer grpc.ClientConnInterface, id *identity) ([]InstalledPackage, error) {
	p, err := newProposal(id, "", fnQueryInstalled, &lb.QueryInstalledChaincodesArgs{})
	if err != nil {
		return nil, err
	}
	var res lb.QueryInstalledChaincodesResult
	if err := p.query(ctx, peer, &res); err != nil {
		return nil, err
	}
	var out []InstalledPackage
	for _, c := range res.GetInstalledChaincodes() {
		ip := InstalledPackage{PackageID: c.GetPackageId(), Label: c.GetLabel()}
		for ch, refs := range c.GetReferences() {
			if ip.References == nil {
				ip.References = map[string][]string{}
			}
			for _, cc := range refs.GetChaincodes() {
				ip.References[ch] = append(ip.References[ch], cc.GetName()+"@"+cc.GetVersion())
			}
		}
		out = append(out, ip)
	}
	slices.SortFunc(out, func(a, b InstalledPackage) int { return strings.Compare(a.PackageID, b.PackageID) })
	return out, nil
}

func hasPackage(pkgs []InstalledPackage, packageID string) bool {
	return slices.ContainsFunc(pkgs, func(p InstalledPackage) bool { return p.PackageID == packageID })
}

// Install installs a chaincode package on a peer and returns its package
// ID. A package the peer has already is not installed again. The admin
// must be an admin of the peer's organisation. The peer runs the
// package's builder during the install, so a package ChainDock's builder
// refuses fails here, with the builder's message.
func Install(ctx context.Context, peer grpc.ClientConnInterface, admin channel.Signer, pkg []byte) (string, error) {
	c, err := ReadPackage(pkg)
	if err != nil {
		return "", fmt.Errorf("install: %w", err)
	}
	packageID := PackageID(c.Label, pkg)
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("install %s: %w", packageID, err)
	}
	id, err := newIdentity(admin)
	if err != nil {
		return fail(err)
	}
	have, err := installed(ctx, peer, id)
	if err != nil {
		return fail(err)
	}
	if hasPackage(have, packageID) {
		return packageID, nil
	}
	p, err := newProposal(id, "", fnInstall, &lb.InstallChaincodeArgs{ChaincodeInstallPackage: pkg})
	if err != nil {
		return fail(err)
	}
	var res lb.InstallChaincodeResult
	if err := p.query(ctx, peer, &res); err != nil {
		// Another caller may have installed it meanwhile, and the peer
		// refuses a second install.
		if have, qerr := installed(ctx, peer, id); qerr == nil && hasPackage(have, packageID) {
			return packageID, nil
		}
		return fail(err)
	}
	if res.GetPackageId() != packageID {
		return fail(fmt.Errorf("the peer installed it as %s", res.GetPackageId()))
	}
	return packageID, nil
}

// Approve approves the definition for the admin's organisation on
// channelID: a transaction endorsed by peer, one of the organisation's
// peers joined to the channel, and sent to orderer. It returns the
// transaction's ID, or "" when the organisation had already approved the
// same definition and package, which Fabric would refuse to approve
// again. The approval counts once the transaction is committed: see
// CheckCommitReadiness.
func Approve(ctx context.Context, peer, orderer grpc.ClientConnInterface, admin channel.Signer, channelID string, def Definition) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("channel %s: approve %s sequence %d for %s: %w", channelID, def.Name, def.Sequence, admin.MSPID, err)
	}
	if err := def.Validate(); err != nil {
		return fail(err)
	}
	id, err := newIdentity(admin)
	if err != nil {
		return fail(err)
	}
	args, err := approveArgs(def)
	if err != nil {
		return fail(err)
	}
	// Not approved yet is an error of the query, as is any other failure;
	// in both cases the approval is sent and the peer says what is wrong.
	if prev, err := approved(ctx, peer, id, channelID, def.Name, def.Sequence); err == nil && sameApproval(prev, args) {
		return "", nil
	}
	p, err := newProposal(id, channelID, fnApprove, args)
	if err != nil {
		return fail(err)
	}
	resp, err := p.endorse(ctx, peer)
	if err != nil {
		return fail(err)
	}
	env, err := p.transaction([]*pb.ProposalResponse{resp})
	if err != nil {
		return fail(err)
	}
	if err := broadcast(ctx, orderer, env); err != nil {
		return fail(err)
	}
	return p.txID, nil
}

func approveArgs(def Definition) (*lb.ApproveChaincodeDefinitionForMyOrgArgs, error) {
	vp, err := def.validationParameter()
	if err != nil {
		return nil, err
	}
	source := &lb.ChaincodeSource{Type: &lb.ChaincodeSource_Unavailable_{Unavailable: &lb.ChaincodeSource_Unavailable{}}}
	if def.PackageID != "" {
		source = &lb.ChaincodeSource{Type: &lb.ChaincodeSource_LocalPackage{LocalPackage: &lb.ChaincodeSource_Local{PackageId: def.PackageID}}}
	}
	return &lb.ApproveChaincodeDefinitionForMyOrgArgs{
		Name:                def.Name,
		Version:             def.Version,
		Sequence:            def.Sequence,
		EndorsementPlugin:   endorsementPlugin,
		ValidationPlugin:    validationPlugin,
		ValidationParameter: vp,
		InitRequired:        def.InitRequired,
		Collections:         def.Collections,
		Source:              source,
	}, nil
}

func approved(ctx context.Context, peer grpc.ClientConnInterface, id *identity, channelID, name string, sequence int64) (*lb.QueryApprovedChaincodeDefinitionResult, error) {
	p, err := newProposal(id, channelID, fnQueryApproved, &lb.QueryApprovedChaincodeDefinitionArgs{Name: name, Sequence: sequence})
	if err != nil {
		return nil, err
	}
	var res lb.QueryApprovedChaincodeDefinitionResult
	if err := p.query(ctx, peer, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// sameApproval reports whether an organisation's approval is the one
// args would make, package included.
func sameApproval(prev *lb.QueryApprovedChaincodeDefinitionResult, args *lb.ApproveChaincodeDefinitionForMyOrgArgs) bool {
	return prev.GetSequence() == args.GetSequence() &&
		prev.GetVersion() == args.GetVersion() &&
		prev.GetEndorsementPlugin() == args.GetEndorsementPlugin() &&
		prev.GetValidationPlugin() == args.GetValidationPlugin() &&
		samePolicy(prev.GetValidationParameter(), args.GetValidationParameter()) &&
		prev.GetInitRequired() == args.GetInitRequired() &&
		sameCollections(prev.GetCollections(), args.GetCollections()) &&
		prev.GetSource().GetLocalPackage().GetPackageId() == args.GetSource().GetLocalPackage().GetPackageId()
}

func samePolicy(a, b []byte) bool {
	var x, y pb.ApplicationPolicy
	if proto.Unmarshal(a, &x) != nil || proto.Unmarshal(b, &y) != nil {
		return false
	}
	return proto.Equal(&x, &y)
}

// CheckCommitReadiness returns, by MSP ID, which of the channel's
// organisations have approved the definition, as peer sees it. The
// definition's sequence must be the next one: one more than the
// committed sequence, or 1.
func CheckCommitReadiness(ctx context.Context, peer grpc.ClientConnInterface, admin channel.Signer, channelID string, def Definition) (map[string]bool, error) {
	fail := func(err error) (map[string]bool, error) {
		return nil, fmt.Errorf("channel %s: check commit readiness of %s sequence %d: %w", channelID, def.Name, def.Sequence, err)
	}
	if err := def.Validate(); err != nil {
		return fail(err)
	}
	id, err := newIdentity(admin)
	if err != nil {
		return fail(err)
	}
	args, err := commitArgs(def)
	if err != nil {
		return fail(err)
	}
	p, err := newProposal(id, channelID, fnCheckCommitReadiness, &lb.CheckCommitReadinessArgs{
		Name:                args.Name,
		Version:             args.Version,
		Sequence:            args.Sequence,
		EndorsementPlugin:   args.EndorsementPlugin,
		ValidationPlugin:    args.ValidationPlugin,
		ValidationParameter: args.ValidationParameter,
		InitRequired:        args.InitRequired,
		Collections:         args.Collections,
	})
	if err != nil {
		return fail(err)
	}
	var res lb.CheckCommitReadinessResult
	if err := p.query(ctx, peer, &res); err != nil {
		return fail(err)
	}
	approvals := res.GetApprovals()
	if approvals == nil {
		approvals = map[string]bool{}
	}
	return approvals, nil
}

func commitArgs(def Definition) (*lb.CommitChaincodeDefinitionArgs, error) {
	vp, err := def.validationParameter()
	if err != nil {
		return nil, err
	}
	return &lb.CommitChaincodeDefinitionArgs{
		Name:                def.Name,
		Version:             def.Version,
		Sequence:            def.Sequence,
		EndorsementPlugin:   endorsementPlugin,
		ValidationPlugin:    validationPlugin,
		ValidationParameter: vp,
		InitRequired:        def.InitRequired,
		Collections:         def.Collections,
	}, nil
}

// NotReadyError is ErrNotReady with the approvals a commit lacked.
type NotReadyError struct {
	// Approvals are by MSP ID, as CheckCommitReadiness returns them.
	Approvals map[string]bool
}

func (e *NotReadyError) Error() string {
	var yes, no []string
	for _, org := range slices.Sorted(maps.Keys(e.Approvals)) {
		if e.Approvals[org] {
			yes = append(yes, org)
		} else {
			no = append(no, org)
		}
	}
	return fmt.Sprintf("%v: %d of %d organisations approved and a majority must (approved: %s; waiting for: %s)",
		ErrNotReady, len(yes), len(e.Approvals), orNone(yes), orNone(no))
}

func (e *NotReadyError) Unwrap() error { return ErrNotReady }

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Commit commits the definition to channelID: a transaction endorsed by
// peers, one peer of each organisation whose endorsement the channel's
// LifecycleEndorsement policy needs (MAJORITY Endorsement in ChainDock's
// channels, so a peer of each approving organisation is enough), and
// sent to orderer. Each of those organisations must have approved the
// definition. It returns the transaction's ID, or "" when the channel
// already runs this definition. The admin may be any organisation's.
//
// It refuses, before asking any peer to endorse, a definition that a
// majority of organisations has not approved yet (a *NotReadyError) and
// one that the channel has superseded (ErrSuperseded). The definition is
// committed once the transaction is: poll Committed.
func Commit(ctx context.Context, peers []grpc.ClientConnInterface, orderer grpc.ClientConnInterface, admin channel.Signer, channelID string, def Definition) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("channel %s: commit %s sequence %d: %w", channelID, def.Name, def.Sequence, err)
	}
	if err := def.Validate(); err != nil {
		return fail(err)
	}
	if len(peers) == 0 {
		return fail(errors.New("no peer to endorse it"))
	}
	id, err := newIdentity(admin)
	if err != nil {
		return fail(err)
	}
	args, err := commitArgs(def)
	if err != nil {
		return fail(err)
	}
	cur, err := committed(ctx, peers[0], id, channelID, def.Name)
	switch {
	case errors.Is(err, ErrNotCommitted):
	case err != nil:
		return fail(err)
	case cur.Sequence > def.Sequence:
		return fail(fmt.Errorf("%w: the channel runs sequence %d", ErrSuperseded, cur.Sequence))
	case cur.Sequence == def.Sequence:
		if cur.sameAs(args) {
			return "", nil
		}
		return fail(fmt.Errorf("%w: sequence %d is committed as version %s with other parameters", ErrSuperseded, cur.Sequence, cur.Version))
	}
	approvals, err := CheckCommitReadiness(ctx, peers[0], admin, channelID, def)
	if err != nil {
		return fail(err)
	}
	yes := 0
	for _, ok := range approvals {
		if ok {
			yes++
		}
	}
	if yes*2 <= len(approvals) {
		return fail(&NotReadyError{Approvals: approvals})
	}
	p, err := newProposal(id, channelID, fnCommit, args)
	if err != nil {
		return fail(err)
	}
	var responses []*pb.ProposalResponse
	for i, peer := range peers {
		resp, err := p.endorse(ctx, peer)
		if err != nil {
			return fail(fmt.Errorf("peers[%d]: %w", i, err))
		}
		responses = append(responses, resp)
	}
	env, err := p.transaction(responses)
	if err != nil {
		return fail(err)
	}
	if err := broadcast(ctx, orderer, env); err != nil {
		return fail(err)
	}
	return p.txID, nil
}

// CommittedDefinition is a chaincode definition a channel runs.
type CommittedDefinition struct {
	Name     string
	Version  string
	Sequence int64
	// EndorsementPolicy is the channel policy that endorses the
	// chaincode's transactions, or "" when it is a signature policy.
	EndorsementPolicy   string
	EndorsementPlugin   string
	ValidationPlugin    string
	ValidationParameter []byte
	InitRequired        bool
	// Collections are its private data collections, nil for none.
	Collections *pb.CollectionConfigPackage
	// Approvals are, by MSP ID, the organisations that approved this
	// definition.
	Approvals map[string]bool
}

func (c *CommittedDefinition) sameAs(args *lb.CommitChaincodeDefinitionArgs) bool {
	return c.Version == args.GetVersion() &&
		c.EndorsementPlugin == args.GetEndorsementPlugin() &&
		c.ValidationPlugin == args.GetValidationPlugin() &&
		samePolicy(c.ValidationParameter, args.GetValidationParameter()) &&
		c.InitRequired == args.GetInitRequired() &&
		sameCollections(c.Collections, args.GetCollections())
}

// Runs reports whether the channel runs def: the same version and
// endorsement policy and collections, whatever its sequence and package.
func (c *CommittedDefinition) Runs(def Definition) bool {
	args, err := commitArgs(def)
	return err == nil && c.sameAs(args)
}

// Committed returns the definition of the chaincode name that channelID
// runs, as peer sees it, or an error wrapping ErrNotCommitted.
func Committed(ctx context.Context, peer grpc.ClientConnInterface, admin channel.Signer, channelID, name string) (*CommittedDefinition, error) {
	id, err := newIdentity(admin)
	if err != nil {
		return nil, fmt.Errorf("channel %s: query %s: %w", channelID, name, err)
	}
	c, err := committed(ctx, peer, id, channelID, name)
	if err != nil {
		return nil, fmt.Errorf("channel %s: query %s: %w", channelID, name, err)
	}
	return c, nil
}

func committed(ctx context.Context, peer grpc.ClientConnInterface, id *identity, channelID, name string) (*CommittedDefinition, error) {
	// The list tells "not committed" apart from a failure without
	// reading the peer's message.
	p, err := newProposal(id, channelID, fnQueryDefinitions, &lb.QueryChaincodeDefinitionsArgs{})
	if err != nil {
		return nil, err
	}
	var all lb.QueryChaincodeDefinitionsResult
	if err := p.query(ctx, peer, &all); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(all.GetChaincodeDefinitions(), func(d *lb.QueryChaincodeDefinitionsResult_ChaincodeDefinition) bool {
		return d.GetName() == name
	}) {
		return nil, ErrNotCommitted
	}
	p, err = newProposal(id, channelID, fnQueryDefinition, &lb.QueryChaincodeDefinitionArgs{Name: name})
	if err != nil {
		return nil, err
	}
	var res lb.QueryChaincodeDefinitionResult
	if err := p.query(ctx, peer, &res); err != nil {
		return nil, err
	}
	c := &CommittedDefinition{
		Name:                name,
		Version:             res.GetVersion(),
		Sequence:            res.GetSequence(),
		EndorsementPlugin:   res.GetEndorsementPlugin(),
		ValidationPlugin:    res.GetValidationPlugin(),
		ValidationParameter: res.GetValidationParameter(),
		InitRequired:        res.GetInitRequired(),
		Collections:         res.GetCollections(),
		Approvals:           res.GetApprovals(),
	}
	var ap pb.ApplicationPolicy
	if proto.Unmarshal(res.GetValidationParameter(), &ap) == nil {
		c.EndorsementPolicy = ap.GetChannelConfigPolicyReference()
	}
	return c, nil
}
