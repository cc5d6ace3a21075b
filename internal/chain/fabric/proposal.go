package fabric

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chaindock/chaindock/internal/chain"
)

// dialPeer opens a gRPC connection to a peer's listen endpoint over TLS,
// with a's client certificate.
func dialPeer(node chain.PlannedNode, a *admin) (*grpc.ClientConn, error) {
	u, err := url.Parse(node.Endpoints[PortListen])
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s has no listen endpoint", node.Name)
	}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(credentials.NewTLS(a.tlsConfig(u.Hostname()))))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", node.Name, err)
	}
	return conn, nil
}

// statusError is a peer's refusal of a proposal: the status and message
// of its answer.
type statusError struct {
	fn      string
	status  int32
	message string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: status %d: %s", e.fn, e.status, e.message)
}

// invoke calls function fn of a peer's system chaincode cc as a, and
// returns the peer's answer when it succeeded; a refusal is a
// *statusError.
func invoke(ctx context.Context, endorser pb.EndorserClient, a *admin, cc, fn string, args ...[]byte) (*pb.ProposalResponse, error) {
	sp, err := proposal(a, cc, fn, args...)
	if err != nil {
		return nil, err
	}
	resp, err := endorser.ProcessProposal(ctx, sp)
	if err != nil {
		return nil, err
	}
	if s := resp.GetResponse().GetStatus(); s < 200 || s >= 400 {
		return nil, &statusError{fn: fn, status: s, message: resp.GetResponse().GetMessage()}
	}
	return resp, nil
}

// proposal is a signed proposal to invoke fn of system chaincode cc with
// args, on no channel, as Fabric's peer CLI sends one: the system
// chaincodes take the channel, when they need one, as an argument.
func proposal(a *admin, cc, fn string, args ...[]byte) (*pb.SignedProposal, error) {
	creator, err := proto.Marshal(&mb.SerializedIdentity{Mspid: a.signer.MSPID, IdBytes: a.certPEM})
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	txID := sha256.Sum256(append(append([]byte{}, nonce...), creator...))
	ext, err := proto.Marshal(&pb.ChaincodeHeaderExtension{ChaincodeId: &pb.ChaincodeID{Name: cc}})
	if err != nil {
		return nil, err
	}
	chdr, err := proto.Marshal(&cb.ChannelHeader{
		Type:      int32(cb.HeaderType_ENDORSER_TRANSACTION),
		TxId:      hex.EncodeToString(txID[:]),
		Timestamp: timestamppb.Now(),
		Extension: ext,
	})
	if err != nil {
		return nil, err
	}
	shdr, err := proto.Marshal(&cb.SignatureHeader{Creator: creator, Nonce: nonce})
	if err != nil {
		return nil, err
	}
	hdr, err := proto.Marshal(&cb.Header{ChannelHeader: chdr, SignatureHeader: shdr})
	if err != nil {
		return nil, err
	}
	input, err := proto.Marshal(&pb.ChaincodeInvocationSpec{ChaincodeSpec: &pb.ChaincodeSpec{
		Type:        pb.ChaincodeSpec_GOLANG,
		ChaincodeId: &pb.ChaincodeID{Name: cc},
		Input:       &pb.ChaincodeInput{Args: append([][]byte{[]byte(fn)}, args...)},
	}})
	if err != nil {
		return nil, err
	}
	payload, err := proto.Marshal(&pb.ChaincodeProposalPayload{Input: input})
	if err != nil {
		return nil, err
	}
	prop, err := proto.Marshal(&pb.Proposal{Header: hdr, Payload: payload})
	if err != nil {
		return nil, err
	}
	sig, err := a.signer.Sign(rand.Reader, prop, nil)
	if err != nil {
		return nil, fmt.Errorf("sign proposal as %s: %w", a.signer.MSPID, err)
	}
	return &pb.SignedProposal{ProposalBytes: prop, Signature: sig}, nil
}
