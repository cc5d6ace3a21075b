package channel

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/hyperledger/fabric-config/configtx"
	"github.com/hyperledger/fabric-config/configtx/membership"
	"github.com/hyperledger/fabric-config/configtx/orderer"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// Raft options, configtxgen's defaults.
var raftOptions = orderer.EtcdRaftOptions{
	TickInterval:         "500ms",
	ElectionTick:         10,
	HeartbeatTick:        1,
	MaxInflightBlocks:    5,
	SnapshotIntervalSize: 16 << 20,
}

// Node OUs, as pki issues them.
const (
	ouClient  = "client"
	ouPeer    = "peer"
	ouAdmin   = "admin"
	ouOrderer = "orderer"
)

// GenesisBlock is block 0 of the channel the spec describes: what every
// orderer joins with.
func GenesisBlock(s Spec) (*cb.Block, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("channel %s: %w", s.Name, err)
	}
	ch := s.profile()
	block, err := configtx.NewApplicationChannelGenesisBlock(ch, s.Name)
	if err != nil {
		return nil, fmt.Errorf("channel %s: genesis block: %w", s.Name, err)
	}
	if s.Consensus == ConsensusBFT {
		config, err := ConfigFromBlock(block)
		if err == nil {
			err = s.toBFT(config)
		}
		if err == nil {
			err = replaceConfig(block, config)
		}
		if err != nil {
			return nil, fmt.Errorf("channel %s: BFT genesis block: %w", s.Name, err)
		}
	}
	return block, nil
}

// profile is the spec as fabric-config's channel configuration: what a
// configtx.yaml profile says.
func (s Spec) profile() configtx.Channel {
	var peerOrgs, ordererOrgs []configtx.Organization
	for _, o := range s.PeerOrgs {
		peerOrgs = append(peerOrgs, o.peerOrg())
	}
	for _, o := range s.OrdererOrgs {
		ordererOrgs = append(ordererOrgs, o.ordererOrg())
	}
	var consenters []orderer.Consenter
	for _, c := range s.Consenters {
		consenters = append(consenters, orderer.Consenter{
			Address:       orderer.EtcdAddress{Host: c.Host, Port: c.Port},
			ClientTLSCert: c.ClientTLSCert,
			ServerTLSCert: c.ServerTLSCert,
		})
	}
	b := s.Batch.withDefaults()
	capability := ChannelCapability
	if s.Consensus == ConsensusBFT {
		// fabric-config writes the orderer group as etcdraft's; toBFT
		// rewrites it.
		capability = BFTChannelCapability
	}
	return configtx.Channel{
		Capabilities: []string{capability},
		Policies:     metaPolicies(),
		Application: configtx.Application{
			Organizations: peerOrgs,
			Capabilities:  []string{ApplicationCapability},
			Policies: with(metaPolicies(), map[string]configtx.Policy{
				configtx.LifecycleEndorsementPolicyKey: implicitMeta("MAJORITY Endorsement"),
				configtx.EndorsementPolicyKey:          implicitMeta("MAJORITY Endorsement"),
			}),
		},
		Orderer: configtx.Orderer{
			OrdererType:  orderer.ConsensusTypeEtcdRaft,
			BatchTimeout: b.Timeout,
			BatchSize: orderer.BatchSize{
				MaxMessageCount:   b.MaxMessageCount,
				AbsoluteMaxBytes:  b.AbsoluteMaxBytes,
				PreferredMaxBytes: b.PreferredMaxBytes,
			},
			EtcdRaft:      orderer.EtcdRaft{Consenters: consenters, Options: raftOptions},
			Organizations: ordererOrgs,
			Capabilities:  []string{OrdererCapability},
			Policies: with(metaPolicies(), map[string]configtx.Policy{
				configtx.BlockValidationPolicyKey: implicitMeta("ANY Writers"),
			}),
			State: orderer.ConsensusStateNormal,
		},
	}
}

// metaPolicies are the policies of a group over its subgroups: any
// member reads and writes, a majority of admins governs.
func metaPolicies() map[string]configtx.Policy {
	return map[string]configtx.Policy{
		configtx.ReadersPolicyKey: implicitMeta("ANY Readers"),
		configtx.WritersPolicyKey: implicitMeta("ANY Writers"),
		configtx.AdminsPolicyKey:  implicitMeta("MAJORITY Admins"),
	}
}

func implicitMeta(rule string) configtx.Policy {
	return configtx.Policy{Type: configtx.ImplicitMetaPolicyType, Rule: rule, ModPolicy: configtx.AdminsPolicyKey}
}

func signature(rule string) configtx.Policy {
	return configtx.Policy{Type: configtx.SignaturePolicyType, Rule: rule, ModPolicy: configtx.AdminsPolicyKey}
}

func with(m, extra map[string]configtx.Policy) map[string]configtx.Policy {
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// peerOrg is an application organisation: admins and clients write, its
// peers endorse.
func (o Organization) peerOrg() configtx.Organization {
	id := o.MSPID
	var anchors []configtx.Address
	for _, a := range o.AnchorPeers {
		anchors = append(anchors, configtx.Address{Host: a.Host, Port: a.Port})
	}
	return configtx.Organization{
		Name: id,
		Policies: map[string]configtx.Policy{
			configtx.ReadersPolicyKey:     signature(fmt.Sprintf("OR('%s.admin', '%s.peer', '%s.client')", id, id, id)),
			configtx.WritersPolicyKey:     signature(fmt.Sprintf("OR('%s.admin', '%s.client')", id, id)),
			configtx.AdminsPolicyKey:      signature(fmt.Sprintf("OR('%s.admin')", id)),
			configtx.EndorsementPolicyKey: signature(fmt.Sprintf("OR('%s.peer')", id)),
		},
		MSP:         o.msp(),
		AnchorPeers: anchors,
	}
}

// ordererOrg is an orderer organisation: its members read and write.
func (o Organization) ordererOrg() configtx.Organization {
	id := o.MSPID
	return configtx.Organization{
		Name: id,
		Policies: map[string]configtx.Policy{
			configtx.ReadersPolicyKey: signature(fmt.Sprintf("OR('%s.member')", id)),
			configtx.WritersPolicyKey: signature(fmt.Sprintf("OR('%s.member')", id)),
			configtx.AdminsPolicyKey:  signature(fmt.Sprintf("OR('%s.admin')", id)),
		},
		MSP:              o.msp(),
		OrdererEndpoints: o.OrdererEndpoints,
	}
}

// msp trusts the organisation's two CAs and tells roles apart by node OU.
func (o Organization) msp() configtx.MSP {
	ou := func(name string) membership.OUIdentifier {
		return membership.OUIdentifier{Certificate: o.CACert, OrganizationalUnitIdentifier: name}
	}
	return configtx.MSP{
		Name:         o.MSPID,
		RootCerts:    []*x509.Certificate{o.CACert},
		TLSRootCerts: []*x509.Certificate{o.TLSCACert},
		CryptoConfig: membership.CryptoConfig{SignatureHashFamily: "SHA2", IdentityIdentifierHashFunction: "SHA256"},
		NodeOUs: membership.NodeOUs{
			Enable:              true,
			ClientOUIdentifier:  ou(ouClient),
			PeerOUIdentifier:    ou(ouPeer),
			AdminOUIdentifier:   ou(ouAdmin),
			OrdererOUIdentifier: ou(ouOrderer),
		},
	}
}

// ConfigFromBlock reads the channel configuration from a config block (a
// genesis block, or the last config block an orderer serves) as an
// orderer does: the block's one envelope carries a CONFIG payload whose
// data is a ConfigEnvelope.
func ConfigFromBlock(b *cb.Block) (*cb.Config, error) {
	if b.GetData() == nil || len(b.Data.Data) != 1 {
		return nil, fmt.Errorf("config block %d: %d envelopes, want 1", b.GetHeader().GetNumber(), len(b.GetData().GetData()))
	}
	env := &cb.Envelope{}
	if err := proto.Unmarshal(b.Data.Data[0], env); err != nil {
		return nil, fmt.Errorf("config block %d: envelope: %w", b.GetHeader().GetNumber(), err)
	}
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		return nil, fmt.Errorf("config block %d: payload: %w", b.GetHeader().GetNumber(), err)
	}
	if payload.Header == nil {
		return nil, fmt.Errorf("config block %d: payload without header", b.GetHeader().GetNumber())
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, chdr); err != nil {
		return nil, fmt.Errorf("config block %d: channel header: %w", b.GetHeader().GetNumber(), err)
	}
	if cb.HeaderType(chdr.Type) != cb.HeaderType_CONFIG {
		return nil, fmt.Errorf("config block %d: a %s transaction, not CONFIG", b.GetHeader().GetNumber(), cb.HeaderType(chdr.Type))
	}
	cenv := &cb.ConfigEnvelope{}
	if err := proto.Unmarshal(payload.Data, cenv); err != nil {
		return nil, fmt.Errorf("config block %d: config envelope: %w", b.GetHeader().GetNumber(), err)
	}
	if cenv.Config.GetChannelGroup() == nil {
		return nil, errors.New("config block: no channel group")
	}
	return cenv.Config, nil
}

// ChannelID is the channel a config block belongs to.
func ChannelID(b *cb.Block) (string, error) {
	env := &cb.Envelope{}
	payload := &cb.Payload{}
	chdr := &cb.ChannelHeader{}
	if len(b.GetData().GetData()) == 0 {
		return "", errors.New("block without envelopes")
	}
	if err := proto.Unmarshal(b.Data.Data[0], env); err != nil {
		return "", fmt.Errorf("envelope: %w", err)
	}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		return "", fmt.Errorf("payload: %w", err)
	}
	if err := proto.Unmarshal(payload.GetHeader().GetChannelHeader(), chdr); err != nil {
		return "", fmt.Errorf("channel header: %w", err)
	}
	return chdr.ChannelId, nil
}
