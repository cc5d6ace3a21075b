package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Validity defaults, as cryptogen's: long-lived CAs, yearly leaves.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity = 365 * 24 * time.Hour
)

// backdate starts a certificate's validity a little before it is made, so
// a node whose clock lags the platform's accepts it at once.
const backdate = 5 * time.Minute

// Kind tells an organisation's two CAs apart.
type Kind string

const (
	// KindMSP is the membership CA: it signs enrolment (signing) certificates.
	KindMSP Kind = "ca"
	// KindTLS is the TLS CA: it signs the certificates of TLS connections.
	KindTLS Kind = "tlsca"
)

// CA is one certificate authority of an organisation: a self-signed ECDSA
// P-256 certificate and its key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// CAOptions shape a new CA.
type CAOptions struct {
	// Org is the organisation's domain (org1.example.com); it is the CA's
	// subject O and, prefixed with the kind, its CN (ca.org1.example.com).
	Org  string
	Kind Kind
	// Validity is how long the CA is valid; zero means DefaultCAValidity.
	Validity time.Duration
	// Now is the time of issue; zero means the current time.
	Now time.Time
}

// OrgCAs are the two CAs of one organisation.
type OrgCAs struct {
	MSP *CA
	TLS *CA
}

// NewOrgCAs makes an organisation's membership and TLS CAs.
func NewOrgCAs(org string, validity time.Duration) (*OrgCAs, error) {
	msp, err := NewCA(CAOptions{Org: org, Kind: KindMSP, Validity: validity})
	if err != nil {
		return nil, err
	}
	tls, err := NewCA(CAOptions{Org: org, Kind: KindTLS, Validity: validity})
	if err != nil {
		return nil, err
	}
	return &OrgCAs{MSP: msp, TLS: tls}, nil
}

// NewCA makes a self-signed CA shaped as cryptogen's: it may sign
// certificates and CRLs, and its subject key ID is the one Fabric computes
// to find the key.
func NewCA(opts CAOptions) (*CA, error) {
	var errs []error
	if opts.Org == "" {
		errs = append(errs, errors.New("org: empty organisation name"))
	} else if err := checkDNSName(opts.Org); err != nil {
		errs = append(errs, fmt.Errorf("org %q: %w", opts.Org, err))
	}
	if opts.Kind != KindMSP && opts.Kind != KindTLS {
		errs = append(errs, fmt.Errorf("kind %q: not %q or %q", opts.Kind, KindMSP, KindTLS))
	}
	if opts.Validity < 0 {
		errs = append(errs, fmt.Errorf("validity %s: negative", opts.Validity))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new CA: %w", errors.Join(errs...))
	}
	validity := opts.Validity
	if validity == 0 {
		validity = DefaultCAValidity
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new CA %s.%s: generate key: %w", opts.Kind, opts.Org, err)
	}
	ski, err := SubjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("new CA %s.%s: %w", opts.Kind, opts.Org, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, fmt.Errorf("new CA %s.%s: %w", opts.Kind, opts.Org, err)
	}
	subject := pkix.Name{
		Organization: []string{opts.Org},
		CommonName:   string(opts.Kind) + "." + opts.Org,
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-backdate).UTC(),
		NotAfter:     now.Add(validity).UTC(),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new CA %s: %w", subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new CA %s: %w", subject.CommonName, err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CertPEM is the CA certificate as PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// MarshalPEM returns the CA certificate and its PKCS#8 key as PEM, for the
// platform to seal in its store; LoadCA reads them back.
func (ca *CA) MarshalPEM() (certPEM, keyPEM []byte, err error) {
	keyPEM, err = KeyPEM(ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal CA %s: %w", ca.Cert.Subject.CommonName, err)
	}
	return ca.CertPEM(), keyPEM, nil
}

// LoadCA reads a CA written by MarshalPEM. It refuses a certificate that is
// not a CA or a key that is not the certificate's.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA: certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("load CA %s: the certificate is not a CA certificate", cert.Subject.CommonName)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA %s: key: %w", cert.Subject.CommonName, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("load CA %s: the key is not the certificate's", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// SubjectKeyID is the SHA-256 of the uncompressed public key point: the
// identifier Fabric's BCCSP computes to look a key up in the keystore.
func SubjectKeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	ek, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("subject key ID: %w", err)
	}
	sum := sha256.Sum256(ek.Bytes())
	return sum[:], nil
}

// KeyPEM is an ECDSA key as PKCS#8 PEM, the form Fabric's keystore reads.
func KeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM reads a PKCS#8 PEM ECDSA key.
func ParseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM block of type PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T key, not ECDSA", k)
	}
	return key, nil
}

// ParseCertPEM reads one PEM certificate.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM block of type CERTIFICATE")
	}
	return x509.ParseCertificate(block.Bytes)
}

// serialNumber is a random positive 128-bit serial number.
func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// IssuedAt is when a certificate of these CAs was issued: its NotBefore
// less the backdate it was given.
func IssuedAt(c *x509.Certificate) time.Time { return c.NotBefore.Add(backdate) }
