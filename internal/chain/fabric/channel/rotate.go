package channel

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/hyperledger/fabric-config/configtx"
	"github.com/hyperledger/fabric-config/configtx/orderer"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
)

// RotateConsenter is the update that gives the consenter at c's address
// c's certificates: of a Raft channel its client and server TLS
// certificates, of a BFT channel those and its enrolment certificate
// (c.Identity), with the BlockValidation policy rewritten to name it.
// The orderer organisations' admins sign, as for AddConsenter. It is how
// a consenter's renewed certificates reach the channel: etcdraft takes
// one consenter's new certificate as a rotation, not as a consenter gone
// and another come, when no other consenter changes in the same update.
// Renewed for the same key, the certificates keep the consenter the same
// party to the others, which compare public keys, so the orderer may
// restart with them before or after the update.
func RotateConsenter(channelID string, config *cb.Config, ordererMSPID string, c Consenter) (*Update, error) {
	addr := Address{Host: c.Host, Port: c.Port}
	fail := func(err error) (*Update, error) {
		return nil, fmt.Errorf("channel %s: rotate the certificates of consenter %s: %w", channelID, addr, err)
	}
	if c.ClientTLSCert == nil || c.ServerTLSCert == nil {
		return fail(errors.New("no TLS certificate"))
	}
	if _, err := ordererGroup.org(config, ordererMSPID); err != nil {
		return fail(err)
	}
	req, err := ordererGroup.admins(config)
	if err != nil {
		return fail(err)
	}
	tlsCert, identity, err := ConsenterCerts(config, addr)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrNoChange, err))
	}
	if SameCert(tlsCert, c.ClientTLSCert) && (identity == nil || SameCert(identity, c.Identity)) {
		return fail(fmt.Errorf("%w: the consenter has these certificates", ErrNoChange))
	}
	tx := configtx.New(config)
	if t, err := consensusOf(config); err == nil && t == ConsensusBFT {
		if c.Identity == nil {
			return fail(fmt.Errorf("%w: no enrolment certificate (BFT checks the blocks it signs with it)", ErrConsenter))
		}
		mapping, err := BFTConsenters(config)
		if err != nil {
			return fail(err)
		}
		i := slices.IndexFunc(mapping, func(m *cb.Consenter) bool { return m.Host == c.Host && int(m.Port) == c.Port })
		if i < 0 {
			return fail(fmt.Errorf("%w: %s is no consenter", ErrNoChange, addr))
		}
		c.MSPID = mapping[i].MspId
		mapping = slices.Clone(mapping)
		mapping[i] = bftConsenter(mapping[i].Id, c)
		if err := setBFTConsenters(&tx, mapping); err != nil {
			return fail(err)
		}
	} else {
		cfg, err := raftConfig(config)
		if err != nil {
			return fail(err)
		}
		i := slices.IndexFunc(cfg.EtcdRaft.Consenters, func(have orderer.Consenter) bool {
			return have.Address.Host == c.Host && have.Address.Port == c.Port
		})
		if i < 0 {
			return fail(fmt.Errorf("%w: %s is no consenter", ErrNoChange, addr))
		}
		cfg.EtcdRaft.Consenters = slices.Clone(cfg.EtcdRaft.Consenters)
		cfg.EtcdRaft.Consenters[i].ClientTLSCert = c.ClientTLSCert
		cfg.EtcdRaft.Consenters[i].ServerTLSCert = c.ServerTLSCert
		if err := tx.Orderer().SetEtcdRaftConsensusType(cfg.EtcdRaft, cfg.State); err != nil {
			return fail(err)
		}
	}
	u, err := newUpdate(channelID, &tx, req)
	if err != nil {
		return fail(err)
	}
	return u, nil
}

// ConsenterCerts are the certificates the channel's configuration has
// of the consenter at addr: its TLS certificate (the client one, which
// etcdraft knows a consenter by) and, of a BFT channel, its enrolment
// certificate (nil of a Raft one).
func ConsenterCerts(config *cb.Config, addr Address) (tlsCert, identity *x509.Certificate, err error) {
	if t, err := consensusOf(config); err == nil && t == ConsensusBFT {
		mapping, err := BFTConsenters(config)
		if err != nil {
			return nil, nil, err
		}
		i := slices.IndexFunc(mapping, func(m *cb.Consenter) bool { return m.Host == addr.Host && int(m.Port) == addr.Port })
		if i < 0 {
			return nil, nil, fmt.Errorf("%s is no consenter", addr)
		}
		if tlsCert, err = parsePEMCert(mapping[i].ClientTlsCert); err != nil {
			return nil, nil, fmt.Errorf("consenter %s: client TLS certificate: %w", addr, err)
		}
		if identity, err = parsePEMCert(mapping[i].Identity); err != nil {
			return nil, nil, fmt.Errorf("consenter %s: identity: %w", addr, err)
		}
		return tlsCert, identity, nil
	}
	cfg, err := raftConfig(config)
	if err != nil {
		return nil, nil, err
	}
	for _, have := range cfg.EtcdRaft.Consenters {
		if have.Address.Host == addr.Host && have.Address.Port == addr.Port {
			return have.ClientTLSCert, nil, nil
		}
	}
	return nil, nil, fmt.Errorf("%s is no consenter", addr)
}

// SameCert says whether a and b are the same certificate.
func SameCert(a, b *x509.Certificate) bool {
	return a != nil && b != nil && bytes.Equal(a.Raw, b.Raw)
}

func parsePEMCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
