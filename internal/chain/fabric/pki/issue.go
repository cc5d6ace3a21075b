package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Role is a node OU: what an identity is to its organisation's MSP.
type Role string

// The four node OUs Fabric's MSP tells apart when NodeOUs are enabled.
const (
	RoleClient  Role = "client"
	RolePeer    Role = "peer"
	RoleOrderer Role = "orderer"
	RoleAdmin   Role = "admin"
)

// Roles are the node OUs in the order config.yaml lists them.
var Roles = []Role{RoleClient, RolePeer, RoleAdmin, RoleOrderer}

func (r Role) valid() bool {
	switch r {
	case RoleClient, RolePeer, RoleOrderer, RoleAdmin:
		return true
	}
	return false
}

// Identity is a certificate issued by a CA and its key.
type Identity struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// CertPEM is the identity's certificate as PEM.
func (id *Identity) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.Cert.Raw})
}

// KeyPEM is the identity's key as PKCS#8 PEM.
func (id *Identity) KeyPEM() ([]byte, error) {
	return KeyPEM(id.Key)
}

// Request asks a CA for a certificate.
type Request struct {
	// Name is the subject CN: a node's host name (peer0.org1.example.com)
	// or a user's name (Admin@org1.example.com).
	Name string
	// Role is the node OU of an enrolment certificate; TLS certificates
	// have none.
	Role Role
	// Hosts are the DNS names and IP addresses a TLS certificate is valid
	// for.
	Hosts []string
	// Validity is how long the certificate is valid; zero means
	// DefaultLeafValidity. It never outlives its CA: a longer validity
	// ends with the CA's.
	Validity time.Duration
	// Now is the time of issue; zero means the current time.
	Now time.Time
}

// IssueMSP issues an enrolment certificate: the identity a node or user
// signs with, whose only subject OU is its role.
func (ca *CA) IssueMSP(req Request) (*Identity, error) {
	var errs []error
	if !req.Role.valid() {
		errs = append(errs, fmt.Errorf("role %q: not one of client, peer, orderer, admin", req.Role))
	}
	if len(req.Hosts) > 0 {
		errs = append(errs, errors.New("hosts: an enrolment certificate names no hosts"))
	}
	if err := ca.checkRequest(req, errs); err != nil {
		return nil, fmt.Errorf("issue MSP certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:  pkix.Name{CommonName: req.Name, OrganizationalUnit: []string{string(req.Role)}},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	id, err := ca.issue(tmpl, req, nil)
	if err != nil {
		return nil, fmt.Errorf("issue MSP certificate %s: %w", req.Name, err)
	}
	return id, nil
}

// IssueTLS issues a TLS certificate for a node's hosts, good for serving
// and for dialling (Raft consenters and peers do both).
func (ca *CA) IssueTLS(req Request) (*Identity, error) {
	var errs []error
	if req.Role != "" {
		errs = append(errs, fmt.Errorf("role %q: a TLS certificate has no role", req.Role))
	}
	var dns []string
	var ips []net.IP
	for i, h := range req.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if err := checkDNSName(h); err != nil {
			errs = append(errs, fmt.Errorf("hosts[%d] %q: neither an IP address nor a DNS name: %w", i, h, err))
			continue
		}
		dns = append(dns, h)
	}
	if err := ca.checkRequest(req, errs); err != nil {
		return nil, fmt.Errorf("issue TLS certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: req.Name},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	id, err := ca.issue(tmpl, req, nil)
	if err != nil {
		return nil, fmt.Errorf("issue TLS certificate %s: %w", req.Name, err)
	}
	return id, nil
}

// checkRequest adds the checks common to every certificate to errs and
// joins them.
func (ca *CA) checkRequest(req Request, errs []error) error {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		errs = append(errs, errors.New("no CA certificate and key"))
	}
	if strings.TrimSpace(req.Name) == "" {
		errs = append(errs, errors.New("name: empty"))
	}
	if req.Validity < 0 {
		errs = append(errs, fmt.Errorf("validity %s: negative", req.Validity))
	}
	return errors.Join(errs...)
}

// issue fills in what every leaf has (serial, validity, key IDs) and signs
// the certificate of pub, or of a new key when pub is nil (the identity
// then has the key; else only the certificate).
func (ca *CA) issue(tmpl *x509.Certificate, req Request, pub *ecdsa.PublicKey) (*Identity, error) {
	validity := req.Validity
	if validity == 0 {
		validity = DefaultLeafValidity
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	var key *ecdsa.PrivateKey
	if pub == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		pub = &key.PublicKey
	}
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-backdate).UTC()
	tmpl.NotAfter = now.Add(validity).UTC()
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	tmpl.SubjectKeyId = ski
	tmpl.AuthorityKeyId = ca.Cert.SubjectKeyId
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Identity{Cert: cert, Key: key}, nil
}

// checkDNSName accepts a host name of RFC 1123 labels, the first of which
// may be a wildcard.
func checkDNSName(name string) error {
	if len(name) > 253 {
		return errors.New("longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if i == 0 && l == "*" && len(labels) > 1 {
			continue
		}
		if l == "" || len(l) > 63 {
			return fmt.Errorf("label %d is empty or longer than 63 characters", i)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", l)
		}
		for _, c := range l {
			if !isLDH(c) {
				return fmt.Errorf("label %q has %q, which is not a letter, digit or hyphen", l, c)
			}
		}
	}
	return nil
}

// isLDH is whether c may be in a host name label: a letter, digit or hyphen.
func isLDH(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

// Renew issues old again for the same key: its subject, roles, hosts and
// key usages, valid from now for validity (zero means
// DefaultLeafValidity, and never beyond the CA's end). old must be one
// ca issued. A certificate renewed for its key needs no new key to be
// handed out, and stays the same party wherever its public key is what
// is compared (Raft and BFT consenters, gossip).
func (ca *CA) Renew(old *x509.Certificate, validity time.Duration, now time.Time) (*x509.Certificate, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("renew certificate: no CA certificate and key")
	}
	if old == nil {
		return nil, errors.New("renew certificate: no certificate")
	}
	if validity < 0 {
		return nil, fmt.Errorf("renew certificate %s: validity %s: negative", old.Subject.CommonName, validity)
	}
	if err := old.CheckSignatureFrom(ca.Cert); err != nil {
		return nil, fmt.Errorf("renew certificate %s: not issued by CA %s: %w", old.Subject.CommonName, ca.Cert.Subject.CommonName, err)
	}
	pub, ok := old.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("renew certificate %s: its key is %T, not ECDSA", old.Subject.CommonName, old.PublicKey)
	}
	tmpl := &x509.Certificate{
		Subject:     old.Subject,
		KeyUsage:    old.KeyUsage,
		ExtKeyUsage: old.ExtKeyUsage,
		DNSNames:    old.DNSNames,
		IPAddresses: old.IPAddresses,
	}
	id, err := ca.issue(tmpl, Request{Name: old.Subject.CommonName, Validity: validity, Now: now}, pub)
	if err != nil {
		return nil, fmt.Errorf("renew certificate %s: %w", old.Subject.CommonName, err)
	}
	return id.Cert, nil
}
