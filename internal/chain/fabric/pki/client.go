package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
)

// IssueClient issues an application identity: an enrolment certificate
// whose only subject OU is client, for a key it generates. The MSP's node
// OUs make it a client, which the channel's Readers and Writers policies
// admit, and nothing more (no admin rights).
func (ca *CA) IssueClient(req Request) (*Identity, error) {
	if req.Role != "" && req.Role != RoleClient {
		return nil, fmt.Errorf("issue client certificate %s: role %q: an application identity is a client", req.Name, req.Role)
	}
	req.Role = RoleClient
	return ca.IssueMSP(req)
}

// IssueClientCSR issues an application identity for the key of csrPEM, a
// PEM certificate signing request that the identity's owner made (see
// ParseCSR), so that the key never leaves the owner. req.Name is the
// identity's name, which must be the request's subject CN. The
// certificate has only the subject OU client, whatever the request asked.
func (ca *CA) IssueClientCSR(csrPEM []byte, req Request) (*x509.Certificate, error) {
	if err := ca.checkClient(req); err != nil {
		return nil, err
	}
	csr, err := ParseCSR(csrPEM, req.Name)
	if err != nil {
		return nil, fmt.Errorf("issue client certificate %s: %w", req.Name, err)
	}
	return ca.issueClientFor(csr.PublicKey.(*ecdsa.PublicKey), req)
}

// IssueClientFor issues an application identity for pub, a key the
// caller holds (an identity whose certificate is renewed for the key it
// has). Like IssueClientCSR, the certificate has only the subject OU
// client.
func (ca *CA) IssueClientFor(pub *ecdsa.PublicKey, req Request) (*x509.Certificate, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("issue client certificate %s: the key is not ECDSA on P-256", req.Name)
	}
	if err := ca.checkClient(req); err != nil {
		return nil, err
	}
	return ca.issueClientFor(pub, req)
}

// checkClient checks the request of an application identity's
// certificate for a key the CA does not make.
func (ca *CA) checkClient(req Request) error {
	var errs []error
	if req.Role != "" && req.Role != RoleClient {
		errs = append(errs, fmt.Errorf("role %q: an application identity is a client", req.Role))
	}
	if len(req.Hosts) > 0 {
		errs = append(errs, errors.New("hosts: an enrolment certificate names no hosts"))
	}
	if err := ca.checkRequest(req, errs); err != nil {
		return fmt.Errorf("issue client certificate: %w", err)
	}
	return nil
}

// issueClientFor issues the client certificate of a checked request.
func (ca *CA) issueClientFor(pub *ecdsa.PublicKey, req Request) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		Subject:  pkix.Name{CommonName: req.Name, OrganizationalUnit: []string{string(RoleClient)}},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	id, err := ca.issue(tmpl, req, pub)
	if err != nil {
		return nil, fmt.Errorf("issue client certificate %s: %w", req.Name, err)
	}
	return id.Cert, nil
}

// CSRError is ParseCSR's refusal of a certificate signing request.
type CSRError struct{ Err error }

func (e *CSRError) Error() string { return "csr: " + e.Err.Error() }

func (e *CSRError) Unwrap() error { return e.Err }

// ParseCSR reads a PEM certificate signing request (one CERTIFICATE
// REQUEST block) and checks it as the platform takes one: signed by its
// own key, an ECDSA P-256 key (the curve Fabric's MSP verifies), with the
// subject CN name.
func ParseCSR(data []byte, name string) (*x509.CertificateRequest, error) {
	csr, err := parseCSR(data, name)
	if err != nil {
		return nil, &CSRError{Err: err}
	}
	return csr, nil
}

func parseCSR(data []byte, name string) (*x509.CertificateRequest, error) {
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, errors.New("no PEM block; want one of type CERTIFICATE REQUEST")
	case block.Type != "CERTIFICATE REQUEST":
		return nil, fmt.Errorf("a PEM block of type %s; want CERTIFICATE REQUEST", block.Type)
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, errors.New("more after the CERTIFICATE REQUEST block; want it alone")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	switch {
	case !ok:
		return nil, fmt.Errorf("a %s key; want ECDSA on P-256", csr.PublicKeyAlgorithm)
	case pub.Curve != elliptic.P256():
		return nil, fmt.Errorf("an ECDSA key on %s; want P-256", pub.Curve.Params().Name)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("its signature does not verify with its key: %w", err)
	}
	if csr.Subject.CommonName != name {
		return nil, fmt.Errorf("subject CN %q; want the identity's name %q", csr.Subject.CommonName, name)
	}
	return csr, nil
}
