package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRenew(t *testing.T) {
	org1, org2 := orgCAs(t, "org1.example.com"), orgCAs(t, "org2.example.com")
	issued := time.Now().Add(-300 * 24 * time.Hour)
	tlsID, err := org1.TLS.IssueTLS(Request{Name: "orderer0.org1.example.com", Hosts: []string{"orderer0", "127.0.0.1"}, Now: issued})
	if err != nil {
		t.Fatal(err)
	}
	mspID, err := org1.MSP.IssueMSP(Request{Name: "peer0.org1.example.com", Role: RolePeer, Now: issued})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tt := range []struct {
		name string
		ca   *CA
		old  *x509.Certificate
	}{{"TLS", org1.TLS, tlsID.Cert}, {"MSP", org1.MSP, mspID.Cert}} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.ca.Renew(tt.old, 0, now)
			if err != nil {
				t.Fatal(err)
			}
			if !c.PublicKey.(*ecdsa.PublicKey).Equal(tt.old.PublicKey) {
				t.Error("the renewed certificate has another key")
			}
			if c.SerialNumber.Cmp(tt.old.SerialNumber) == 0 {
				t.Error("the renewed certificate has the old serial number")
			}
			if c.Subject.String() != tt.old.Subject.String() || !slices.Equal(c.Subject.OrganizationalUnit, tt.old.Subject.OrganizationalUnit) {
				t.Errorf("subject %q, want %q", c.Subject, tt.old.Subject)
			}
			if !slices.Equal(c.DNSNames, tt.old.DNSNames) || len(c.IPAddresses) != len(tt.old.IPAddresses) {
				t.Errorf("hosts %v %v, want %v %v", c.DNSNames, c.IPAddresses, tt.old.DNSNames, tt.old.IPAddresses)
			}
			if c.KeyUsage != tt.old.KeyUsage || !slices.Equal(c.ExtKeyUsage, tt.old.ExtKeyUsage) {
				t.Errorf("usages %v %v, want %v %v", c.KeyUsage, c.ExtKeyUsage, tt.old.KeyUsage, tt.old.ExtKeyUsage)
			}
			if !bytes.Equal(c.SubjectKeyId, tt.old.SubjectKeyId) {
				t.Error("the renewed certificate has another SKI, by which Fabric finds its key")
			}
			if want := now.Add(DefaultLeafValidity).UTC(); !c.NotAfter.Equal(want.Truncate(time.Second)) {
				t.Errorf("NotAfter %s, want %s", c.NotAfter, want)
			}
			if err := verifyMSP(c, tt.ca.Cert); err != nil {
				t.Errorf("does not verify against its CA: %v", err)
			}
		})
	}
	if _, err := org2.TLS.Renew(tlsID.Cert, 0, now); err == nil || !strings.Contains(err.Error(), "not issued by CA") {
		t.Errorf("renewed by another organisation's CA: %v", err)
	}
	if _, err := org1.MSP.Renew(tlsID.Cert, 0, now); err == nil {
		t.Error("the membership CA renewed a TLS certificate")
	}
	if _, err := org1.TLS.Renew(tlsID.Cert, -time.Hour, now); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative validity: %v", err)
	}
	if _, err := org1.TLS.Renew(nil, 0, now); err == nil {
		t.Error("renewed nothing")
	}
}
