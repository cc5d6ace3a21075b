package channel

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"

	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"

	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

// TestRevokeCertificates: the update writes Org1MSP's MSP value with a
// revocation list, signed by its CA, naming the certificate; one admin of
// Org1MSP signs it.
func TestRevokeCertificates(t *testing.T) {
	n := newNetwork(t)
	cfg := genesisConfig(t, n.spec)
	app := issueSigner(t, n.org1.cas.MSP, "Org1MSP", "app1", pki.RoleClient)
	if revoked, err := Revoked(cfg, "Org1MSP", app.Cert); err != nil || revoked {
		t.Fatalf("revoked in the genesis configuration: %v %v", revoked, err)
	}
	upd, err := RevokeCertificates("mychannel", cfg, "Org1MSP", n.org1.cas.MSP.Cert, n.org1.cas.MSP.Key, app.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if upd.Policy.Rule != "Org1MSP Admins" || upd.Policy.Need != 1 {
		t.Errorf("policy %+v; want one admin of Org1MSP", upd.Policy)
	}
	_, err = upd.Sign(app)
	wantErr(t, err, ErrSigner, "app1 is not an admin")
	env, err := upd.Sign(n.org1.admin)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeUpdate(t, env, n.cas())
	org := d.update.WriteSet.Groups["Application"].Groups["Org1MSP"]
	v, ok := org.GetValues()["MSP"]
	if !ok || org.Version != 0 || v.Version != 1 {
		t.Fatalf("write set of Org1MSP: MSP value %v at version %d (group %d); want the MSP value, version 1", ok, v.GetVersion(), org.GetVersion())
	}
	var mc mb.MSPConfig
	unmarshal(t, v.Value, &mc)
	var fc mb.FabricMSPConfig
	unmarshal(t, mc.Config, &fc)
	if len(fc.RevocationList) != 1 {
		t.Fatalf("%d revocation lists; want 1", len(fc.RevocationList))
	}
	crl, err := parseCRLPEM(fc.RevocationList[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(n.org1.cas.MSP.Cert); err != nil {
		t.Errorf("the revocation list is not signed by Org1MSP's CA: %v", err)
	}
	var serials []string
	for _, e := range crl.RevokedCertificateEntries {
		serials = append(serials, e.SerialNumber.String())
	}
	if !slices.Equal(serials, []string{app.Cert.SerialNumber.String()}) {
		t.Errorf("revoked serials %v; want app1's %s only", serials, app.Cert.SerialNumber)
	}
	if !slices.Equal(crl.AuthorityKeyId, n.org1.cas.MSP.Cert.SubjectKeyId) {
		t.Error("the revocation list's authority key ID is not the CA's subject key ID, by which peers find its CA")
	}

	_, err = RevokeCertificates("mychannel", cfg, "Org9MSP", n.org1.cas.MSP.Cert, n.org1.cas.MSP.Key, app.Cert)
	wantErr(t, err, ErrUnknownOrg, "no such organisation in the channel: Org9MSP")
	// Org2's CA is not Org1MSP's; Org2's certificate was not issued by Org1's CA.
	if _, err := RevokeCertificates("mychannel", cfg, "Org1MSP", n.org2.cas.MSP.Cert, n.org2.cas.MSP.Key, app.Cert); err == nil || !strings.Contains(err.Error(), "not a root/intermediate cert") {
		t.Errorf("signed by another organisation's CA: %v", err)
	}
	o2 := issueSigner(t, n.org2.cas.MSP, "Org2MSP", "app3", pki.RoleClient)
	if _, err := RevokeCertificates("mychannel", cfg, "Org1MSP", n.org1.cas.MSP.Cert, n.org1.cas.MSP.Key, o2.Cert); err == nil || !strings.Contains(err.Error(), "not issued by this MSP") {
		t.Errorf("another organisation's certificate: %v", err)
	}
	if _, err := RevokeCertificates("mychannel", cfg, "Org1MSP", n.org1.cas.MSP.Cert, n.org1.cas.MSP.Key); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("nothing to revoke: %v", err)
	}
}

// parseCRLPEM reads one PEM revocation list, as an MSP configuration
// keeps it.
func parseCRLPEM(b []byte) (*x509.RevocationList, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "X509 CRL" {
		return nil, errors.New("no PEM block of type X509 CRL")
	}
	return x509.ParseRevocationList(block.Bytes)
}
