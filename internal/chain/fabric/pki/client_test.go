package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
)

// wantClient checks that cert is an application identity of name issued
// by ca: it verifies against ca, its only subject OU is client, and it
// may sign and nothing else.
func wantClient(t *testing.T, cert *x509.Certificate, ca *CA, name string) {
	t.Helper()
	if err := verifyMSP(cert, ca.Cert); err != nil {
		t.Errorf("%s does not verify against %s: %v", name, ca.Cert.Subject.CommonName, err)
	}
	if !slices.Equal(cert.Subject.OrganizationalUnit, []string{"client"}) {
		t.Errorf("%s: subject OUs %v; want exactly [client]", name, cert.Subject.OrganizationalUnit)
	}
	if cert.Subject.CommonName != name {
		t.Errorf("subject CN %q; want %q", cert.Subject.CommonName, name)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature || cert.IsCA {
		t.Errorf("%s: key usage %b, CA %v; want digital signature only, no CA", name, cert.KeyUsage, cert.IsCA)
	}
	wantSKI(t, cert)
}

func csrPEM(t *testing.T, key any, cn string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn, OrganizationalUnit: []string{"admin"}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestIssueClient(t *testing.T) {
	cas := orgCAs(t, "org1.example.com")
	id, err := cas.MSP.IssueClient(Request{Name: "app1"})
	if err != nil {
		t.Fatal(err)
	}
	wantClient(t, id.Cert, cas.MSP, "app1")
	if pub := id.Cert.PublicKey.(*ecdsa.PublicKey); !pub.Equal(&id.Key.PublicKey) {
		t.Error("the certificate is not of the identity's key")
	}
	if err := verifyMSP(id.Cert, cas.TLS.Cert); err == nil {
		t.Error("a client certificate verifies against the TLS CA")
	}
	if _, err := cas.MSP.IssueClient(Request{Name: "app1", Role: RoleAdmin}); err == nil || !strings.Contains(err.Error(), "is a client") {
		t.Errorf("an admin application identity: %v; want refused", err)
	}
}

func TestIssueClientCSR(t *testing.T) {
	cas := orgCAs(t, "org1.example.com")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The request asks for the admin OU: the certificate is a client's
	// all the same.
	cert, err := cas.MSP.IssueClientCSR(csrPEM(t, key, "app2"), Request{Name: "app2"})
	if err != nil {
		t.Fatal(err)
	}
	wantClient(t, cert, cas.MSP, "app2")
	if pub := cert.PublicKey.(*ecdsa.PublicKey); !pub.Equal(&key.PublicKey) {
		t.Error("the certificate is not of the request's key")
	}

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// A request whose signature was made over other bytes: flip a bit of
	// the signature at the end of the DER.
	good := csrPEM(t, key, "app2")
	block, _ := pem.Decode(good)
	block.Bytes[len(block.Bytes)-3] ^= 0x40
	badSig := pem.EncodeToMemory(block)
	certBlock := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})

	for _, tc := range []struct {
		name string
		csr  []byte
		want string
	}{
		{"bad signature", badSig, "signature does not verify"},
		{"P-384", csrPEM(t, p384, "app2"), "ECDSA key on P-384; want P-256"},
		{"RSA", csrPEM(t, rsaKey, "app2"), "RSA key; want ECDSA on P-256"},
		{"other name", csrPEM(t, key, "app3"), `subject CN "app3"; want the identity's name "app2"`},
		{"not PEM", []byte("MIIB..."), "no PEM block"},
		{"a certificate", certBlock, "type CERTIFICATE; want CERTIFICATE REQUEST"},
		{"two blocks", append(slices.Clone(good), good...), "more after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cas.MSP.IssueClientCSR(tc.csr, Request{Name: "app2"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("issued %v, error %v; want an error saying %q", c != nil, err, tc.want)
			}
			var bad *CSRError
			if !errors.As(err, &bad) {
				t.Errorf("error %v is no CSRError", err)
			}
		})
	}
}
