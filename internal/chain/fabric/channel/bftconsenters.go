package channel

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/hyperledger/fabric-config/configtx"
	"github.com/hyperledger/fabric-config/configtx/orderer"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	ob "github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	"google.golang.org/protobuf/proto"
)

// A BFT channel lists its consenters in the Orderer group's Orderers
// value, each with an id SmartBFT knows it by, and wants a quorum of
// them to sign each block (the BlockValidation policy, which must name
// exactly the mapped consenters, see bftBlockValidation). A change of
// the consenters rewrites both in one update, with the orderer
// endpoints, as AddConsenter and RemoveConsenter do for Raft; one
// consenter per update.

// consensusOf is the channel's consensus type.
func consensusOf(config *cb.Config) (string, error) {
	og := config.GetChannelGroup().GetGroups()[configtx.OrdererGroupKey]
	if og == nil {
		return "", errors.New("the configuration has no Orderer group")
	}
	ct := &ob.ConsensusType{}
	if err := proto.Unmarshal(og.GetValues()[orderer.ConsensusTypeKey].GetValue(), ct); err != nil {
		return "", fmt.Errorf("orderer consensus type: %w", err)
	}
	return ct.Type, nil
}

// BFTConsenters is the consenter mapping of a BFT channel, in the
// configuration's order.
func BFTConsenters(config *cb.Config) ([]*cb.Consenter, error) {
	t, err := consensusOf(config)
	if err != nil {
		return nil, err
	}
	if t != ConsensusBFT {
		return nil, fmt.Errorf("the channel's consensus is %s, not %s", t, ConsensusBFT)
	}
	v := config.ChannelGroup.Groups[configtx.OrdererGroupKey].GetValues()[orderersKey]
	if v == nil {
		return nil, fmt.Errorf("the %s channel's Orderer group has no %s value", ConsensusBFT, orderersKey)
	}
	o := &cb.Orderers{}
	if err := proto.Unmarshal(v.Value, o); err != nil {
		return nil, fmt.Errorf("%s value: %w", orderersKey, err)
	}
	return o.ConsenterMapping, nil
}

// nextBFTID is the id of a consenter added to config, whose consenters
// are mapping. SmartBFT must never see an id again once its consenter
// has gone, and the configuration keeps no record of ids that were: so
// the id comes from the configuration's sequence, which each update
// raises by one. Genesis numbers its consenters 1 to n (n at most
// MaxConsenters); an update of sequence s adds one numbered
// s+MaxConsenters+1, above all before it. The highest id mapped now is
// a floor too, for a channel whose consenters someone else numbered.
func nextBFTID(config *cb.Config, mapping []*cb.Consenter) uint32 {
	next := config.GetSequence() + MaxConsenters + 1
	for _, c := range mapping {
		next = max(next, uint64(c.Id)+1)
	}
	return uint32(min(next, uint64(^uint32(0)))) //nolint:gosec // bounded above
}

func addBFTConsenter(channelID string, config *cb.Config, ordererMSPID string, c Consenter) (*Update, error) {
	addr := Address{Host: c.Host, Port: c.Port}
	fail := func(err error) (*Update, error) {
		return nil, fmt.Errorf("channel %s: add BFT consenter %s: %w", channelID, addr, err)
	}
	switch {
	case c.Host == "" || c.Port < 1 || c.Port > 65535:
		return fail(fmt.Errorf("%q is not host:port", addr))
	case c.ClientTLSCert == nil || c.ServerTLSCert == nil:
		return fail(errors.New("no TLS certificate"))
	case c.Identity == nil:
		return fail(fmt.Errorf("%w: no enrolment certificate (BFT checks the blocks it signs with it)", ErrConsenter))
	case c.MSPID != "" && c.MSPID != ordererMSPID:
		return fail(fmt.Errorf("%w: its MSP is %s, not %s", ErrConsenter, c.MSPID, ordererMSPID))
	}
	c.MSPID = ordererMSPID
	mapping, err := BFTConsenters(config)
	if err != nil {
		return fail(err)
	}
	if slices.ContainsFunc(mapping, func(m *cb.Consenter) bool { return m.Host == c.Host && int(m.Port) == c.Port }) {
		return fail(fmt.Errorf("%w: %s is a consenter", ErrNoChange, addr))
	}
	if len(mapping) >= MaxConsenters {
		return fail(fmt.Errorf("the channel has %d consenters, the most it may have", len(mapping)))
	}
	org, err := ordererGroup.org(config, ordererMSPID)
	if err != nil {
		return fail(err)
	}
	// An identity the organisation's CA did not issue signs blocks no
	// one counts: the channel would wait for a quorum that never comes.
	roots := x509.NewCertPool()
	for _, r := range org.Roots {
		roots.AddCert(r)
	}
	_, err = c.Identity.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	var invalid x509.CertificateInvalidError
	if expired := errors.As(err, &invalid) && invalid.Reason == x509.Expired; err != nil && !expired {
		return fail(fmt.Errorf("%w: enrolment certificate not issued by the membership CA of %s: %w", ErrConsenter, ordererMSPID, err))
	}
	tx := configtx.New(config)
	mapping = append(slices.Clone(mapping), bftConsenter(nextBFTID(config, mapping), c))
	if err := setBFTConsenters(&tx, mapping); err != nil {
		return fail(err)
	}
	u, err := endpointUpdate(channelID, config, &tx, org, addr, true)
	if err != nil {
		return fail(err)
	}
	return u, nil
}

func removeBFTConsenter(channelID string, config *cb.Config, ordererMSPID string, addr Address) (*Update, error) {
	fail := func(err error) (*Update, error) {
		return nil, fmt.Errorf("channel %s: remove BFT consenter %s: %w", channelID, addr, err)
	}
	mapping, err := BFTConsenters(config)
	if err != nil {
		return fail(err)
	}
	i := slices.IndexFunc(mapping, func(m *cb.Consenter) bool { return m.Host == addr.Host && int(m.Port) == addr.Port })
	if i < 0 {
		return fail(fmt.Errorf("%w: %s is no consenter", ErrNoChange, addr))
	}
	if len(mapping) == 1 {
		return fail(errors.New("it is the channel's last consenter"))
	}
	org, err := ordererGroup.org(config, ordererMSPID)
	if err != nil {
		return fail(err)
	}
	tx := configtx.New(config)
	if err := setBFTConsenters(&tx, slices.Delete(slices.Clone(mapping), i, i+1)); err != nil {
		return fail(err)
	}
	u, err := endpointUpdate(channelID, config, &tx, org, addr, false)
	if err != nil {
		return fail(err)
	}
	return u, nil
}

// setBFTConsenters writes mapping to tx's Orderers value and the
// BlockValidation policy that goes with it.
func setBFTConsenters(tx *configtx.ConfigTx, mapping []*cb.Consenter) error {
	og := tx.UpdatedConfig().ChannelGroup.Groups[configtx.OrdererGroupKey]
	v, err := proto.Marshal(&cb.Orderers{ConsenterMapping: mapping})
	if err != nil {
		return err
	}
	policy, err := bftBlockValidation(mapping)
	if err != nil {
		return err
	}
	bv := og.Policies[configtx.BlockValidationPolicyKey]
	if bv == nil {
		return fmt.Errorf("the Orderer group has no %s policy", configtx.BlockValidationPolicyKey)
	}
	og.Values[orderersKey].Value = v
	bv.Policy = policy
	return nil
}
