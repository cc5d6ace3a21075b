package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/chain/fabric"
)

// notaryRecord is what the notarisation template's Get answers.
type notaryRecord struct {
	Hash      string `json:"hash"`
	Note      string `json:"note"`
	Submitter string `json:"submitter"`
	TxID      string `json:"txId"`
}

// TestFabricGateway runs one orderer and two organisations of one peer
// with the templates, deploys the notarisation chaincode through the
// contracts API, and uses it through ChainDock's gateway: a document
// notarised with wait=commit (endorsed by both organisations, ordered,
// committed, in the explorer), read back by either organisation's peer,
// the same body again answering its first receipt, a second
// notarisation of the document and bad bodies refused with their
// reasons, and a call signed by the organisation it names.
func TestFabricGateway(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "37000-37099", "--probe-interval", "500ms")
	c := srv.Client

	const name, channel = "fgw", "gw"
	n, _ := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {orderers: 1, channel: `+channel+", templates: true}\n", 90*time.Second)
	base := "/api/v1/networks/" + name
	var notary api.Contract
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(`{"name":"notary","package":"builtin/fabric-notary@1.0.0"}`), "application/json", &notary); err != nil {
		t.Fatal(err)
	}
	t.Logf("notary deployed at block %d", notary.Height)

	doc := sha256.Sum256([]byte("the contract of sale, signed " + time.Now().String()))
	hash := hex.EncodeToString(doc[:])
	body := fmt.Sprintf(`{"chaincode":"notary","function":"Notarize","args":[%q,"contract of sale"]}`, hash)
	start := time.Now()
	s, err := submitTx(ctx, c, name, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if s.status != http.StatusOK || s.receipt["committed"] != true {
		t.Fatalf("notarise: HTTP %d %v %+v; want 200, committed", s.status, s.receipt, s.problem)
	}
	txHash, _ := s.receipt["hash"].(string)
	height := int64(s.receipt["height"].(float64))
	submitNode, _ := s.receipt["node"].(string)
	t.Logf("notarised through the gateway with wait=commit in %.2fs: transaction %s in block %d, via %s (%v attempts)",
		took.Seconds(), txHash, height, submitNode, s.receipt["attempts"])

	// The explorer has it as a valid call of the notary chaincode.
	var tx api.Tx
	if err := pollJSON(t, c, base+"/transactions/"+txHash, &tx); err != nil {
		t.Fatalf("explorer: %s: %v", txHash, err)
	}
	if tx.Code != 0 || tx.Type != "ENDORSER_TRANSACTION/notary" || tx.Height != height {
		t.Fatalf("explorer: %s = code %d type %q height %d; want code 0, ENDORSER_TRANSACTION/notary, height %d", txHash, tx.Code, tx.Type, tx.Height, height)
	}

	// Both organisations' peers answer the query, from at least the
	// notarisation's block.
	orgOf := map[string]string{}
	for _, s := range n.Status.Nodes {
		orgOf[s.Name] = s.Organization
	}
	answered := map[string]bool{}
	for i := 0; i < 12 && len(answered) < 2; i++ {
		var ans api.QueryAnswer
		q := url.Values{"path": {"/notary/Get"}, "data": {fmt.Sprintf("[%q]", hash)}, "minHeight": {fmt.Sprint(height)}}
		if err := getJSON(ctx, c, base+"/query?"+q.Encode(), &ans); err != nil {
			t.Fatalf("query: %v", err)
		}
		var rec notaryRecord
		if ans.Code != 0 || json.Unmarshal(ans.Value, &rec) != nil {
			t.Fatalf("query on %s: code %d %s %s", ans.Node, ans.Code, ans.Log, ans.Value)
		}
		// A call naming no organisation is signed by the first.
		want := fabric.MSPID("org1")
		if rec.Hash != hash || rec.Note != "contract of sale" || rec.Submitter != want || !strings.EqualFold(rec.TxID, txHash) || ans.Height < height {
			t.Fatalf("query on %s at height %d: %+v; want note, submitter %s, transaction %s, height >= %d", ans.Node, ans.Height, rec, want, txHash, height)
		}
		if !answered[ans.Node] {
			t.Logf("%s (%s) answers: %+v, at height %d", ans.Node, orgOf[ans.Node], rec, ans.Height)
		}
		answered[ans.Node] = true
	}
	if !answered["org1-peer-0"] || !answered["org2-peer-0"] {
		t.Fatalf("the peers that answered: %v; want both organisations'", answered)
	}

	// The same body again is the same transaction: its first receipt.
	again, err := submitTx(ctx, c, name, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if again.status != http.StatusOK || again.receipt["hash"] != txHash || int64(again.receipt["height"].(float64)) != height {
		t.Fatalf("the same body again: HTTP %d %v %+v; want 200 with the first receipt", again.status, again.receipt, again.problem)
	}
	t.Logf("the same body again answers the first receipt: %v", again.receipt)

	// A call may name the organisation whose identity signs it.
	doc2 := sha256.Sum256([]byte("the deed, signed " + time.Now().String()))
	hash2 := hex.EncodeToString(doc2[:])
	s2, err := submitTx(ctx, c, name, fmt.Appendf(nil, `{"chaincode":"notary","function":"Notarize","args":[%q,"the deed"],"organization":"org2"}`, hash2))
	if err != nil {
		t.Fatal(err)
	}
	if s2.status != http.StatusOK {
		t.Fatalf("notarise as org2: HTTP %d %+v", s2.status, s2.problem)
	}
	var ans2 api.QueryAnswer
	q2 := url.Values{"path": {"/notary/Get"}, "data": {fmt.Sprintf("[%q]", hash2)}, "minHeight": {fmt.Sprint(int64(s2.receipt["height"].(float64)))}}
	if err := getJSON(ctx, c, base+"/query?"+q2.Encode(), &ans2); err != nil {
		t.Fatal(err)
	}
	var rec2 notaryRecord
	if ans2.Code != 0 || json.Unmarshal(ans2.Value, &rec2) != nil || rec2.Submitter != fabric.MSPID("org2") {
		t.Fatalf("the record notarised as org2, from %s: code %d %s %s; want submitter %s", ans2.Node, ans2.Code, ans2.Log, ans2.Value, fabric.MSPID("org2"))
	}
	t.Logf("notarised as org2 via %s: submitter %s", s2.receipt["node"], rec2.Submitter)

	// Another notarisation of the document is the chaincode's refusal.
	second, err := submitTx(ctx, c, name, fmt.Appendf(nil, `{"chaincode":"notary","function":"Notarize","args":[%q,"a forgery"]}`, hash))
	if err != nil {
		t.Fatal(err)
	}
	if second.status != http.StatusUnprocessableEntity || second.problem.Type != api.ProblemTxRefused || second.problem.Refusal == nil ||
		second.problem.Refusal.Code == 0 || !strings.Contains(second.problem.Refusal.Log, "already notarised") {
		t.Fatalf("a second notarisation: HTTP %d %+v; want 422 with the chaincode's message", second.status, second.problem)
	}
	t.Logf("as expected: %s", second.problem.Detail)

	// Bad bodies and queries, each with what is wrong.
	for _, bad := range []struct{ body, want string }{
		{`not json`, "JSON object"},
		{`{"chaincode":"notary","function":"Notarize","args":[1]}`, "JSON object"},
		{`{"chaincode":"cscc","function":"JoinChain"}`, "system chaincode"},
		{`{"chaincode":"notary"}`, "function: required"},
		{`{"chaincode":"notary","function":"Get","args":["x"],"organization":"org9"}`, `organization: "org9" is no peer organisation`},
	} {
		s, err := submitTx(ctx, c, name, []byte(bad.body))
		if err != nil {
			t.Fatal(err)
		}
		if s.status != http.StatusBadRequest || !strings.Contains(s.problem.Detail, bad.want) {
			t.Fatalf("body %s: HTTP %d %+v; want 400 saying %q", bad.body, s.status, s.problem, bad.want)
		}
		t.Logf("as expected, %s: %s", bad.body, s.problem.Detail)
	}
	var ans api.QueryAnswer
	err = getJSON(ctx, c, base+"/query?"+url.Values{"path": {"/notary"}}.Encode(), &ans)
	if err == nil || !strings.Contains(err.Error(), "/CHAINCODE/FUNCTION") {
		t.Fatalf("query of /notary: %v %+v; want 400 saying /CHAINCODE/FUNCTION", err, ans)
	}
	missing := sha256.Sum256([]byte("never notarised"))
	if err := getJSON(ctx, c, base+"/query?"+url.Values{"path": {"/notary/Get"}, "data": {fmt.Sprintf("[%q]", hex.EncodeToString(missing[:]))}}.Encode(), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Code == 0 || !strings.Contains(ans.Log, "not notarised") {
		t.Fatalf("query of a missing document: %+v; want the chaincode's refusal", ans)
	}

	deleteFabricNetwork(t, srv, dataDir, n)
}
