package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	lb "github.com/hyperledger/fabric-protos-go-apiv2/peer/lifecycle"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricContracts deploys one orderer, two organisations of one peer
// and the chaincode host (spec.fabric.templates), deploys the
// notarisation template through the contracts API, finds its commit in
// the explorer, deploys and upgrades a package of an organisation's own
// chaincode server (sequence 1, then 2), and checks that a bad package
// and a removal are refused with their reasons.
func TestFabricContracts(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "36700-36799", "--probe-interval", "500ms")
	c := srv.Client

	const name, channel = "fcc", "cc"
	n, applied := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {orderers: 1, channel: `+channel+", templates: true}\n", 90*time.Second)
	t.Logf("deployed: 1 orderer, 2 peers and the chaincode host, Running %.1fs after apply", time.Since(applied).Seconds())
	host, ok := framework.NodeByName(n, apis.ChaincodeNode)
	if !ok || host.Role != apis.RoleChaincode || host.PID <= 0 || !framework.Alive(host.PID) ||
		!strings.HasPrefix(host.Endpoints["notary"], "tcp://127.0.0.1:") || !strings.HasPrefix(host.Endpoints["asset"], "tcp://127.0.0.1:") {
		t.Fatalf("chaincode host: %+v", host)
	}

	var pkgs api.PackageList
	if err := getJSON(ctx, c, "/api/v1/packages?chain=fabric", &pkgs); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, p := range pkgs.Items {
		listed = append(listed, p.Ref().String()+" "+p.Kind)
	}
	if got := strings.Join(listed, ", "); got != "builtin/fabric-notary@1.0.0 fabric-ccaas, builtin/fabric-asset@1.0.0 fabric-ccaas" {
		t.Errorf("fabric packages: %s", got)
	}

	base := "/api/v1/networks/" + name
	deploy := func(method, path, body string) api.Contract {
		t.Helper()
		start := time.Now()
		var out api.Contract
		if err := c.Do(ctx, method, base+path, []byte(body), "application/json", &out); err != nil {
			t.Fatalf("%s %s %s: %v", method, path, body, err)
		}
		t.Logf("%s %s: revision %d committed on both organisations' peers %.1fs after the request (block %d, transaction %s)",
			method, path, out.Revision, time.Since(start).Seconds(), out.Height, out.TxHash)
		return out
	}
	// The commit transaction as the explorer has it: valid, a call of
	// _lifecycle, with the definition's name, version and sequence.
	checkCommit := func(ct api.Contract, version string, sequence int64) {
		t.Helper()
		var tx api.Tx
		if err := pollJSON(t, c, base+"/transactions/"+ct.TxHash, &tx); err != nil {
			t.Fatalf("explorer: commit transaction %s: %v", ct.TxHash, err)
		}
		args := commitArgs(t, tx.Data)
		if tx.Code != 0 || tx.Type != "ENDORSER_TRANSACTION/_lifecycle" || tx.Height != ct.Height ||
			args.GetName() != ct.Ref || args.GetVersion() != version || args.GetSequence() != sequence {
			t.Fatalf("explorer: commit %s = code %d type %q height %d, definition %v; want code 0 of _lifecycle at height %d, %s %s sequence %d",
				ct.TxHash, tx.Code, tx.Type, tx.Height, args, ct.Height, ct.Ref, version, sequence)
		}
		// Both organisations' peers have the block.
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range n.Status.Nodes {
			if s.Role == apis.RoleFull {
				if h := channelHeight(t, s, channel); h < ct.Height {
					t.Errorf("%s: channel at height %d, below the commit's %d", s.Name, h, ct.Height)
				}
			}
		}
	}

	notary := deploy(http.MethodPost, "/contracts", `{"name":"notary","package":"builtin/fabric-notary@1.0.0"}`)
	if notary.Revision != 1 || notary.State != apis.ContractDeployed || notary.Ref != "notary" || notary.TxHash == "" || notary.Height < 2 {
		t.Fatalf("notary deployed as %+v", notary.ContractRevision)
	}
	checkCommit(notary, fabric.TemplateVersion, 1)

	// An organisation's own chaincode server, in two versions.
	if err := c.Do(ctx, http.MethodPost, "/api/v1/organizations", []byte(`{"name":"acme"}`), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	push := func(version, conn string) error {
		body := fmt.Sprintf(`{"owner":"acme","name":"ledger-cc","version":%q,"chain":"fabric","kind":"fabric-ccaas","files":[{"path":"connection.json","text":%q}]}`, version, conn)
		return c.Do(ctx, http.MethodPost, "/api/v1/packages", []byte(body), "application/json", nil)
	}
	err := push("0.9.0", `{"address":"ledger-cc","dial_timeout":"soon","tls_required":false}`)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnprocessableEntity || !hasField(ce, "files[connection.json].address") || !hasField(ce, "files[connection.json].dial_timeout") {
		t.Fatalf("a bad connection.json: %v; want 422 naming files[connection.json].address and .dial_timeout", err)
	}
	t.Logf("as expected: %v", err)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if err := push(v, `{"address":"ledger-cc.acme.example:9999","dial_timeout":"10s","tls_required":false}`); err != nil {
			t.Fatal(err)
		}
	}
	first := deploy(http.MethodPost, "/contracts", `{"name":"ledger","package":"acme/ledger-cc@1.0.0"}`)
	checkCommit(first, "1.0.0", 1)
	up := deploy(http.MethodPut, "/contracts/ledger", `{"package":"acme/ledger-cc@1.1.0"}`)
	if up.Revision != 2 || up.Ref != "ledger" || up.TxHash == first.TxHash || up.Height <= first.Height {
		t.Fatalf("upgrade recorded as %+v after %+v", up.ContractRevision, first.ContractRevision)
	}
	checkCommit(up, "1.1.0", 2)

	// Fabric keeps committed chaincode: a removal is refused, and says
	// what to do instead.
	err = c.Do(ctx, http.MethodDelete, base+"/contracts/notary", nil, "", nil)
	if !errors.As(err, &ce) || ce.Status != http.StatusConflict || ce.Type != api.ProblemContractRefused || !strings.Contains(ce.Detail, "upgrade") {
		t.Fatalf("remove: %v; want 409 contract-refused", err)
	}
	t.Logf("as expected: %v", err)

	deleteFabricNetwork(t, srv, dataDir, n)
}

func hasField(e *client.Error, field string) bool {
	for _, fe := range e.Errors {
		if fe.Field == field {
			return true
		}
	}
	return false
}

// commitArgs reads the chaincode definition a _lifecycle commit
// transaction carries, from its envelope.
func commitArgs(t *testing.T, data []byte) *lb.CommitChaincodeDefinitionArgs {
	t.Helper()
	var env cb.Envelope
	var payload cb.Payload
	var txn pb.Transaction
	var action pb.ChaincodeActionPayload
	var prop pb.ChaincodeProposalPayload
	var spec pb.ChaincodeInvocationSpec
	if err := proto.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(env.GetPayload(), &payload); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(payload.GetData(), &txn); err != nil || len(txn.GetActions()) != 1 {
		t.Fatalf("transaction: %v, %d actions", err, len(txn.GetActions()))
	}
	if err := proto.Unmarshal(txn.GetActions()[0].GetPayload(), &action); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(action.GetChaincodeProposalPayload(), &prop); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(prop.GetInput(), &spec); err != nil {
		t.Fatal(err)
	}
	in := spec.GetChaincodeSpec().GetInput().GetArgs()
	if len(in) != 2 || string(in[0]) != "CommitChaincodeDefinition" {
		t.Fatalf("the transaction calls %q, want CommitChaincodeDefinition", in)
	}
	var args lb.CommitChaincodeDefinitionArgs
	if err := proto.Unmarshal(in[1], &args); err != nil {
		t.Fatal(err)
	}
	return &args
}
