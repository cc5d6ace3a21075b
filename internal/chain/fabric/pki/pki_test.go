package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// orgCAs makes an organisation's two CAs or fails the test.
func orgCAs(t *testing.T, org string) *OrgCAs {
	t.Helper()
	cas, err := NewOrgCAs(org, 0)
	if err != nil {
		t.Fatal(err)
	}
	return cas
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// verifyMSP checks cert against root as Fabric's MSP does: any usage.
func verifyMSP(cert, root *x509.Certificate) error {
	_, err := cert.Verify(x509.VerifyOptions{Roots: pool(root), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

func wantSKI(t *testing.T, c *x509.Certificate) {
	t.Helper()
	pub := c.PublicKey.(*ecdsa.PublicKey)
	ek, err := pub.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	point := ek.Bytes()
	if len(point) != 65 || point[0] != 4 {
		t.Fatalf("public key point is not an uncompressed P-256 point: % x", point)
	}
	sum := sha256.Sum256(point)
	if !bytes.Equal(c.SubjectKeyId, sum[:]) {
		t.Errorf("%s: SubjectKeyId %x, want SHA-256 of the public key point %x", c.Subject.CommonName, c.SubjectKeyId, sum)
	}
}

func TestCAShape(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, kind := range []Kind{KindMSP, KindTLS} {
		t.Run(string(kind), func(t *testing.T) {
			ca, err := NewCA(CAOptions{Org: "org1.example.com", Kind: kind, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			c := ca.Cert
			if want := string(kind) + ".org1.example.com"; c.Subject.CommonName != want {
				t.Errorf("CN %q, want %q", c.Subject.CommonName, want)
			}
			if !slices.Equal(c.Subject.Organization, []string{"org1.example.com"}) {
				t.Errorf("O %q, want org1.example.com", c.Subject.Organization)
			}
			if !c.IsCA || !c.BasicConstraintsValid {
				t.Error("not a CA certificate")
			}
			wantKU := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign | x509.KeyUsageCRLSign
			if c.KeyUsage != wantKU {
				t.Errorf("KeyUsage %b, want %b", c.KeyUsage, wantKU)
			}
			if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}) {
				t.Errorf("ExtKeyUsage %v, want ClientAuth and ServerAuth", c.ExtKeyUsage)
			}
			if c.PublicKeyAlgorithm != x509.ECDSA || c.PublicKey.(*ecdsa.PublicKey).Curve.Params().Name != "P-256" {
				t.Errorf("key %v, want ECDSA P-256", c.PublicKeyAlgorithm)
			}
			wantSKI(t, c)
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("not self-signed: %v", err)
			}
			if got := c.NotAfter.Sub(now); got != DefaultCAValidity {
				t.Errorf("valid for %s after issue, want %s", got, DefaultCAValidity)
			}
			if !c.NotBefore.Before(now) {
				t.Errorf("NotBefore %s is not before the time of issue %s", c.NotBefore, now)
			}
		})
	}
}

func TestIssueMSP(t *testing.T) {
	org1, org2 := orgCAs(t, "org1.example.com"), orgCAs(t, "org2.example.com")
	for _, role := range Roles {
		t.Run(string(role), func(t *testing.T) {
			id, err := org1.MSP.IssueMSP(Request{Name: "x@org1.example.com", Role: role})
			if err != nil {
				t.Fatal(err)
			}
			c := id.Cert
			if err := verifyMSP(c, org1.MSP.Cert); err != nil {
				t.Errorf("does not verify against its CA: %v", err)
			}
			if verifyMSP(c, org2.MSP.Cert) == nil {
				t.Error("verifies against another organisation's CA")
			}
			if verifyMSP(c, org1.TLS.Cert) == nil {
				t.Error("verifies against its organisation's TLS CA")
			}
			if !slices.Equal(c.Subject.OrganizationalUnit, []string{string(role)}) {
				t.Errorf("subject OU %q, want only %q", c.Subject.OrganizationalUnit, role)
			}
			if c.Subject.CommonName != "x@org1.example.com" {
				t.Errorf("CN %q", c.Subject.CommonName)
			}
			if c.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("KeyUsage %b, want DigitalSignature only", c.KeyUsage)
			}
			if c.IsCA {
				t.Error("a leaf is a CA")
			}
			if !bytes.Equal(c.AuthorityKeyId, org1.MSP.Cert.SubjectKeyId) {
				t.Errorf("AuthorityKeyId %x, want the CA's SubjectKeyId %x", c.AuthorityKeyId, org1.MSP.Cert.SubjectKeyId)
			}
			wantSKI(t, c)
			if len(c.DNSNames)+len(c.IPAddresses) > 0 {
				t.Errorf("enrolment certificate has SANs %v %v", c.DNSNames, c.IPAddresses)
			}
		})
	}
}

func TestIssueTLS(t *testing.T) {
	org1, org2 := orgCAs(t, "org1.example.com"), orgCAs(t, "org2.example.com")
	id, err := org1.TLS.IssueTLS(Request{
		Name:  "peer0.org1.example.com",
		Hosts: []string{"peer0.org1.example.com", "localhost", "127.0.0.1", "::1", "*.peers.svc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := id.Cert
	if want := []string{"peer0.org1.example.com", "localhost", "*.peers.svc"}; !slices.Equal(c.DNSNames, want) {
		t.Errorf("DNS SANs %q, want %q", c.DNSNames, want)
	}
	if len(c.IPAddresses) != 2 || !c.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !c.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IP SANs %v, want 127.0.0.1 and ::1", c.IPAddresses)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage %v, want ServerAuth and ClientAuth", c.ExtKeyUsage)
	}
	if len(c.Subject.OrganizationalUnit) > 0 {
		t.Errorf("TLS certificate has OUs %q", c.Subject.OrganizationalUnit)
	}
	if !bytes.Equal(c.AuthorityKeyId, org1.TLS.Cert.SubjectKeyId) {
		t.Errorf("AuthorityKeyId %x, want the TLS CA's %x", c.AuthorityKeyId, org1.TLS.Cert.SubjectKeyId)
	}
	wantSKI(t, c)
	for _, host := range []string{"peer0.org1.example.com", "localhost", "127.0.0.1", "::1", "a.peers.svc"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool(org1.TLS.Cert), DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("host %s, usage %v: %v", host, usage, err)
			}
		}
	}
	if err := c.VerifyHostname("peer1.org1.example.com"); err == nil {
		t.Error("valid for a host it was not issued for")
	}
	for name, root := range map[string]*x509.Certificate{"another organisation's TLS CA": org2.TLS.Cert, "the membership CA": org1.MSP.Cert} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool(root), DNSName: "localhost"}); err == nil {
			t.Errorf("verifies against %s", name)
		}
	}
}

func TestExpiry(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	ca, err := NewCA(CAOptions{Org: "org1.example.com", Kind: KindMSP, Now: now, Validity: 2 * DefaultLeafValidity})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		validity time.Duration
		want     time.Time
	}{
		{"default", 0, now.Add(DefaultLeafValidity)},
		{"custom", 30 * 24 * time.Hour, now.Add(30 * 24 * time.Hour)},
		{"longer than the CA", 5 * DefaultLeafValidity, ca.Cert.NotAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ca.IssueMSP(Request{Name: "peer0", Role: RolePeer, Validity: tt.validity, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if !id.Cert.NotAfter.Equal(tt.want) {
				t.Errorf("NotAfter %s, want %s", id.Cert.NotAfter, tt.want)
			}
			if !id.Cert.NotBefore.Before(now) {
				t.Errorf("NotBefore %s is not before the time of issue", id.Cert.NotBefore)
			}
		})
	}
	id, err := ca.IssueMSP(Request{Name: "peer0", Role: RolePeer, Validity: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = id.Cert.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), CurrentTime: now.Add(2 * time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err == nil {
		t.Error("an expired certificate verifies")
	}
}

func TestCAPEMRoundTrip(t *testing.T) {
	org1, org2 := orgCAs(t, "org1.example.com"), orgCAs(t, "org2.example.com")
	certPEM, keyPEM, err := org1.MSP.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(keyPEM, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Errorf("key is not PKCS#8 PEM:\n%s", keyPEM)
	}
	loaded, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(org1.MSP.Cert) || !loaded.Key.Equal(org1.MSP.Key) {
		t.Fatal("the loaded CA differs from the one marshalled")
	}
	id, err := loaded.IssueMSP(Request{Name: "Admin@org1.example.com", Role: RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyMSP(id.Cert, org1.MSP.Cert); err != nil {
		t.Errorf("a certificate from the loaded CA does not verify against the original: %v", err)
	}

	_, otherKey, err := org2.MSP.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := id.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"another CA's key", certPEM, otherKey, "the key is not the certificate's"},
		{"a leaf certificate", id.CertPEM(), leafKey, "not a CA certificate"},
		{"no certificate", keyPEM, keyPEM, "certificate: no PEM block of type CERTIFICATE"},
		{"no key", certPEM, certPEM, "key: no PEM block of type PRIVATE KEY"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCA(tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestMSPFiles(t *testing.T) {
	org1 := orgCAs(t, "org1.example.com")
	id, err := org1.MSP.IssueMSP(Request{Name: "peer0.org1.example.com", Role: RolePeer})
	if err != nil {
		t.Fatal(err)
	}
	files, err := MSPFiles("msp", org1.MSP.Cert, org1.TLS.Cert, id)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		path   string
		secret bool
		data   []byte
	}{
		{"msp/cacerts/ca-cert.pem", false, org1.MSP.CertPEM()},
		{"msp/tlscacerts/tlsca-cert.pem", false, org1.TLS.CertPEM()},
		{"msp/signcerts/cert.pem", false, id.CertPEM()},
		{"msp/keystore/priv_sk", true, nil},
		{"msp/config.yaml", false, []byte(`NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca-cert.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca-cert.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca-cert.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca-cert.pem
    OrganizationalUnitIdentifier: orderer
`)},
	}
	if len(files) != len(want) {
		t.Fatalf("%d files, want %d", len(files), len(want))
	}
	for i, w := range want {
		f := files[i]
		if f.Path != w.path {
			t.Errorf("file %d is %s, want %s", i, f.Path, w.path)
			continue
		}
		if f.Secret != w.secret {
			t.Errorf("%s: secret %v, want %v", f.Path, f.Secret, w.secret)
		}
		if wantMode := map[bool]uint32{true: 0o600, false: 0o644}[w.secret]; uint32(f.Mode) != wantMode {
			t.Errorf("%s: mode %o, want %o", f.Path, f.Mode, wantMode)
		}
		if w.data != nil && !bytes.Equal(f.Data, w.data) {
			t.Errorf("%s:\n%s\nwant:\n%s", f.Path, f.Data, w.data)
		}
	}
	key, err := ParseKeyPEM(files[3].Data)
	if err != nil {
		t.Fatalf("keystore/priv_sk: %v", err)
	}
	if !key.PublicKey.Equal(id.Cert.PublicKey) {
		t.Error("keystore/priv_sk is not the key of signcerts/cert.pem")
	}

	other := orgCAs(t, "org2.example.com")
	if _, err := MSPFiles("msp", other.MSP.Cert, other.TLS.Cert, id); err == nil || !strings.Contains(err.Error(), "is not signed by ca.org2.example.com") {
		t.Errorf("another organisation's CA: error %v", err)
	}
}

func TestTLSFiles(t *testing.T) {
	org1 := orgCAs(t, "org1.example.com")
	id, err := org1.TLS.IssueTLS(Request{Name: "orderer0", Hosts: []string{"orderer0.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	files, err := TLSFiles("tls", org1.TLS.Cert, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
		if f.Secret != (f.Path == "tls/server.key") || (f.Secret && f.Mode != 0o600) {
			t.Errorf("%s: secret %v, mode %o", f.Path, f.Secret, f.Mode)
		}
	}
	if want := []string{"tls/ca.crt", "tls/server.crt", "tls/server.key"}; !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	if !bytes.Equal(files[0].Data, org1.TLS.CertPEM()) || !bytes.Equal(files[1].Data, id.CertPEM()) {
		t.Error("ca.crt or server.crt is not the expected certificate")
	}
	key, err := ParseKeyPEM(files[2].Data)
	if err != nil || !key.PublicKey.Equal(id.Cert.PublicKey) {
		t.Errorf("server.key is not the key of server.crt (%v)", err)
	}
	if _, err := TLSFiles("tls", org1.MSP.Cert, id); err == nil || !strings.Contains(err.Error(), "is not signed by ca.org1.example.com") {
		t.Errorf("the membership CA as TLS CA: error %v", err)
	}
}

func TestBadInput(t *testing.T) {
	org1 := orgCAs(t, "org1.example.com")
	id, err := org1.MSP.IssueMSP(Request{Name: "peer0", Role: RolePeer})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		want []string
	}{
		{"empty org name", func() error { _, err := NewOrgCAs("", 0); return err }, []string{"org: empty organisation name"}},
		{"org name with a space", func() error { _, err := NewOrgCAs("org 1", 0); return err }, []string{`org "org 1"`, "' '"}},
		{"unknown CA kind", func() error { _, err := NewCA(CAOptions{Org: "o", Kind: "root"}); return err }, []string{`kind "root"`}},
		{"negative CA validity", func() error { _, err := NewOrgCAs("o", -time.Hour); return err }, []string{"validity -1h0m0s: negative"}},
		{"invalid host", func() error {
			_, err := org1.TLS.IssueTLS(Request{Name: "peer0", Hosts: []string{"peer0", "peer_0.example.com", "-x"}})
			return err
		}, []string{`hosts[1] "peer_0.example.com": neither an IP address nor a DNS name`, `hosts[2] "-x"`}},
		{"empty host", func() error { _, err := org1.TLS.IssueTLS(Request{Name: "peer0", Hosts: []string{""}}); return err }, []string{`hosts[0] ""`}},
		{"no name", func() error { _, err := org1.TLS.IssueTLS(Request{Hosts: []string{"a"}}); return err }, []string{"name: empty"}},
		{"no role", func() error { _, err := org1.MSP.IssueMSP(Request{Name: "x"}); return err }, []string{`role "": not one of client, peer, orderer, admin`}},
		{"unknown role", func() error { _, err := org1.MSP.IssueMSP(Request{Name: "x", Role: "member"}); return err }, []string{`role "member"`}},
		{"role on a TLS certificate", func() error { _, err := org1.TLS.IssueTLS(Request{Name: "x", Role: RolePeer}); return err }, []string{"a TLS certificate has no role"}},
		{"hosts on an enrolment certificate", func() error {
			_, err := org1.MSP.IssueMSP(Request{Name: "x", Role: RolePeer, Hosts: []string{"a"}})
			return err
		}, []string{"an enrolment certificate names no hosts"}},
		{"no CA", func() error { _, err := (&CA{}).IssueMSP(Request{Name: "x", Role: RolePeer}); return err }, []string{"no CA certificate and key"}},
		{"MSP files without CAs", func() error { _, err := MSPFiles("msp", nil, nil, id); return err }, []string{"no membership CA certificate", "no TLS CA certificate"}},
		{"MSP files outside the home", func() error { _, err := MSPFiles("../msp", org1.MSP.Cert, org1.TLS.Cert, id); return err }, []string{`dir "../msp"`}},
		{"TLS files without identity", func() error { _, err := TLSFiles("/tls", org1.TLS.Cert, nil); return err }, []string{"no identity certificate and key", `dir "/tls"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
