package lifecycle

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// decodedProposal is a signed proposal as a peer's endorser reads it.
type decodedProposal struct {
	proposal  *pb.Proposal
	header    *cb.Header
	chdr      *cb.ChannelHeader
	shdr      *cb.SignatureHeader
	creator   *mb.SerializedIdentity
	cert      *x509.Certificate
	chaincode string
	fn        string
	arg       []byte
}

// decodeProposal checks a signed proposal as Fabric's endorser does
// before it runs a chaincode (core/endorser/msgvalidation.go): an
// endorser transaction header, a creator whose signature verifies, a
// transaction ID bound to the nonce and creator, and a chaincode
// invocation; _lifecycle takes its function and one argument.
func decodeProposal(sp *pb.SignedProposal) (*decodedProposal, error) {
	d := &decodedProposal{proposal: &pb.Proposal{}, header: &cb.Header{}, chdr: &cb.ChannelHeader{}, shdr: &cb.SignatureHeader{}}
	if err := proto.Unmarshal(sp.GetProposalBytes(), d.proposal); err != nil {
		return nil, fmt.Errorf("proposal: %w", err)
	}
	if err := proto.Unmarshal(d.proposal.GetHeader(), d.header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if err := proto.Unmarshal(d.header.GetChannelHeader(), d.chdr); err != nil {
		return nil, fmt.Errorf("channel header: %w", err)
	}
	if err := proto.Unmarshal(d.header.GetSignatureHeader(), d.shdr); err != nil {
		return nil, fmt.Errorf("signature header: %w", err)
	}
	if cb.HeaderType(d.chdr.GetType()) != cb.HeaderType_ENDORSER_TRANSACTION {
		return nil, fmt.Errorf("header type %v, not ENDORSER_TRANSACTION", cb.HeaderType(d.chdr.GetType()))
	}
	if len(d.shdr.GetNonce()) == 0 {
		return nil, errors.New("no nonce")
	}
	var err error
	d.creator, d.cert, err = channel.Creator(d.shdr.GetCreator())
	if err != nil {
		return nil, fmt.Errorf("creator: %w", err)
	}
	if err := verifyFabricSignature(d.cert, sp.GetProposalBytes(), sp.GetSignature()); err != nil {
		return nil, fmt.Errorf("proposal signature: %w", err)
	}
	sum := sha256.Sum256(slices.Concat(d.shdr.GetNonce(), d.shdr.GetCreator()))
	if d.chdr.GetTxId() != hex.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("transaction ID %s is not the hash of nonce and creator", d.chdr.GetTxId())
	}
	ext := &pb.ChaincodeHeaderExtension{}
	if err := proto.Unmarshal(d.chdr.GetExtension(), ext); err != nil {
		return nil, fmt.Errorf("header extension: %w", err)
	}
	d.chaincode = ext.GetChaincodeId().GetName()
	cpp := &pb.ChaincodeProposalPayload{}
	if err := proto.Unmarshal(d.proposal.GetPayload(), cpp); err != nil {
		return nil, fmt.Errorf("proposal payload: %w", err)
	}
	cis := &pb.ChaincodeInvocationSpec{}
	if err := proto.Unmarshal(cpp.GetInput(), cis); err != nil {
		return nil, fmt.Errorf("invocation spec: %w", err)
	}
	if n := cis.GetChaincodeSpec().GetChaincodeId().GetName(); n != d.chaincode {
		return nil, fmt.Errorf("the header names chaincode %q and the invocation %q", d.chaincode, n)
	}
	args := cis.GetChaincodeSpec().GetInput().GetArgs()
	if len(args) != 2 {
		return nil, fmt.Errorf("%d arguments; _lifecycle takes a function and one argument", len(args))
	}
	d.fn, d.arg = string(args[0]), args[1]
	return d, nil
}

// proposalHash is what an endorser signs the proposal as
// (protoutil.GetProposalHash1): the channel header, the signature header
// and the proposal payload without its transient data.
func proposalHash(chdr, shdr, payload []byte) ([]byte, error) {
	cpp := &pb.ChaincodeProposalPayload{}
	if err := proto.Unmarshal(payload, cpp); err != nil {
		return nil, err
	}
	b, err := proto.Marshal(&pb.ChaincodeProposalPayload{Input: cpp.GetInput()})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(slices.Concat(chdr, shdr, b))
	return sum[:], nil
}

// endorseAs makes the response a peer gives a proposal it executed with
// result: a response payload bound to the proposal, signed with the
// peer's identity over the payload and the endorser.
func endorseAs(peer channel.Signer, d *decodedProposal, result []byte) (*pb.ProposalResponse, error) {
	hash, err := proposalHash(d.header.GetChannelHeader(), d.header.GetSignatureHeader(), d.proposal.GetPayload())
	if err != nil {
		return nil, err
	}
	action, err := proto.Marshal(&pb.ChaincodeAction{
		Results:     []byte("read-write set of " + d.fn),
		Response:    &pb.Response{Status: 200, Payload: result},
		ChaincodeId: &pb.ChaincodeID{Name: d.chaincode},
	})
	if err != nil {
		return nil, err
	}
	payload, err := proto.Marshal(&pb.ProposalResponsePayload{ProposalHash: hash, Extension: action})
	if err != nil {
		return nil, err
	}
	id, err := newIdentity(peer)
	if err != nil {
		return nil, err
	}
	sig, err := id.sign(slices.Concat(payload, id.creator))
	if err != nil {
		return nil, err
	}
	return &pb.ProposalResponse{
		Version:     1,
		Response:    &pb.Response{Status: 200, Payload: result},
		Payload:     payload,
		Endorsement: &pb.Endorsement{Endorser: id.creator, Signature: sig},
	}, nil
}

// decodedTx is an endorsed transaction as a committing peer reads it.
type decodedTx struct {
	chdr         *cb.ChannelHeader
	creator      *mb.SerializedIdentity
	fn           string
	arg          []byte
	endorsers    []string
	responseHash []byte
}

// decodeTransaction checks an envelope as the orderer and a committing
// peer do: the creator's signature of the payload, one action whose
// header is the payload's signature header, a proposal hash that binds
// the endorsements to the transaction's headers and input, and each
// endorsement's signature.
func decodeTransaction(env *cb.Envelope) (*decodedTx, error) {
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.GetPayload(), payload); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	d := &decodedTx{chdr: &cb.ChannelHeader{}}
	if err := proto.Unmarshal(payload.GetHeader().GetChannelHeader(), d.chdr); err != nil {
		return nil, fmt.Errorf("channel header: %w", err)
	}
	shdr := &cb.SignatureHeader{}
	if err := proto.Unmarshal(payload.GetHeader().GetSignatureHeader(), shdr); err != nil {
		return nil, fmt.Errorf("signature header: %w", err)
	}
	creator, cert, err := channel.Creator(shdr.GetCreator())
	if err != nil {
		return nil, fmt.Errorf("creator: %w", err)
	}
	d.creator = creator
	if err := verifyFabricSignature(cert, env.GetPayload(), env.GetSignature()); err != nil {
		return nil, fmt.Errorf("envelope signature: %w", err)
	}
	tx := &pb.Transaction{}
	if err := proto.Unmarshal(payload.GetData(), tx); err != nil {
		return nil, fmt.Errorf("transaction: %w", err)
	}
	if len(tx.GetActions()) != 1 {
		return nil, fmt.Errorf("%d actions; want 1", len(tx.GetActions()))
	}
	act := tx.GetActions()[0]
	if !proto.Equal(shdrOf(act.GetHeader()), shdr) {
		return nil, errors.New("the action's signature header is not the payload's")
	}
	actionPayload := &pb.ChaincodeActionPayload{}
	if err := proto.Unmarshal(act.GetPayload(), actionPayload); err != nil {
		return nil, fmt.Errorf("action payload: %w", err)
	}
	cpp := &pb.ChaincodeProposalPayload{}
	if err := proto.Unmarshal(actionPayload.GetChaincodeProposalPayload(), cpp); err != nil {
		return nil, fmt.Errorf("proposal payload: %w", err)
	}
	if len(cpp.GetTransientMap()) > 0 {
		return nil, errors.New("the transaction carries transient data")
	}
	prp := &pb.ProposalResponsePayload{}
	if err := proto.Unmarshal(actionPayload.GetAction().GetProposalResponsePayload(), prp); err != nil {
		return nil, fmt.Errorf("response payload: %w", err)
	}
	hash, err := proposalHash(payload.GetHeader().GetChannelHeader(), payload.GetHeader().GetSignatureHeader(), actionPayload.GetChaincodeProposalPayload())
	if err != nil {
		return nil, err
	}
	if string(hash) != string(prp.GetProposalHash()) {
		return nil, errors.New("the endorsed proposal hash is not the transaction's")
	}
	d.responseHash = prp.GetProposalHash()
	for i, e := range actionPayload.GetAction().GetEndorsements() {
		id, cert, err := channel.Creator(e.GetEndorser())
		if err != nil {
			return nil, fmt.Errorf("endorsement %d: %w", i, err)
		}
		if err := verifyFabricSignature(cert, slices.Concat(actionPayload.GetAction().GetProposalResponsePayload(), e.GetEndorser()), e.GetSignature()); err != nil {
			return nil, fmt.Errorf("endorsement %d by %s: %w", i, id.Mspid, err)
		}
		d.endorsers = append(d.endorsers, id.Mspid)
	}
	cis := &pb.ChaincodeInvocationSpec{}
	if err := proto.Unmarshal(cpp.GetInput(), cis); err != nil {
		return nil, fmt.Errorf("invocation spec: %w", err)
	}
	args := cis.GetChaincodeSpec().GetInput().GetArgs()
	if len(args) != 2 {
		return nil, fmt.Errorf("%d arguments", len(args))
	}
	d.fn, d.arg = string(args[0]), args[1]
	return d, nil
}

func shdrOf(b []byte) *cb.SignatureHeader {
	h := &cb.SignatureHeader{}
	if proto.Unmarshal(b, h) != nil {
		return nil
	}
	return h
}
