package fabric

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

// TestPlanAppIdentity checks that every peer organisation of a plan has
// a built-in application identity, a client of its MSP, which the
// gateway signs with, and that a plan without one falls back to the
// admin.
func TestPlanAppIdentity(t *testing.T) {
	n, plan := planFor(t, "two-orgs.good.yaml")
	for _, org := range []string{"org1", "org2"} {
		ca := mustCert(t, plan.Artifact(orgPath(org, artCA+"/cert.pem")))
		cert := mustCert(t, plan.Artifact(orgPath(org, artAppMSP+"/"+pki.MSPSignCert)))
		if err := cert.CheckSignatureFrom(ca); err != nil {
			t.Errorf("%s: application identity not signed by the organisation's CA: %v", org, err)
		}
		if !slices.Equal(cert.Subject.OrganizationalUnit, []string{"client"}) || !strings.HasPrefix(cert.Subject.CommonName, AppName+"@"+org+".") {
			t.Errorf("%s: application identity %s with OUs %v; want %s@%s... with exactly [client]", org, cert.Subject.CommonName, cert.Subject.OrganizationalUnit, AppName, org)
		}
		s, err := appSigner(plan, org)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Cert.Equal(cert) || s.MSPID != MSPID(org) || !s.Key.PublicKey.Equal(cert.PublicKey) {
			t.Errorf("%s: the gateway signs as %s of %s; want the application identity", org, s.Cert.Subject.CommonName, s.MSPID)
		}
	}
	if plan.Artifact(orgPath(n.Spec.Fabric.OrdererOrg(), artAdminMSP+"/"+pki.MSPSignCert)) == nil {
		t.Fatalf("the plan has no organisation %s", n.Spec.Fabric.OrdererOrg())
	}
	for _, f := range plan.Artifacts {
		if strings.HasPrefix(f.Path, orgPath(n.Spec.Fabric.OrdererOrg(), artAppMSP)) {
			t.Errorf("the orderer organisation has an application identity: %s", f.Path)
		}
	}

	// A plan made before organisations had one signs as the admin.
	old := &chain.Plan{ChainID: plan.ChainID, Nodes: plan.Nodes}
	for _, f := range plan.Artifacts {
		if !strings.HasPrefix(f.Path, orgPath("org1", artAppMSP)) {
			old.Artifacts = append(old.Artifacts, f)
		}
	}
	s, err := appSigner(old, "org1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Cert.Subject.OrganizationalUnit, []string{"admin"}) {
		t.Errorf("a plan without an application identity signs as %s %v; want the admin", s.Cert.Subject.CommonName, s.Cert.Subject.OrganizationalUnit)
	}
}

func TestEnroll(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	now := time.Now()
	e, err := Enroll(plan, "org2", "app1", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	ca := mustCert(t, plan.Artifact(orgPath("org2", artCA+"/cert.pem")))
	cert := mustCert(t, e.CertPEM)
	if err := cert.CheckSignatureFrom(ca); err != nil || cert.Subject.CommonName != "app1" || !slices.Equal(cert.Subject.OrganizationalUnit, []string{"client"}) {
		t.Errorf("enrolled %s %v (%v); want app1, client, signed by org2's CA", cert.Subject.CommonName, cert.Subject.OrganizationalUnit, err)
	}
	if _, err := parseSigner(e.MSPID, e.CertPEM, e.KeyPEM); err != nil || e.MSPID != "Org2MSP" {
		t.Errorf("the enrolment's key: %v, MSP %s", err, e.MSPID)
	}
	var peers []string
	for _, p := range e.Peers {
		peers = append(peers, p.Name)
		if p.TLSHostName != "127.0.0.1" || !strings.HasPrefix(p.Endpoint, "127.0.0.1:") {
			t.Errorf("peer %+v; want 127.0.0.1:PORT", p)
		}
	}
	for _, pn := range plan.Nodes {
		if pn.Organization == "org2" && pn.Role == "full" && !slices.Contains(peers, pn.Name) {
			t.Errorf("peers %v; want %s among them", peers, pn.Name)
		}
	}
	if !slices.Equal(e.TLSCACertPEM, plan.Artifact(orgPath("org2", artTLSCA+"/cert.pem"))) {
		t.Error("the TLS CA is not org2's")
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "app2"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := Enroll(plan, "org1", "app2", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), now)
	if err != nil {
		t.Fatal(err)
	}
	if e2.KeyPEM != nil || !mustCert(t, e2.CertPEM).PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Error("a CSR enrolment: want the request's key, and no key returned")
	}
	if _, err := Enroll(plan, "org9", "app1", nil, now); err == nil || !strings.Contains(err.Error(), "org9") {
		t.Errorf("an unknown organisation: %v", err)
	}
}

func TestEnrolledSigner(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	e, err := Enroll(plan, "org1", "app1", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys := func(_ context.Context, org, name string) ([]byte, []byte, error) {
		switch {
		case org == "org1" && name == "app1":
			return e.CertPEM, e.KeyPEM, nil
		case org == "org1" && name == "app2":
			return nil, nil, fmt.Errorf("app2: %w", ErrKeyNotHeld)
		}
		return nil, nil, fmt.Errorf("%s: %w", name, ErrNoIdentity)
	}
	ctx := WithIdentityKeys(t.Context(), keys)
	s, err := enrolledSigner(ctx, "org1", "app1")
	if err != nil || s.Cert.Subject.CommonName != "app1" || s.MSPID != "Org1MSP" {
		t.Fatalf("signer %v %v; want app1 of Org1MSP", s.Cert, err)
	}
	for _, tc := range []struct {
		ctx             context.Context
		org, name, want string
	}{
		{ctx, "org1", "app2", "certificate signing request"},
		{ctx, "org2", "app1", `"app1" is no identity enrolled for organisation org2`},
		{t.Context(), "org1", "app1", "no enrolled identities"},
	} {
		_, err := enrolledSigner(tc.ctx, tc.org, tc.name)
		if !errors.Is(err, chain.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s of %s: %v; want a malformed call saying %q", tc.name, tc.org, err, tc.want)
		}
	}
	if _, err := ParseCall([]byte(`{"chaincode":"notary","function":"Get","identity":"App1"}`)); err == nil || !strings.Contains(err.Error(), "identity:") {
		t.Errorf("a call naming identity App1: %v; want refused", err)
	}
	if c, err := ParseCall([]byte(`{"chaincode":"notary","function":"Get","identity":"app1"}`)); err != nil || c.Identity != "app1" {
		t.Errorf("a call naming identity app1: %+v %v", c, err)
	}
}

// TestReshapeAppIdentity: an organisation added to a running network
// gets its built-in application identity as the first ones did.
func TestReshapeAppIdentity(t *testing.T) {
	_, _, next := reshapeFor(t)
	s, err := appSigner(next, "org3")
	if err != nil {
		t.Fatal(err)
	}
	ca := mustCert(t, next.Artifact(orgPath("org3", artCA+"/cert.pem")))
	if err := s.Cert.CheckSignatureFrom(ca); err != nil || s.MSPID != "Org3MSP" || !slices.Equal(s.Cert.Subject.OrganizationalUnit, []string{"client"}) {
		t.Errorf("org3 signs as %s of %s, OUs %v (%v); want its application identity, a client issued by its CA", s.Cert.Subject.CommonName, s.MSPID, s.Cert.Subject.OrganizationalUnit, err)
	}
}
