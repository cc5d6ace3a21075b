package fabric

import (
	"errors"
	"strings"
	"testing"

	gwpb "github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
)

// TestGatewayError reads the errors a peer's gateway answers with as
// Fabric 3.1 makes them: a chaincode's refusal in an error detail, and
// other failures with every peer's detail.
func TestGatewayError(t *testing.T) {
	rpcErr := func(code codes.Code, msg string, details ...*gwpb.ErrorDetail) error {
		st := status.New(code, msg)
		var ds []protoadapt.MessageV1
		for _, d := range details {
			ds = append(ds, protoadapt.MessageV1Of(d))
		}
		st, err := st.WithDetails(ds...)
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	err := gatewayError("endorse", rpcErr(codes.Aborted, "failed to endorse transaction, see attached details for more info",
		&gwpb.ErrorDetail{Address: "127.0.0.1:7051", MspId: "Org1MSP", Message: "chaincode response 500, hash 9f86 is already notarised"}))
	var refused *lifecycle.StatusError
	if !errors.As(err, &refused) || refused.Status != 500 || refused.Message != "hash 9f86 is already notarised" {
		t.Errorf("a chaincode's refusal: %v, want status 500 and its message", err)
	}
	err = gatewayError("endorse", rpcErr(codes.Aborted, "failed to collect enough transaction endorsements, see attached details for more info",
		&gwpb.ErrorDetail{Address: "127.0.0.1:7051", MspId: "Org1MSP", Message: "no peers available"},
		&gwpb.ErrorDetail{Address: "127.0.0.1:8051", MspId: "Org2MSP", Message: "connection refused"}))
	if errors.As(err, &refused) {
		t.Errorf("a failure of peers is a chaincode's refusal: %v", err)
	}
	for _, want := range []string{"endorse through the peer's gateway", "Aborted", "127.0.0.1:8051 (Org2MSP): connection refused", "Org1MSP"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	err = gatewayError("evaluate", rpcErr(codes.FailedPrecondition, "no peers available to evaluate chaincode notary in channel everyone"))
	if !errors.As(err, &refused) || refused.Status != 400 || !strings.Contains(refused.Message, "no peers available") {
		t.Errorf("a chaincode on no peer of the channel: %v, want a refusal with status 400", err)
	}
	if err := gatewayError("submit", errors.New("plain")); !strings.Contains(err.Error(), "submit through the peer's gateway: plain") {
		t.Errorf("a plain error: %v", err)
	}
}
