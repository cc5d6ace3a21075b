package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/chaindock/chaindock/internal/runtime"
)

// File names in Fabric's local MSP and TLS directories. Fabric reads any
// file name in cacerts/, signcerts/ and keystore/ (it finds the key by its
// SKI); these are cryptogen's, so the directories look like the ones
// Fabric's docs and samples show.
const (
	MSPCACert    = "cacerts/ca-cert.pem"
	MSPTLSCACert = "tlscacerts/tlsca-cert.pem"
	MSPSignCert  = "signcerts/cert.pem"
	MSPKey       = "keystore/priv_sk"
	MSPConfig    = "config.yaml"

	TLSCACert = "ca.crt"
	TLSCert   = "server.crt"
	TLSKey    = "server.key"
)

const (
	modePublic = 0o644
	modeSecret = 0o600
)

// MSPFiles is the local MSP directory dir of an identity issued by
// signCA: its CA certificates, its certificate and key, and a config.yaml
// that enables node OUs, so the MSP knows clients, peers, orderers and
// admins by their certificate's OU (no admincerts/). Paths are dir plus
// the names above, with slashes.
func MSPFiles(dir string, signCA, tlsCA *x509.Certificate, id *Identity) ([]runtime.File, error) {
	var errs []error
	if tlsCA == nil {
		errs = append(errs, errors.New("no TLS CA certificate"))
	}
	key, err := issuedKey("MSP directory", dir, signCA, "membership", id, errs)
	if err != nil {
		return nil, err
	}
	return []runtime.File{
		{Path: path.Join(dir, MSPCACert), Data: certPEM(signCA), Mode: modePublic},
		{Path: path.Join(dir, MSPTLSCACert), Data: certPEM(tlsCA), Mode: modePublic},
		{Path: path.Join(dir, MSPSignCert), Data: id.CertPEM(), Mode: modePublic},
		{Path: path.Join(dir, MSPKey), Data: key, Mode: modeSecret, Secret: true},
		{Path: path.Join(dir, MSPConfig), Data: NodeOUsConfig(MSPCACert), Mode: modePublic},
	}, nil
}

// TLSFiles is the TLS directory dir of a node: the TLS CA certificate, the
// node's certificate and its key.
func TLSFiles(dir string, tlsCA *x509.Certificate, id *Identity) ([]runtime.File, error) {
	key, err := issuedKey("TLS directory", dir, tlsCA, "TLS", id, nil)
	if err != nil {
		return nil, err
	}
	return []runtime.File{
		{Path: path.Join(dir, TLSCACert), Data: certPEM(tlsCA), Mode: modePublic},
		{Path: path.Join(dir, TLSCert), Data: id.CertPEM(), Mode: modePublic},
		{Path: path.Join(dir, TLSKey), Data: key, Mode: modeSecret, Secret: true},
	}, nil
}

// issuedKey checks that id was issued by ca, the directory's kind CA, and
// that dir is a path inside a node's home, adding its findings to errs;
// it returns id's key as PEM.
func issuedKey(what, dir string, ca *x509.Certificate, kind string, id *Identity, errs []error) ([]byte, error) {
	if ca == nil {
		errs = append([]error{fmt.Errorf("no %s CA certificate", kind)}, errs...)
	}
	if id == nil || id.Cert == nil || id.Key == nil {
		errs = append(errs, errors.New("no identity certificate and key"))
	}
	if err := checkDir(dir); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", what, errors.Join(errs...))
	}
	if err := id.Cert.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("%s %s: the certificate of %s is not signed by %s: %w",
			what, dir, id.Cert.Subject.CommonName, ca.Subject.CommonName, err)
	}
	key, err := id.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, dir, err)
	}
	return key, nil
}

// NodeOUsConfig is an MSP's config.yaml enabling node OUs, each identified
// by the CA certificate at caCert (relative to the MSP directory) and the
// OU name.
func NodeOUsConfig(caCert string) []byte {
	var b strings.Builder
	b.WriteString("NodeOUs:\n  Enable: true\n")
	for _, r := range Roles {
		name := strings.ToUpper(string(r[:1])) + string(r[1:])
		fmt.Fprintf(&b, "  %sOUIdentifier:\n    Certificate: %s\n    OrganizationalUnitIdentifier: %s\n", name, caCert, r)
	}
	return []byte(b.String())
}

// checkDir accepts a relative slash path inside a node's home.
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	if path.IsAbs(dir) || strings.Contains(dir, `\`) || path.Clean(dir) != dir ||
		dir == ".." || strings.HasPrefix(dir, "../") {
		return fmt.Errorf("dir %q: not a clean relative path inside the node's home", dir)
	}
	return nil
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
