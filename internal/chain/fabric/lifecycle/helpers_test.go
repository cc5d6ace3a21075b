package lifecycle

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

// testOrg is an organisation with its CAs, admin and one peer's signing
// identity.
type testOrg struct {
	mspID string
	cas   *pki.OrgCAs
	admin channel.Signer
	peer  channel.Signer
}

func newTestOrg(t *testing.T, domain, mspID string) *testOrg {
	t.Helper()
	cas, err := pki.NewOrgCAs(domain, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, role pki.Role) channel.Signer {
		id, err := cas.MSP.IssueMSP(pki.Request{Name: name, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return channel.Signer{MSPID: mspID, Cert: id.Cert, Key: id.Key}
	}
	return &testOrg{
		mspID: mspID,
		cas:   cas,
		admin: issue("Admin@"+domain, pki.RoleAdmin),
		peer:  issue("peer0."+domain, pki.RolePeer),
	}
}

// tlsPair is a TLS certificate and key as PEM, and its CA's certificate.
type tlsPair struct {
	ca, cert, key string
}

func newTLSPair(t *testing.T, org *testOrg, host string) tlsPair {
	t.Helper()
	id, err := org.cas.TLS.IssueTLS(pki.Request{Name: host, Hosts: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := id.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return tlsPair{ca: string(org.cas.TLS.CertPEM()), cert: string(id.CertPEM()), key: string(key)}
}

// verifyFabricSignature checks a signature as Fabric's MSP does: ECDSA
// over SHA-256(msg), with a low S.
func verifyFabricSignature(cert *x509.Certificate, msg, sig []byte) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return errors.New("not an ECDSA key")
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 {
		return errors.New("not an ASN.1 ECDSA signature")
	}
	if rs.S.Cmp(new(big.Int).Rsh(pub.Curve.Params().N, 1)) > 0 {
		return errors.New("high S")
	}
	digest := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return errors.New("signature does not verify")
	}
	return nil
}

// wantErr fails unless err wraps target (when set) and says each of
// parts.
func wantErr(t *testing.T, err, target error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one saying %q", parts)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q does not wrap %q", err, target)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}
