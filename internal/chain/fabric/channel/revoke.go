package channel

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
)

// RevokeCertificates is the update that adds to an application
// organisation's MSP a certificate revocation list naming certs, signed
// by ca, the organisation's membership CA (a root of its MSP, which
// issued them). Peers then refuse what those certificates sign. The
// organisation's admin signs the update: the MSP value is governed by the
// organisation's own Admins policy.
func RevokeCertificates(channelID string, config *cb.Config, mspID string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certs ...*x509.Certificate) (*Update, error) {
	fail := func(err error) (*Update, error) {
		return nil, fmt.Errorf("channel %s: revoke certificates of %s: %w", channelID, mspID, err)
	}
	if err := checkConfig(channelID, config); err != nil {
		return fail(err)
	}
	if len(certs) == 0 {
		return fail(errors.New("no certificate to revoke"))
	}
	if ca == nil || caKey == nil {
		return fail(errors.New("no CA certificate and key to sign the revocation list"))
	}
	tx := configtx.New(config)
	org, err := applicationGroup.org(tx.OriginalConfig(), mspID)
	if err != nil {
		return fail(err)
	}
	msp := tx.Application().Organization(org.Group).MSP()
	signer := &configtx.SigningIdentity{Certificate: ca, PrivateKey: caKey, MSPID: mspID}
	if err := msp.AddCRLFromSigningIdentity(signer, certs...); err != nil {
		return fail(err)
	}
	req, err := orgAdmins(config, org)
	if err != nil {
		return fail(err)
	}
	u, err := newUpdate(channelID, &tx, req)
	if err != nil {
		return fail(err)
	}
	return u, nil
}

// Revoked reports whether a revocation list of organisation mspID's MSP
// in config names cert.
func Revoked(config *cb.Config, mspID string, cert *x509.Certificate) (bool, error) {
	org, err := applicationGroup.org(config, mspID)
	if err != nil {
		return false, err
	}
	tx := configtx.New(config)
	msp, err := tx.Application().Organization(org.Group).MSP().Configuration()
	if err != nil {
		return false, fmt.Errorf("organisation %s: MSP: %w", mspID, err)
	}
	for _, crl := range msp.RevocationList {
		for _, rc := range crl.TBSCertList.RevokedCertificates {
			if rc.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return true, nil
			}
		}
	}
	return false, nil
}
