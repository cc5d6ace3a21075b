package fabric

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	gwpb "github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
)

// The peers' own Fabric Gateway service carries applications' calls: the
// peer a call goes to plans its endorsement from service discovery (the
// chaincode's endorsement policy, and the peers of every organisation,
// which it knows through their anchor peers), collects the endorsements,
// sends the transaction to the ordering service, and answers its commit
// status. ChainDock drives it with Hyperledger's Go client for it,
// fabric-gateway, and hands it proposals it makes and signs itself
// (lifecycle.Invocation), so that a transaction's ID follows from the
// call's body: the same body is the same transaction on every peer.

// gatewayOf connects to a peer's Fabric Gateway service over conn as
// signer.
func gatewayOf(conn grpc.ClientConnInterface, signer channel.Signer) (*client.Gateway, error) {
	id, err := identity.NewX509Identity(signer.MSPID, signer.Cert)
	if err != nil {
		return nil, err
	}
	sign, err := identity.NewPrivateKeySign(signer.Key)
	if err != nil {
		return nil, err
	}
	return client.Connect(id, client.WithSign(sign), client.WithClientConnection(conn))
}

// gatewayProposal is inv, signed, as the gateway client takes it, to be
// endorsed by peers of the organisations of endorsers (MSP IDs) when
// there are any. The client's WithEndorsingOrganizations option sets the
// same field of the proposed transaction, which it then sends with the
// proposal; a proposal made elsewhere carries it in its bytes.
func gatewayProposal(gw *client.Gateway, inv *lifecycle.Invocation, endorsers []string) (*client.Proposal, error) {
	b, err := proto.Marshal(&gwpb.ProposedTransaction{TransactionId: inv.TxID(), Proposal: inv.Signed(), EndorsingOrganizations: endorsers})
	if err != nil {
		return nil, err
	}
	return gw.NewProposal(b)
}

// gatewaySubmit has the peer's gateway endorse inv and send it to the
// ordering service; it returns once an orderer accepted it. endorsers,
// when given, are the MSP IDs of the organisations whose peers endorse
// it, instead of those the gateway plans. A chaincode's refusal is a
// *lifecycle.StatusError.
func gatewaySubmit(ctx context.Context, conn grpc.ClientConnInterface, signer channel.Signer, inv *lifecycle.Invocation, endorsers []string) error {
	gw, err := gatewayOf(conn, signer)
	if err != nil {
		return err
	}
	defer gw.Close()
	p, err := gatewayProposal(gw, inv, endorsers)
	if err != nil {
		return err
	}
	tx, err := p.EndorseWithContext(ctx)
	if err != nil {
		return gatewayError("endorse", err)
	}
	if _, err := tx.SubmitWithContext(ctx); err != nil {
		return gatewayError("submit", err)
	}
	return nil
}

// gatewayEvaluate has the peer's gateway evaluate inv on a peer of its
// choosing, its own when it can, and returns the result.
func gatewayEvaluate(ctx context.Context, conn grpc.ClientConnInterface, signer channel.Signer, inv *lifecycle.Invocation) ([]byte, error) {
	gw, err := gatewayOf(conn, signer)
	if err != nil {
		return nil, err
	}
	defer gw.Close()
	p, err := gatewayProposal(gw, inv, nil)
	if err != nil {
		return nil, err
	}
	out, err := p.EvaluateWithContext(ctx)
	if err != nil {
		return nil, gatewayError("evaluate", err)
	}
	return out, nil
}

// chaincodeResponseRE is how the gateway reports a chaincode's refusal in
// an error detail (internal/pkg/gateway's responseStatus in Fabric).
var chaincodeResponseRE = regexp.MustCompile(`(?s)^chaincode response (\d+), (.*)$`)

// gatewayError is err of the gateway's step, with the details it gives
// of each peer or orderer that failed: a chaincode's refusal by the
// first peer that gave one is a *lifecycle.StatusError.
func gatewayError(step string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s through the peer's gateway: %w", step, err)
	}
	var details []string
	for _, d := range st.Details() {
		ed, ok := d.(*gwpb.ErrorDetail)
		if !ok {
			continue
		}
		if m := chaincodeResponseRE.FindStringSubmatch(ed.GetMessage()); m != nil {
			code, _ := strconv.ParseInt(m[1], 10, 32)
			return &lifecycle.StatusError{Call: step, Status: int32(code), Message: m[2]}
		}
		details = append(details, fmt.Sprintf("%s (%s): %s", ed.GetAddress(), ed.GetMspId(), ed.GetMessage()))
	}
	msg := st.Message()
	if len(details) > 0 {
		msg += ": " + strings.Join(details, "; ")
	}
	if st.Code() == codes.FailedPrecondition {
		// The call cannot run as asked (no peer of the channel has the
		// chaincode, or a peer refused the proposal's signer): the
		// caller's to change, as a chaincode's refusal is.
		return &lifecycle.StatusError{Call: step, Status: 400, Message: msg}
	}
	return fmt.Errorf("%s through the peer's gateway: %s: %w", step, st.Code(), errors.New(msg))
}
