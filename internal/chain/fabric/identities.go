package fabric

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

// Enrolment is an application identity issued by a peer organisation's
// membership CA, with what an application needs to reach the
// organisation's peers with Fabric's own SDK.
type Enrolment struct {
	Organization string
	MSPID        string
	Name         string
	// CertPEM is the enrolment certificate, with the node OU client.
	CertPEM []byte
	// KeyPEM is the key the platform made for it (PKCS#8 PEM); nil when
	// the identity was enrolled from a certificate signing request.
	KeyPEM []byte
	Peers  []PeerEndpoint
	// TLSCACertPEM is the organisation's TLS CA certificate, which its
	// peers' TLS certificates verify against.
	TLSCACertPEM []byte
}

// PeerEndpoint is where an application dials a peer: its gRPC address
// (host:port) and the host name its TLS certificate is checked against.
type PeerEndpoint struct {
	Name        string `json:"name"`
	Endpoint    string `json:"endpoint"`
	TLSHostName string `json:"tlsHostName"`
}

// ErrOrgNotPlanned: the organisation is in the network's spec, but not in
// its plan yet (it is being added).
var ErrOrgNotPlanned = errors.New("the organisation is not planned yet")

// Enroll issues the application identity name of peer organisation org
// from the organisation's CA, which plan keeps: for the key of csrPEM
// (see pki.ParseCSR) when given, else for a key it makes. It stores
// nothing: the caller keeps the result.
func Enroll(plan *chain.Plan, org, name string, csrPEM []byte, now time.Time) (*Enrolment, error) {
	e, ca, err := enrolment(plan, org, name)
	if err != nil {
		return nil, err
	}
	req := pki.Request{Name: name, Now: now}
	if len(csrPEM) > 0 {
		cert, err := ca.IssueClientCSR(csrPEM, req)
		if err != nil {
			return nil, err
		}
		e.CertPEM = (&pki.Identity{Cert: cert}).CertPEM()
		return e, nil
	}
	id, err := ca.IssueClient(req)
	if err != nil {
		return nil, err
	}
	if e.KeyPEM, err = id.KeyPEM(); err != nil {
		return nil, err
	}
	e.CertPEM = id.CertPEM()
	return e, nil
}

// Renew issues application identity name of org a new certificate, for
// the key of csrPEM when given (the owner's, who may have made a new
// one), else for the key of keyPEM, which the platform holds. The
// enrolment's KeyPEM stays nil: a held key does not change.
func Renew(plan *chain.Plan, org, name string, csrPEM, keyPEM []byte, now time.Time) (*Enrolment, error) {
	e, ca, err := enrolment(plan, org, name)
	if err != nil {
		return nil, err
	}
	req := pki.Request{Name: name, Now: now}
	var cert *x509.Certificate
	switch {
	case len(csrPEM) > 0:
		cert, err = ca.IssueClientCSR(csrPEM, req)
	case len(keyPEM) > 0:
		var key *ecdsa.PrivateKey
		if key, err = pki.ParseKeyPEM(keyPEM); err == nil {
			cert, err = ca.IssueClientFor(&key.PublicKey, req)
		}
	default:
		err = errors.New("neither a certificate signing request nor a held key to renew the certificate for")
	}
	if err != nil {
		return nil, fmt.Errorf("renew %s of %s: %w", name, org, err)
	}
	e.CertPEM = (&pki.Identity{Cert: cert}).CertPEM()
	return e, nil
}

// enrolment is what an identity of org is issued with: org's CA, and the
// enrolment without its certificate.
func enrolment(plan *chain.Plan, org, name string) (*Enrolment, *pki.CA, error) {
	ca, err := loadOrgCA(plan, org, artCA)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrOrgNotPlanned, err)
	}
	tlsCA := plan.Artifact(orgPath(org, artTLSCA+"/cert.pem"))
	if tlsCA == nil {
		return nil, nil, fmt.Errorf("%w: the plan has no TLS CA of organisation %s", ErrOrgNotPlanned, org)
	}
	e := &Enrolment{Organization: org, MSPID: MSPID(org), Name: name, TLSCACertPEM: tlsCA}
	for _, n := range plan.Nodes {
		if n.Role != apis.RoleFull || n.Organization != org {
			continue
		}
		u, err := url.Parse(n.Endpoints[PortListen])
		if err != nil || u.Host == "" {
			return nil, nil, fmt.Errorf("peer %s has no %s endpoint", n.Name, PortListen)
		}
		e.Peers = append(e.Peers, PeerEndpoint{Name: n.Name, Endpoint: u.Host, TLSHostName: u.Hostname()})
	}
	if len(e.Peers) == 0 {
		return nil, nil, fmt.Errorf("%w: organisation %s has no peer in the plan", ErrOrgNotPlanned, org)
	}
	return e, ca, nil
}

// loadOrgCA is one of org's CAs (artCA or artTLSCA) as the plan keeps it.
func loadOrgCA(plan *chain.Plan, org, dir string) (*pki.CA, error) {
	certPEM := plan.Artifact(orgPath(org, dir+"/cert.pem"))
	keyPEM := plan.Artifact(orgPath(org, dir+"/key.pem"))
	if certPEM == nil || keyPEM == nil {
		return nil, fmt.Errorf("the plan has no %s of organisation %s: %w", dir, org, errNoOrg)
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("organisation %s: %w", org, err)
	}
	return ca, nil
}

// Errors of an IdentityKeys lookup.
var (
	// ErrNoIdentity: no such identity is enrolled.
	ErrNoIdentity = errors.New("no such enrolled identity")
	// ErrKeyNotHeld: the identity was enrolled from a certificate
	// signing request, so its key never reached the platform.
	ErrKeyNotHeld = errors.New("the platform does not hold the identity's key")
)

// IdentityKeys finds the certificate and key (PEM) of application
// identity name of organisation org, enrolled through the API; it
// returns errors wrapping ErrNoIdentity or ErrKeyNotHeld.
type IdentityKeys func(ctx context.Context, org, name string) (certPEM, keyPEM []byte, err error)

type identityKeysKey struct{}

// WithIdentityKeys tells the gateway where to find the enrolled
// identities a call may name (Call.Identity).
func WithIdentityKeys(ctx context.Context, keys IdentityKeys) context.Context {
	return context.WithValue(ctx, identityKeysKey{}, keys)
}

// enrolledSigner is the enrolled identity name of org, as ctx finds it.
func enrolledSigner(ctx context.Context, org, name string) (channel.Signer, error) {
	keys, _ := ctx.Value(identityKeysKey{}).(IdentityKeys)
	if keys == nil {
		return channel.Signer{}, malformed("identity: %q: no enrolled identities can be used here", name)
	}
	certPEM, keyPEM, err := keys(ctx, org, name)
	switch {
	case errors.Is(err, ErrNoIdentity):
		return channel.Signer{}, malformed("identity: %q is no identity enrolled for organisation %s (see GET .../identities)", name, org)
	case errors.Is(err, ErrKeyNotHeld):
		return channel.Signer{}, malformed("identity: %q of organisation %s was enrolled from a certificate signing request: "+
			"its key never reached the platform, so the gateway cannot sign as it; submit with Fabric's own SDK instead", name, org)
	case err != nil:
		return channel.Signer{}, fmt.Errorf("identity %s of %s: %w", name, org, err)
	}
	return parseSigner(MSPID(org), certPEM, keyPEM)
}

// appSigner is org's built-in application identity, or its admin for a
// plan made before organisations had one.
func appSigner(plan *chain.Plan, org string) (channel.Signer, error) {
	certPEM := plan.Artifact(orgPath(org, artAppMSP+"/"+pki.MSPSignCert))
	keyPEM := plan.Artifact(orgPath(org, artAppMSP+"/"+pki.MSPKey))
	if certPEM == nil || keyPEM == nil {
		a, err := loadAdmin(plan, org)
		if err != nil {
			return channel.Signer{}, err
		}
		return signerOf(a)
	}
	return parseSigner(MSPID(org), certPEM, keyPEM)
}

func parseSigner(mspID string, certPEM, keyPEM []byte) (channel.Signer, error) {
	cert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		return channel.Signer{}, fmt.Errorf("identity of %s: certificate: %w", mspID, err)
	}
	key, err := pki.ParseKeyPEM(keyPEM)
	if err != nil {
		return channel.Signer{}, fmt.Errorf("identity %s of %s: key: %w", cert.Subject.CommonName, mspID, err)
	}
	return channel.Signer{MSPID: mspID, Cert: cert, Key: key}, nil
}

// identityNameRE is the rule for an enrolled identity's name: a DNS
// label, so that it is safe in a certificate's CN, a URL path and a file
// name alike.
var identityNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CheckIdentityName says what is wrong with name as an enrolled
// identity's name, or nil.
func CheckIdentityName(name string) error {
	if !identityNameRE.MatchString(name) {
		return fmt.Errorf("%q is no identity name: 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// RevokeIdentity revokes certPEM, an identity that organisation org's
// CA issued, on every channel of network n that org is a member of: a
// config update that adds a revocation list, signed by the CA, to the
// organisation's MSP, signed by its admin and sent to an orderer. It
// returns once a running peer of org has the new configuration of each,
// from when peers refuse what the identity signs. A channel that revoked
// the certificate already is left as it is.
func RevokeIdentity(ctx context.Context, n *apis.Network, plan *chain.Plan, org string, certPEM []byte) error {
	cert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		return fmt.Errorf("revoke an identity of %s: %w", org, err)
	}
	ctx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	reader, err := memberPeerOf(n, plan, org)
	if err != nil {
		return fmt.Errorf("revoke %s of %s: %w", cert.Subject.CommonName, org, err)
	}
	for _, c := range channelsOfOrg(n, org) {
		if err := revokeOn(ctx, n, plan, c.name, org, cert, reader); err != nil {
			return fmt.Errorf("revoke %s of %s on channel %s: %w", cert.Subject.CommonName, org, c.name, err)
		}
	}
	return nil
}

// revokeOn revokes cert of org on channel ch, unless it is revoked there,
// with an update made against reader's configuration.
func revokeOn(ctx context.Context, n *apis.Network, plan *chain.Plan, ch, org string, cert *x509.Certificate, reader chain.PlannedNode) error {
	mspID := MSPID(org)
	cfg, err := channelConfig(ctx, plan, ch, reader)
	if err != nil {
		return err
	}
	if done, err := channel.Revoked(cfg, mspID, cert); done || err != nil {
		return err
	}
	ca, err := loadOrgCA(plan, org, artCA)
	if err != nil {
		return err
	}
	u, err := channel.RevokeCertificates(ch, cfg, mspID, ca.Cert, ca.Key, cert)
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
	return orderUpdate(ctx, n, plan, ch, a, env, reader, func(cfg *cb.Config) (bool, error) { return channel.Revoked(cfg, mspID, cert) })
}
