package lifecycle

import (
	"context"
	"errors"
	"fmt"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"

	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// Invocation is a signed proposal to call a function of an application
// chaincode, made as the lifecycle's own proposals are, so that the
// platform's gateway endorses, assembles and broadcasts it the same way.
type Invocation struct {
	p *proposal
}

// NewInvocation is a proposal, signed by signer, to call fn of chaincode
// cc on channelID with args. The transaction ID is the hex SHA-256 of
// nonce followed by the signer's identity, as Fabric checks it: the same
// nonce and signer give the same ID, which a channel commits once.
func NewInvocation(signer channel.Signer, channelID, cc, fn string, args [][]byte, nonce []byte) (*Invocation, error) {
	return NewPrivateInvocation(signer, channelID, cc, fn, args, nil, nonce)
}

// NewPrivateInvocation is NewInvocation with a transient map: data the
// endorsing peers hand to the chaincode (GetTransient) that is not part
// of the transaction the channel records, nor of its ID.
func NewPrivateInvocation(signer channel.Signer, channelID, cc, fn string, args [][]byte, transient map[string][]byte, nonce []byte) (*Invocation, error) {
	if len(nonce) == 0 {
		return nil, errors.New("invoke: no nonce")
	}
	id, err := newIdentity(signer)
	if err != nil {
		return nil, err
	}
	in := append([][]byte{[]byte(fn)}, args...)
	p, err := chaincodeProposal(id, channelID, cc, cc+"/"+fn, in, transient, nonce)
	if err != nil {
		return nil, err
	}
	return &Invocation{p: p}, nil
}

// TxID is the transaction's ID, lower-case hex.
func (inv *Invocation) TxID() string { return inv.p.txID }

// Signed is the signed proposal, as the peers receive it.
func (inv *Invocation) Signed() *pb.SignedProposal { return inv.p.signed }

// Endorse sends the proposal to a peer and returns its response. A
// chaincode's refusal (a status of 400 or more) is a *StatusError with
// its message; any other error means the peer could not be asked.
func (inv *Invocation) Endorse(ctx context.Context, peer grpc.ClientConnInterface) (*pb.ProposalResponse, error) {
	return inv.p.endorse(ctx, peer)
}

// Transaction is the transaction of the endorsed proposal, signed by its
// creator; the responses must agree.
func (inv *Invocation) Transaction(responses []*pb.ProposalResponse) (*cb.Envelope, error) {
	return inv.p.transaction(responses)
}

// Broadcast sends a transaction to an orderer and returns once the
// orderer accepted it for ordering; a refusal is a *StatusError.
func Broadcast(ctx context.Context, orderer grpc.ClientConnInterface, env *cb.Envelope) error {
	if err := broadcast(ctx, orderer, env); err != nil {
		return fmt.Errorf("transaction: %w", err)
	}
	return nil
}
