package lifecycle

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	ab "github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// SystemChaincode is the name of the peer's lifecycle system chaincode.
const SystemChaincode = "_lifecycle"

// The _lifecycle functions the steps call.
const (
	fnInstall              = "InstallChaincode"
	fnQueryInstalled       = "QueryInstalledChaincodes"
	fnApprove              = "ApproveChaincodeDefinitionForMyOrg"
	fnQueryApproved        = "QueryApprovedChaincodeDefinition"
	fnCheckCommitReadiness = "CheckCommitReadiness"
	fnCommit               = "CommitChaincodeDefinition"
	fnQueryDefinition      = "QueryChaincodeDefinition"
	fnQueryDefinitions     = "QueryChaincodeDefinitions"
	fnGetInstalledPackage  = "GetInstalledChaincodePackage"
)

// identity is an admin ready to sign: its identity as Fabric serializes
// it into headers, and a signer that hashes with SHA-256 and gives the low
// S Fabric requires.
type identity struct {
	mspID   string
	creator []byte
	signer  *configtx.SigningIdentity
}

func newIdentity(s channel.Signer) (*identity, error) {
	var errs []error
	if s.MSPID == "" {
		errs = append(errs, errors.New("no MSP ID"))
	}
	if s.Cert == nil {
		errs = append(errs, errors.New("no certificate"))
	}
	if s.Key == nil {
		errs = append(errs, errors.New("no private key"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("admin identity: %w", err)
	}
	creator, err := proto.Marshal(&mb.SerializedIdentity{
		Mspid:   s.MSPID,
		IdBytes: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Cert.Raw}),
	})
	if err != nil {
		return nil, fmt.Errorf("admin identity: %w", err)
	}
	return &identity{
		mspID:   s.MSPID,
		creator: creator,
		signer:  &configtx.SigningIdentity{Certificate: s.Cert, PrivateKey: s.Key, MSPID: s.MSPID},
	}, nil
}

func (id *identity) sign(msg []byte) ([]byte, error) {
	sig, err := id.signer.Sign(rand.Reader, msg, nil)
	if err != nil {
		return nil, fmt.Errorf("sign as %s: %w", id.mspID, err)
	}
	return sig, nil
}

// proposal is a signed proposal to invoke one _lifecycle function, and
// what making its transaction needs.
type proposal struct {
	txID     string
	fn       string
	header   *cb.Header
	payload  *pb.ChaincodeProposalPayload
	signed   *pb.SignedProposal
	identity *identity
}

// newProposal is a proposal to call _lifecycle's fn with arg on
// channelID (empty for a peer-local call such as an install), made as
// Fabric's protoutil.CreateChaincodeProposal makes it: the transaction ID
// is the hex SHA-256 of a fresh nonce followed by the creator.
func newProposal(id *identity, channelID, fn string, arg proto.Message) (*proposal, error) {
	argBytes, err := proto.Marshal(arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("%s: nonce: %w", fn, err)
	}
	return chaincodeProposal(id, channelID, SystemChaincode, fn, [][]byte{[]byte(fn), argBytes}, nil, nonce)
}

// chaincodeProposal is a proposal to call chaincode cc with args (the
// function's name first) on channelID, with nonce; fn names the call in
// errors.
func chaincodeProposal(id *identity, channelID, cc, fn string, args [][]byte, transient map[string][]byte, nonce []byte) (*proposal, error) {
	sum := sha256.Sum256(append(append([]byte{}, nonce...), id.creator...))
	txID := hex.EncodeToString(sum[:])

	ext, err := proto.Marshal(&pb.ChaincodeHeaderExtension{ChaincodeId: &pb.ChaincodeID{Name: cc}})
	if err != nil {
		return nil, err
	}
	chdr, err := proto.Marshal(&cb.ChannelHeader{
		Type:      int32(cb.HeaderType_ENDORSER_TRANSACTION),
		ChannelId: channelID,
		TxId:      txID,
		Timestamp: timestamppb.Now(),
		Extension: ext,
	})
	if err != nil {
		return nil, err
	}
	shdr, err := proto.Marshal(&cb.SignatureHeader{Creator: id.creator, Nonce: nonce})
	if err != nil {
		return nil, err
	}
	header := &cb.Header{ChannelHeader: chdr, SignatureHeader: shdr}
	headerBytes, err := proto.Marshal(header)
	if err != nil {
		return nil, err
	}
	input, err := proto.Marshal(&pb.ChaincodeInvocationSpec{ChaincodeSpec: &pb.ChaincodeSpec{
		ChaincodeId: &pb.ChaincodeID{Name: cc},
		Input:       &pb.ChaincodeInput{Args: args},
	}})
	if err != nil {
		return nil, err
	}
	// The transient map goes to the endorsing peers only: the
	// transaction carries the payload without it (see transaction), and
	// the peers hash the proposal without it.
	payload := &pb.ChaincodeProposalPayload{Input: input, TransientMap: transient}
	payloadBytes, err := proto.Marshal(payload)
	if err != nil {
		return nil, err
	}
	propBytes, err := proto.Marshal(&pb.Proposal{Header: headerBytes, Payload: payloadBytes})
	if err != nil {
		return nil, err
	}
	sig, err := id.sign(propBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return &proposal{
		txID:     txID,
		fn:       fn,
		header:   header,
		payload:  payload,
		signed:   &pb.SignedProposal{ProposalBytes: propBytes, Signature: sig},
		identity: id,
	}, nil
}

// StatusError is a peer's or an orderer's refusal, as opposed to a
// failure to reach it. Most hold until something changes (an approval
// arrives, the definition is fixed); an orderer's SERVICE_UNAVAILABLE
// (503) passes once its channel has a Raft leader.
type StatusError struct {
	// Call is what was refused: a _lifecycle function, or "broadcast".
	Call    string
	Status  int32
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: status %d: %s", e.Call, e.Status, e.Message)
}

// endorse sends the proposal to a peer and returns its response when the
// function succeeded.
func (p *proposal) endorse(ctx context.Context, peer grpc.ClientConnInterface) (*pb.ProposalResponse, error) {
	resp, err := pb.NewEndorserClient(peer).ProcessProposal(ctx, p.signed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.fn, err)
	}
	if err := checkResponse(p.fn, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// checkResponse accepts what Fabric's CLI accepts: a status below 400.
func checkResponse(fn string, resp *pb.ProposalResponse) error {
	r := resp.GetResponse()
	if r == nil {
		return &StatusError{Call: fn, Message: "the peer sent no response"}
	}
	if r.GetStatus() < 200 || r.GetStatus() >= 400 {
		return &StatusError{Call: fn, Status: r.GetStatus(), Message: r.GetMessage()}
	}
	return nil
}

// query sends the proposal to one peer and decodes the function's result
// into out.
func (p *proposal) query(ctx context.Context, peer grpc.ClientConnInterface, out proto.Message) error {
	resp, err := p.endorse(ctx, peer)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(resp.GetResponse().GetPayload(), out); err != nil {
		return fmt.Errorf("%s: decode result: %w", p.fn, err)
	}
	return nil
}

// transaction is the endorsed transaction of the proposal, as Fabric's
// protoutil.CreateSignedTx makes it: the proposal's header, the proposal
// payload without its transient data, the peers' common response payload
// and their endorsements, signed by the proposal's creator. The
// responses must agree, or the transaction would be invalid.
func (p *proposal) transaction(responses []*pb.ProposalResponse) (*cb.Envelope, error) {
	fail := func(err error) (*cb.Envelope, error) {
		return nil, fmt.Errorf("%s: transaction: %w", p.fn, err)
	}
	if len(responses) == 0 {
		return fail(errors.New("no endorsements"))
	}
	var endorsements []*pb.Endorsement
	for i, r := range responses {
		if err := checkResponse(p.fn, r); err != nil {
			return fail(fmt.Errorf("response %d: %w", i, err))
		}
		if r.GetEndorsement() == nil {
			return fail(fmt.Errorf("response %d has no endorsement", i))
		}
		if !bytes.Equal(r.GetPayload(), responses[0].GetPayload()) {
			return fail(fmt.Errorf("response %d differs from response 0: the peers do not agree on the result (%s)",
				i, endorserNames(responses)))
		}
		endorsements = append(endorsements, r.GetEndorsement())
	}
	// The transient map is private to the endorsers.
	cpp, err := proto.Marshal(&pb.ChaincodeProposalPayload{Input: p.payload.GetInput()})
	if err != nil {
		return fail(err)
	}
	action, err := proto.Marshal(&pb.ChaincodeActionPayload{
		ChaincodeProposalPayload: cpp,
		Action: &pb.ChaincodeEndorsedAction{
			ProposalResponsePayload: responses[0].GetPayload(),
			Endorsements:            endorsements,
		},
	})
	if err != nil {
		return fail(err)
	}
	tx, err := proto.Marshal(&pb.Transaction{Actions: []*pb.TransactionAction{{
		Header:  p.header.GetSignatureHeader(),
		Payload: action,
	}}})
	if err != nil {
		return fail(err)
	}
	payload, err := proto.Marshal(&cb.Payload{Header: p.header, Data: tx})
	if err != nil {
		return fail(err)
	}
	sig, err := p.identity.sign(payload)
	if err != nil {
		return fail(err)
	}
	return &cb.Envelope{Payload: payload, Signature: sig}, nil
}

// endorserNames lists who endorsed, for messages.
func endorserNames(responses []*pb.ProposalResponse) string {
	var b bytes.Buffer
	for i, r := range responses {
		if i > 0 {
			b.WriteString(", ")
		}
		id := &mb.SerializedIdentity{}
		if err := proto.Unmarshal(r.GetEndorsement().GetEndorser(), id); err != nil || id.Mspid == "" {
			fmt.Fprintf(&b, "%d: unknown", i)
			continue
		}
		fmt.Fprintf(&b, "%d: %s", i, id.Mspid)
	}
	return b.String()
}

// broadcast sends a transaction to an orderer and returns once the
// orderer accepted it for ordering.
func broadcast(ctx context.Context, orderer grpc.ClientConnInterface, env *cb.Envelope) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ab.NewAtomicBroadcastClient(orderer).Broadcast(ctx)
	if err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	if err := stream.Send(env); err != nil {
		return fmt.Errorf("broadcast: send: %w", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	_ = stream.CloseSend()
	if resp.GetStatus() != cb.Status_SUCCESS {
		return &StatusError{Call: "broadcast", Status: int32(resp.GetStatus()), Message: resp.GetStatus().String() + ": " + resp.GetInfo()}
	}
	return nil
}
