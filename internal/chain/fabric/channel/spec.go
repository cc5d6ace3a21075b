package channel

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"
)

// Defaults of the ordering service, as Fabric's sample configtx.yaml has
// them except for larger batches (its 10 messages suit a demo, not a
// network).
const (
	DefaultBatchTimeout      = 2 * time.Second
	DefaultMaxMessageCount   = 500
	DefaultAbsoluteMaxBytes  = 10 << 20
	DefaultPreferredMaxBytes = 2 << 20
)

// Capabilities of the configurations built here: Fabric 2.5 and 3.x run
// both.
const (
	ChannelCapability     = "V2_0"
	OrdererCapability     = "V2_0"
	ApplicationCapability = "V2_5"
)

// Fabric's rules for names (common/configtx/validator.go): a channel name
// is lower case and starts with a letter; a config group key (an
// organisation's, here its MSP ID) is letters, digits, '.' and '-'.
var (
	channelNameRE = regexp.MustCompile(`^[a-z][a-z0-9.-]*$`)
	groupKeyRE    = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)
)

const maxNameLength = 249

// Spec is an application channel to create.
type Spec struct {
	// Name is the channel ID.
	Name string
	// PeerOrgs are the application organisations: their peers join the
	// channel, their admins govern it.
	PeerOrgs []Organization
	// OrdererOrgs are the organisations whose orderers order the channel.
	OrdererOrgs []Organization
	// Consenters are the channel's Raft members, or its BFT nodes.
	Consenters []Consenter
	// Consensus is how the orderers agree: ConsensusEtcdRaft (empty) or
	// ConsensusBFT.
	Consensus string
	// Batch is how orderers cut blocks; zero fields take the defaults.
	Batch Batch
}

// Organization is a member of a channel, known by its MSP.
type Organization struct {
	// MSPID names the organisation's MSP; it is also the name of its
	// group in the channel configuration.
	MSPID string
	// CACert is the organisation's membership CA, the root of its MSP.
	CACert *x509.Certificate
	// TLSCACert is the organisation's TLS CA.
	TLSCACert *x509.Certificate
	// OrdererEndpoints are the host:port addresses of an orderer
	// organisation's orderers, where clients send transactions.
	OrdererEndpoints []string
	// AnchorPeers are the peers other organisations' peers gossip with
	// first; set by AddOrganization (a genesis block has none: they are
	// set later by SetAnchorPeers, as configtxgen's users do).
	AnchorPeers []Address
}

// Address is a host and port.
type Address struct {
	Host string
	Port int
}

func (a Address) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// MaxConsenters bounds a channel's consenters, far above what a
// consensus of orderers runs well with.
const MaxConsenters = 100

// Consenter is an orderer taking part in the channel's consensus.
type Consenter struct {
	Host string
	Port int
	// MSPID and Identity (the orderer's enrolment certificate, what it
	// signs blocks with) are read by BFT only, which numbers the
	// consenters from 1 in their order.
	MSPID    string
	Identity *x509.Certificate
	// ClientTLSCert is the certificate the orderer dials other
	// consenters with, ServerTLSCert the one it serves with; both are
	// signed by the TLS CA of an orderer organisation.
	ClientTLSCert *x509.Certificate
	ServerTLSCert *x509.Certificate
}

// Batch is when orderers cut a block.
type Batch struct {
	Timeout           time.Duration
	MaxMessageCount   uint32
	AbsoluteMaxBytes  uint32
	PreferredMaxBytes uint32
}

func (b Batch) withDefaults() Batch {
	if b.Timeout == 0 {
		b.Timeout = DefaultBatchTimeout
	}
	if b.MaxMessageCount == 0 {
		b.MaxMessageCount = DefaultMaxMessageCount
	}
	if b.AbsoluteMaxBytes == 0 {
		b.AbsoluteMaxBytes = DefaultAbsoluteMaxBytes
	}
	if b.PreferredMaxBytes == 0 {
		b.PreferredMaxBytes = DefaultPreferredMaxBytes
	}
	return b
}

// Validation errors, to tell with errors.Is what is wrong with a spec.
var (
	ErrChannelName     = errors.New("invalid channel name")
	ErrNoOrganization  = errors.New("no organisation")
	ErrNoConsenter     = errors.New("no consenter")
	ErrDuplicateMSPID  = errors.New("duplicate MSP ID")
	ErrMSPID           = errors.New("invalid MSP ID")
	ErrMissingCA       = errors.New("missing CA certificate")
	ErrNotCA           = errors.New("not a CA certificate")
	ErrConsenter       = errors.New("invalid consenter")
	ErrOrdererEndpoint = errors.New("invalid orderer endpoint")
	ErrBatch           = errors.New("invalid batch settings")
	ErrConsensus       = errors.New("invalid consensus")
)

// Validate lists every problem of the spec, each with its field path.
func (s Spec) Validate() error {
	var errs []error
	if err := checkChannelName(s.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if len(s.PeerOrgs) == 0 {
		errs = append(errs, fmt.Errorf("peerOrgs: %w: a channel needs at least one application organisation", ErrNoOrganization))
	}
	if len(s.OrdererOrgs) == 0 {
		errs = append(errs, fmt.Errorf("ordererOrgs: %w: a channel needs at least one orderer organisation", ErrNoOrganization))
	}
	switch n := len(s.Consenters); {
	case n == 0:
		errs = append(errs, fmt.Errorf("consenters: %w: Raft needs at least one", ErrNoConsenter))
	case n > MaxConsenters:
		errs = append(errs, fmt.Errorf("consenters: %w: %d, at most %d", ErrConsenter, n, MaxConsenters))
	}
	switch s.Consensus {
	case "", ConsensusEtcdRaft:
	case ConsensusBFT:
		errs = append(errs, s.validateBFT()...)
	default:
		errs = append(errs, fmt.Errorf("consensus: %w: %q is neither %s nor %s", ErrConsensus, s.Consensus, ConsensusEtcdRaft, ConsensusBFT))
	}

	// An organisation that runs both peers and orderers may be in both
	// groups under one MSP ID, with one definition (Fabric refuses two
	// definitions of an MSP), but only once in each.
	seen := map[string]Organization{}
	for _, g := range []struct {
		field string
		orgs  []Organization
		ord   bool
	}{{"peerOrgs", s.PeerOrgs, false}, {"ordererOrgs", s.OrdererOrgs, true}} {
		inGroup := map[string]bool{}
		for i, o := range g.orgs {
			field := fmt.Sprintf("%s[%d]", g.field, i)
			errs = append(errs, o.validate(field, g.ord)...)
			if o.MSPID == "" {
				continue
			}
			if inGroup[o.MSPID] {
				errs = append(errs, fmt.Errorf("%s: %w %s", field, ErrDuplicateMSPID, o.MSPID))
				continue
			}
			inGroup[o.MSPID] = true
			if prev, ok := seen[o.MSPID]; ok && !sameMSP(prev, o) {
				errs = append(errs, fmt.Errorf("%s: %w %s: a peer organisation of that ID has other CAs", field, ErrDuplicateMSPID, o.MSPID))
			}
			seen[o.MSPID] = o
		}
	}

	tlsRoots := x509.NewCertPool()
	for _, o := range s.OrdererOrgs {
		if o.TLSCACert != nil {
			tlsRoots.AddCert(o.TLSCACert)
		}
	}
	addrs := map[string]bool{}
	for i, c := range s.Consenters {
		field := fmt.Sprintf("consenters[%d]", i)
		addr := Address{Host: c.Host, Port: c.Port}
		if c.Host == "" {
			errs = append(errs, fmt.Errorf("%s.host: %w: empty", field, ErrConsenter))
		}
		if c.Port < 1 || c.Port > 65535 {
			errs = append(errs, fmt.Errorf("%s.port: %w: %d is not a TCP port", field, ErrConsenter, c.Port))
		}
		if addrs[addr.String()] {
			errs = append(errs, fmt.Errorf("%s: %w: %s is listed twice", field, ErrConsenter, addr))
		}
		addrs[addr.String()] = true
		for _, cert := range []struct {
			name string
			cert *x509.Certificate
		}{{"clientTLSCert", c.ClientTLSCert}, {"serverTLSCert", c.ServerTLSCert}} {
			if cert.cert == nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w: none", field, cert.name, ErrConsenter))
				continue
			}
			if err := verifyConsenterCert(cert.cert, tlsRoots); err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w: not signed by the TLS CA of an orderer organisation: %w", field, cert.name, ErrConsenter, err))
			}
		}
	}

	b := s.Batch.withDefaults()
	if b.Timeout < 0 {
		errs = append(errs, fmt.Errorf("batch.timeout: %w: %s is negative", ErrBatch, b.Timeout))
	}
	if b.PreferredMaxBytes > b.AbsoluteMaxBytes {
		errs = append(errs, fmt.Errorf("batch.preferredMaxBytes: %w: %d is more than absoluteMaxBytes %d", ErrBatch, b.PreferredMaxBytes, b.AbsoluteMaxBytes))
	}
	return errors.Join(errs...)
}

// verifyConsenterCert checks a consenter's certificate as orderers do
// (etcdraft's validateConsenterTLSCerts), so that a spec they would refuse
// is refused here first: signed by an orderer organisation's TLS CA, for
// TLS clients or servers, expired or not.
func verifyConsenterCert(cert *x509.Certificate, roots *x509.CertPool) error {
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	})
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		return nil
	}
	return err
}

func (o Organization) validate(field string, orderer bool) []error {
	var errs []error
	if err := checkMSPID(o.MSPID); err != nil {
		errs = append(errs, fmt.Errorf("%s.mspID: %w", field, err))
	}
	for _, ca := range []struct {
		name string
		cert *x509.Certificate
	}{{"caCert", o.CACert}, {"tlsCACert", o.TLSCACert}} {
		switch {
		case ca.cert == nil:
			errs = append(errs, fmt.Errorf("%s.%s: %w", field, ca.name, ErrMissingCA))
		case !ca.cert.IsCA || ca.cert.KeyUsage&x509.KeyUsageCertSign == 0:
			errs = append(errs, fmt.Errorf("%s.%s: %w: %s may not sign certificates", field, ca.name, ErrNotCA, ca.cert.Subject.CommonName))
		case len(ca.cert.SubjectKeyId) == 0:
			// Fabric's MSP refuses such a CA when it loads the channel.
			errs = append(errs, fmt.Errorf("%s.%s: %w: %s has no subject key identifier", field, ca.name, ErrNotCA, ca.cert.Subject.CommonName))
		}
	}
	if orderer && len(o.OrdererEndpoints) == 0 {
		errs = append(errs, fmt.Errorf("%s.ordererEndpoints: %w: an orderer organisation needs at least one", field, ErrOrdererEndpoint))
	}
	if !orderer && len(o.OrdererEndpoints) > 0 {
		errs = append(errs, fmt.Errorf("%s.ordererEndpoints: %w: a peer organisation has none", field, ErrOrdererEndpoint))
	}
	for i, e := range o.OrdererEndpoints {
		host, port, err := net.SplitHostPort(e)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s.ordererEndpoints[%d]: %w: %q is not host:port", field, i, ErrOrdererEndpoint, e))
		}
	}
	for i, a := range o.AnchorPeers {
		if a.Host == "" || a.Port < 1 || a.Port > 65535 {
			errs = append(errs, fmt.Errorf("%s.anchorPeers[%d]: %q is not host:port", field, i, a))
		}
	}
	return errs
}

func sameMSP(a, b Organization) bool {
	return a.CACert != nil && b.CACert != nil && a.CACert.Equal(b.CACert) &&
		a.TLSCACert != nil && b.TLSCACert != nil && a.TLSCACert.Equal(b.TLSCACert)
}

func checkChannelName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrChannelName)
	case len(name) > maxNameLength:
		return fmt.Errorf("%w: %d characters, more than %d", ErrChannelName, len(name), maxNameLength)
	case !channelNameRE.MatchString(name):
		return fmt.Errorf("%w %q: a channel name starts with a lower-case letter and has only lower-case letters, digits, '.' and '-'", ErrChannelName, name)
	}
	return nil
}

func checkMSPID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrMSPID)
	case len(id) > maxNameLength:
		return fmt.Errorf("%w: %d characters, more than %d", ErrMSPID, len(id), maxNameLength)
	case id == "." || id == ".." || !groupKeyRE.MatchString(id):
		return fmt.Errorf("%w %q: letters, digits, '.' and '-' only (and neither \".\" nor \"..\")", ErrMSPID, id)
	}
	return nil
}
