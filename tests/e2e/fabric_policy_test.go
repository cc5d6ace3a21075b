package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricEndorsementPolicy runs one orderer and two organisations of
// one peer with the templates and deploys the notarisation chaincode
// with the endorsement policy OR('Org1MSP.peer','Org2MSP.peer'): with
// org2's peer killed, a notarisation commits as valid, endorsed by org1's
// peer alone. The contract is then upgraded to ALL, and a notarisation
// commits endorsed by both organisations. Policies naming an unknown
// organisation, or that do not parse, are refused with the field and
// the reason, and nothing is recorded. Last, org3 joins: its peer is
// admitted once org3 approved the committed definition with its
// signature policy, and it runs the chaincode.
func TestFabricEndorsementPolicy(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "38600-38699", "--probe-interval", "500ms")
	c := srv.Client

	const name, channel = "fpol", "pol"
	n, _ := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {orderers: 1, channel: `+channel+", templates: true}\n", 90*time.Second)
	base := "/api/v1/networks/" + name

	for _, bad := range []struct{ policy, want string }{
		{`OR('Org1MSP.peer','Org9MSP.peer')`, "names Org9MSP, not an organisation of the channel"},
		{`OR('Org1MSP.peer'`, "at position 18"},
		{`OR('Org1MSP.orderer')`, `role "orderer"`},
	} {
		body := fmt.Sprintf(`{"name":"notary","package":"builtin/fabric-notary@1.0.0","endorsementPolicy":%q}`, bad.policy)
		err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(body), "application/json", nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusUnprocessableEntity || len(ce.Errors) != 1 ||
			ce.Errors[0].Field != "endorsementPolicy" || !strings.Contains(ce.Errors[0].Detail, bad.want) {
			t.Fatalf("deploy with policy %s: %v; want 422 naming endorsementPolicy, saying %q", bad.policy, err, bad.want)
		}
		t.Logf("as expected, %s: %s", bad.policy, ce.Errors[0].Detail)
	}
	var list api.ContractList
	if err := getJSON(ctx, c, base+"/contracts", &list); err != nil || len(list.Items) != 0 {
		t.Fatalf("contracts after refused deployments: %+v %v; want none", list.Items, err)
	}

	const or = "OR('Org1MSP.peer','Org2MSP.peer')"
	start := time.Now()
	var notary api.Contract
	body := fmt.Sprintf(`{"name":"notary","package":"builtin/fabric-notary@1.0.0","endorsementPolicy":%q}`, or)
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(body), "application/json", &notary); err != nil {
		t.Fatal(err)
	}
	if notary.EndorsementPolicy != or {
		t.Fatalf("deployed revision: %+v; want endorsement policy %s", notary.ContractRevision, or)
	}
	t.Logf("notary deployed with %s in %.2fs, at block %d", or, time.Since(start).Seconds(), notary.Height)

	// org2's peer down: org1's peer alone endorses, and that is enough.
	var victim apis.NodeStatus
	for _, s := range n.Status.Nodes {
		if s.Name == "org2-peer-0" {
			victim = s
		}
	}
	if victim.PID == 0 {
		t.Fatalf("no PID for org2-peer-0 in %+v", n.Status.Nodes)
	}
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill org2-peer-0: %v", err)
	}
	killed := time.Now()
	tx, took := notariseValid(t, c, name, "under OR with org2's peer down", 0)
	if got := endorsers(t, tx); !slices.Equal(got, []string{"Org1MSP"}) {
		t.Fatalf("transaction %s under %s with org2's peer killed %.1fs before: endorsed by %v; want Org1MSP alone",
			tx.Hash, or, time.Since(killed).Seconds(), got)
	}
	t.Logf("under %s, %.2fs after org2's peer was killed: %s valid in block %d in %.2fs, endorsed by Org1MSP alone",
		or, time.Since(killed).Seconds(), tx.Hash, tx.Height, took.Seconds())

	// The platform restarts org2's peer; the upgrade needs it.
	err := framework.Poll(ctx, 90*time.Second, 500*time.Millisecond, func() (bool, string) {
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		for _, s := range n.Status.Nodes {
			if s.Name == victim.Name {
				return s.Phase == apis.NodeRunning && s.PID != victim.PID && framework.Alive(s.PID), fmt.Sprintf("%s %s pid %d", s.Name, s.Phase, s.PID)
			}
		}
		return false, "no " + victim.Name
	})
	if err != nil {
		t.Fatalf("org2-peer-0 back: %v", err)
	}
	t.Logf("org2-peer-0 running again %.1fs after the kill", time.Since(killed).Seconds())

	start = time.Now()
	var upgraded api.Contract
	if err := c.Do(ctx, http.MethodPut, base+"/contracts/notary", []byte(`{"package":"builtin/fabric-notary@1.0.0","endorsementPolicy":"ALL"}`), "application/json", &upgraded); err != nil {
		t.Fatal(err)
	}
	if upgraded.Revision != 2 || upgraded.EndorsementPolicy != "ALL" || upgraded.TxHash == "" {
		t.Fatalf("upgraded revision: %+v; want revision 2 with ALL and a lifecycle transaction", upgraded.ContractRevision)
	}
	t.Logf("upgraded to ALL in %.2fs: transaction %s in block %d", time.Since(start).Seconds(), upgraded.TxHash, upgraded.Height)
	if err := c.Do(ctx, http.MethodPut, base+"/contracts/notary", []byte(`{"package":"builtin/fabric-notary@1.0.0","endorsementPolicy":"ALL"}`), "application/json", nil); err == nil {
		t.Fatal("the same upgrade again was accepted")
	}

	tx, took = notariseValid(t, c, name, "under ALL", 60*time.Second)
	if got := endorsers(t, tx); !slices.Equal(got, []string{"Org1MSP", "Org2MSP"}) {
		t.Fatalf("transaction %s under ALL: endorsed by %v; want Org1MSP and Org2MSP", tx.Hash, got)
	}
	t.Logf("under ALL: %s valid in block %d in %.2fs, endorsed by Org1MSP and Org2MSP", tx.Hash, tx.Height, took.Seconds())

	// org3 joins after the signature policy was committed: its peer is
	// admitted once org3 approved the committed definition, policy bytes
	// and all, and it then runs the chaincode.
	asked := time.Now()
	scaleFabric(ctx, t, c, name, "org3", 1)
	n = waitFabric(ctx, t, c, name, 120*time.Second, "org3-peer-0 admitted", func(n *apis.Network) bool {
		s, ok := framework.NodeByName(n, "org3-peer-0")
		return ok && !s.Joining && s.Phase == apis.NodeRunning && n.Status.Message == ""
	})
	t.Logf("org3 added: org3-peer-0 admitted %.1fs after the request, at height %d", time.Since(asked).Seconds(), n.Status.Height)
	answered := map[string]bool{}
	for i := 0; i < 30 && !answered["org3-peer-0"]; i++ {
		var ans api.QueryAnswer
		q := url.Values{"path": {"/notary/Get"}, "data": {fmt.Sprintf("[%q]", tx.Hash)}}
		if err := getJSON(ctx, c, base+"/query?"+q.Encode(), &ans); err != nil {
			t.Fatalf("query: %v", err)
		}
		// The hash of a transaction was never notarised: the chaincode,
		// running, says so.
		if !strings.Contains(ans.Log, "not notarised") {
			t.Fatalf("query on %s: code %d %s %s; want the chaincode's answer that it is not notarised", ans.Node, ans.Code, ans.Log, ans.Value)
		}
		answered[ans.Node] = true
	}
	if !answered["org3-peer-0"] {
		t.Fatalf("the peers whose chaincode answered: %v; want org3-peer-0 among them", answered)
	}
	t.Logf("the chaincode answers on %v", slices.Sorted(maps.Keys(answered)))

	var got api.Contract
	if err := getJSON(ctx, c, base+"/contracts/notary", &got); err != nil {
		t.Fatal(err)
	}
	if len(got.History) != 2 || got.History[0].EndorsementPolicy != or || got.History[1].EndorsementPolicy != "ALL" {
		t.Fatalf("history: %+v; want %s then ALL", got.History, or)
	}

	deleteFabricNetwork(t, srv, dataDir, n)
}

// notariseValid notarises a new document through the gateway, trying again
// for up to retry while the gateway cannot yet gather the endorsements,
// and returns the explorer's transaction, valid, and how long the
// successful submission took.
func notariseValid(t *testing.T, c *client.Client, network, note string, retry time.Duration) (api.Tx, time.Duration) {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(retry)
	for attempt := 1; ; attempt++ {
		doc := sha256.Sum256([]byte(note + time.Now().String()))
		body := fmt.Sprintf(`{"chaincode":"notary","function":"Notarize","args":[%q,%q]}`, hex.EncodeToString(doc[:]), note)
		start := time.Now()
		s, err := submitTx(ctx, c, network, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if s.status != http.StatusOK || s.receipt["committed"] != true {
			if time.Now().Before(deadline) {
				t.Logf("notarise %s, attempt %d: HTTP %d %s; trying again", note, attempt, s.status, s.problem.Detail)
				time.Sleep(time.Second)
				continue
			}
			t.Fatalf("notarise %s: HTTP %d %v %+v; want 200, committed", note, s.status, s.receipt, s.problem)
		}
		hash, _ := s.receipt["hash"].(string)
		var tx api.Tx
		if err := pollJSON(t, c, "/api/v1/networks/"+network+"/transactions/"+hash, &tx); err != nil {
			t.Fatalf("explorer: %s: %v", hash, err)
		}
		if tx.Code != 0 || tx.Type != "ENDORSER_TRANSACTION/notary" {
			t.Fatalf("explorer: %s = code %d %s type %q; want valid, ENDORSER_TRANSACTION/notary", hash, tx.Code, tx.Log, tx.Type)
		}
		return tx, took
	}
}

// endorsers are the MSP IDs of the endorsements a transaction carries,
// sorted, read from its envelope as a committing peer reads it.
func endorsers(t *testing.T, tx api.Tx) []string {
	t.Helper()
	var env cb.Envelope
	var payload cb.Payload
	var ptx pb.Transaction
	if err := proto.Unmarshal(tx.Data, &env); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(env.GetPayload(), &payload); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(payload.GetData(), &ptx); err != nil {
		t.Fatal(err)
	}
	if len(ptx.GetActions()) != 1 {
		t.Fatalf("transaction %s has %d actions; want 1", tx.Hash, len(ptx.GetActions()))
	}
	var cap pb.ChaincodeActionPayload
	if err := proto.Unmarshal(ptx.GetActions()[0].GetPayload(), &cap); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range cap.GetAction().GetEndorsements() {
		var id mb.SerializedIdentity
		if err := proto.Unmarshal(e.GetEndorser(), &id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id.GetMspid())
	}
	slices.Sort(out)
	return out
}
