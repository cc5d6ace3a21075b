package channel

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hyperledger/fabric-config/configtx"
	"github.com/hyperledger/fabric-config/configtx/orderer"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	ob "github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer/smartbft"
	"google.golang.org/protobuf/proto"
)

// Consensus types of an ordering service, as the channel configuration
// names them.
const (
	ConsensusEtcdRaft = "etcdraft"
	ConsensusBFT      = "BFT"
)

// BFTChannelCapability is the channel capability Fabric requires of a BFT
// channel (Fabric 3.0 and later).
const BFTChannelCapability = "V3_0"

// orderersKey is the orderer group's value that lists a BFT channel's
// consenters; fabric-config v0.3.0 predates it.
const orderersKey = "Orderers"

// bftOptions are configtxgen's SmartBFT defaults but for two: the
// leader is kept until it fails (configtxgen turns rotation off too), so
// that it can be told from the metrics; and followers that hear no
// heartbeat from it for 10 s, not a minute, replace it. A leader killed
// and restarted at once comes back leading a view the others have gone
// on from, and the channel waits for that timeout, then the view change,
// before it orders with it again.
func bftOptions() *smartbft.Options {
	return &smartbft.Options{
		RequestBatchMaxCount:      100,
		RequestBatchMaxBytes:      10 << 20,
		RequestBatchMaxInterval:   (50 * time.Millisecond).String(),
		IncomingMessageBufferSize: 200,
		RequestPoolSize:           400,
		RequestForwardTimeout:     (2 * time.Second).String(),
		RequestComplainTimeout:    (20 * time.Second).String(),
		RequestAutoRemoveTimeout:  (3 * time.Minute).String(),
		ViewChangeResendInterval:  (5 * time.Second).String(),
		ViewChangeTimeout:         (20 * time.Second).String(),
		LeaderHeartbeatTimeout:    (10 * time.Second).String(),
		LeaderHeartbeatCount:      10,
		CollectTimeout:            time.Second.String(),
		LeaderRotation:            smartbft.Options_ROTATION_OFF,
	}
}

// BFTQuorum is how many of n BFT consenters must sign a block: with
// f = (n-1)/3 faults tolerated, ceil((n+f+1)/2).
func BFTQuorum(n int) int {
	f := (n - 1) / 3
	return int(math.Ceil(float64(n+f+1) / 2))
}

// validateBFT checks what BFT reads of the consenters and nothing else
// does: their MSP and enrolment certificate.
func (s Spec) validateBFT() []error {
	var errs []error
	roots := map[string]*x509.CertPool{}
	for _, o := range s.OrdererOrgs {
		if o.CACert != nil {
			p := x509.NewCertPool()
			p.AddCert(o.CACert)
			roots[o.MSPID] = p
		}
	}
	for i, c := range s.Consenters {
		field := fmt.Sprintf("consenters[%d]", i)
		pool, ok := roots[c.MSPID]
		if !ok {
			errs = append(errs, fmt.Errorf("%s.mspID: %w: %q is not an orderer organisation of the channel", field, ErrConsenter, c.MSPID))
		}
		switch {
		case c.Identity == nil:
			errs = append(errs, fmt.Errorf("%s.identity: %w: none (BFT needs each consenter's enrolment certificate)", field, ErrConsenter))
		case ok:
			_, err := c.Identity.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			var invalid x509.CertificateInvalidError
			if expired := errors.As(err, &invalid) && invalid.Reason == x509.Expired; err != nil && !expired {
				errs = append(errs, fmt.Errorf("%s.identity: %w: not issued by the membership CA of %s: %w", field, ErrConsenter, c.MSPID, err))
			}
		}
	}
	return errs
}

// toBFT turns the orderer group of an etcdraft configuration built by
// fabric-config into a BFT one, as configtxgen builds it: consensus type
// BFT with SmartBFT options, the consenters in an Orderers value, and a
// BlockValidation policy that wants a quorum of them to sign each block.
// The channel's capability is already V3_0 (see profile).
func (s Spec) toBFT(config *cb.Config) error {
	og := config.GetChannelGroup().GetGroups()[configtx.OrdererGroupKey]
	if og == nil {
		return fmt.Errorf("no %s group", configtx.OrdererGroupKey)
	}
	var mapping []*cb.Consenter
	for i, c := range s.Consenters {
		mapping = append(mapping, bftConsenter(uint32(i+1), c)) //nolint:gosec // Validate bounds the consenters
	}
	options, err := proto.Marshal(bftOptions())
	if err != nil {
		return err
	}
	ct, err := proto.Marshal(&ob.ConsensusType{Type: ConsensusBFT, Metadata: options, State: ob.ConsensusType_STATE_NORMAL})
	if err != nil {
		return err
	}
	orderers, err := proto.Marshal(&cb.Orderers{ConsenterMapping: mapping})
	if err != nil {
		return err
	}
	policy, err := bftBlockValidation(mapping)
	if err != nil {
		return err
	}
	og.Values[orderer.ConsensusTypeKey] = &cb.ConfigValue{Value: ct, ModPolicy: configtx.AdminsPolicyKey}
	og.Values[orderersKey] = &cb.ConfigValue{Value: orderers, ModPolicy: configtx.AdminsPolicyKey}
	og.Policies[configtx.BlockValidationPolicyKey] = &cb.ConfigPolicy{Policy: policy, ModPolicy: configtx.AdminsPolicyKey}
	return nil
}

// bftConsenter is consenter c as a BFT channel's Orderers value maps
// it, numbered id.
func bftConsenter(id uint32, c Consenter) *cb.Consenter {
	return &cb.Consenter{
		Id:            id,
		Host:          c.Host,
		Port:          uint32(c.Port), //nolint:gosec // callers check the port
		MspId:         c.MSPID,
		Identity:      pemCert(c.Identity),
		ClientTlsCert: pemCert(c.ClientTLSCert),
		ServerTlsCert: pemCert(c.ServerTLSCert),
	}
}

// bftBlockValidation is the BlockValidation policy of a BFT channel
// whose consenters are mapping: a quorum of them (BFTQuorum), each
// named by its enrolment certificate in the mapping's order, signs each
// block. An orderer refuses a configuration whose policy is anything
// else, byte for byte, so every change of the mapping rewrites it.
func bftBlockValidation(mapping []*cb.Consenter) (*cb.Policy, error) {
	var ids []*mb.MSPPrincipal
	var signers []*cb.SignaturePolicy
	for i, c := range mapping {
		principal, err := proto.Marshal(&mb.SerializedIdentity{Mspid: c.MspId, IdBytes: c.Identity})
		if err != nil {
			return nil, err
		}
		ids = append(ids, &mb.MSPPrincipal{PrincipalClassification: mb.MSPPrincipal_IDENTITY, Principal: principal})
		signers = append(signers, &cb.SignaturePolicy{Type: &cb.SignaturePolicy_SignedBy{SignedBy: int32(i)}}) //nolint:gosec // MaxConsenters bounds the mapping
	}
	policy, err := proto.Marshal(&cb.SignaturePolicyEnvelope{
		Rule: &cb.SignaturePolicy{Type: &cb.SignaturePolicy_NOutOf_{NOutOf: &cb.SignaturePolicy_NOutOf{
			N: int32(BFTQuorum(len(mapping))), Rules: signers, //nolint:gosec // MaxConsenters bounds the mapping
		}}},
		Identities: ids,
	})
	if err != nil {
		return nil, err
	}
	return &cb.Policy{Type: int32(cb.Policy_SIGNATURE), Value: policy}, nil
}

// replaceConfig puts config in genesis block b in place of the one
// fabric-config wrote, and updates the header's data hash.
func replaceConfig(b *cb.Block, config *cb.Config) error {
	env := &cb.Envelope{}
	if err := proto.Unmarshal(b.Data.Data[0], env); err != nil {
		return err
	}
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		return err
	}
	var err error
	if payload.Data, err = proto.Marshal(&cb.ConfigEnvelope{Config: config}); err != nil {
		return err
	}
	if env.Payload, err = proto.Marshal(payload); err != nil {
		return err
	}
	if b.Data.Data[0], err = proto.Marshal(env); err != nil {
		return err
	}
	b.Header.DataHash = blockDataHash(b.Data)
	return nil
}

// blockDataHash is a block header's hash of its data, as Fabric computes
// it: SHA-256 of the concatenated envelopes.
func blockDataHash(d *cb.BlockData) []byte {
	sum := sha256.Sum256(bytes.Join(d.Data, nil))
	return sum[:]
}

func pemCert(c *x509.Certificate) []byte {
	if c == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
