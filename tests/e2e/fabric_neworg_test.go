package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricNewOrgChaincode adds an organisation to a running Fabric
// network after a chaincode was committed, and uses the chaincode
// through the new organisation's peer: the notarisation template is
// deployed on two organisations of one peer, org3 is added with a peer,
// which is admitted once it has the package and org3's approval of the
// committed definition is committed; then a notarisation signed by
// org3 and endorsed by every organisation's peer, org3's included, is
// committed valid, and org3's peer answers a query of it.
func TestFabricNewOrgChaincode(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "37100-37199", "--probe-interval", "500ms")
	c := srv.Client

	const name = "fnew"
	applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {orderers: 1, templates: true}
`, 90*time.Second)
	base := "/api/v1/networks/" + name
	var notary api.Contract
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(`{"name":"notary","package":"builtin/fabric-notary@1.0.0"}`), "application/json", &notary); err != nil {
		t.Fatal(err)
	}
	t.Logf("notary deployed on org1 and org2 at block %d", notary.Height)
	// An organisation's own ccaas package, whose server need not run to
	// be installed and approved: the new organisation's peer gets it
	// from a member peer.
	if err := c.Do(ctx, http.MethodPost, "/api/v1/organizations", []byte(`{"name":"acme"}`), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	conn := `{"address":"ledger-cc.acme.example:9999","dial_timeout":"10s","tls_required":false}`
	if err := c.Do(ctx, http.MethodPost, "/api/v1/packages", fmt.Appendf(nil, `{"owner":"acme","name":"ledger-cc","version":"1.0.0","chain":"fabric","kind":"fabric-ccaas","files":[{"path":"connection.json","text":%q}]}`, conn), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	var ledger api.Contract
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(`{"name":"ledger","package":"acme/ledger-cc@1.0.0"}`), "application/json", &ledger); err != nil {
		t.Fatal(err)
	}
	t.Logf("ledger (acme/ledger-cc@1.0.0) deployed at block %d", ledger.Height)
	before := ledger.Height + 1

	asked := time.Now()
	scaleFabric(ctx, t, c, name, "org3", 1)
	n := waitFabric(ctx, t, c, name, 120*time.Second, "org3-peer-0 admitted", func(n *apis.Network) bool {
		s, ok := framework.NodeByName(n, "org3-peer-0")
		return ok && !s.Joining && s.Phase == apis.NodeRunning && n.Status.Message == ""
	})
	t.Logf("org3 added: org3-peer-0 admitted %.1fs after the request, at height %d", time.Since(asked).Seconds(), n.Status.Height)

	// After the config update adding org3, the explorer has org3's
	// approvals of both definitions.
	var kinds []string
	for _, tx := range indexedTxs(ctx, t, c, name, before, n.Status.Height) {
		if tx.Code != 0 {
			t.Errorf("block %d: transaction %s of type %s invalid: code %d %s", tx.height, tx.Hash, tx.Type, tx.Code, tx.Log)
		}
		kinds = append(kinds, tx.Type)
	}
	if got := strings.Join(kinds, ", "); got != "CONFIG, CONFIG, ENDORSER_TRANSACTION/_lifecycle, ENDORSER_TRANSACTION/_lifecycle" {
		t.Errorf("transactions after the deployments: %s; want the config update adding org3, the one setting its anchor peer, and org3's two approvals", got)
	} else {
		t.Logf("transactions after the deployments: %s", got)
	}

	// Signed by org3 with wait=commit; a peer's gateway plans its
	// endorsement from the channel's MAJORITY, two of the three.
	doc := sha256.Sum256([]byte("the charter of org3, signed " + time.Now().String()))
	hash := hex.EncodeToString(doc[:])
	start := time.Now()
	s, err := submitTx(ctx, c, name, fmt.Appendf(nil, `{"chaincode":"notary","function":"Notarize","args":[%q,"org3's charter"],"organization":"org3"}`, hash))
	if err != nil {
		t.Fatal(err)
	}
	if s.status != http.StatusOK || s.receipt["committed"] != true {
		t.Fatalf("notarise as org3: HTTP %d %v %+v; want 200, committed", s.status, s.receipt, s.problem)
	}
	txHash, _ := s.receipt["hash"].(string)
	height := int64(s.receipt["height"].(float64))
	t.Logf("notarised as org3 in %.2fs: transaction %s in block %d, via %v", time.Since(start).Seconds(), txHash, height, s.receipt["node"])
	var tx api.Tx
	if err := pollJSON(t, c, base+"/transactions/"+txHash, &tx); err != nil {
		t.Fatalf("explorer: %s: %v", txHash, err)
	}
	if tx.Code != 0 || tx.Type != "ENDORSER_TRANSACTION/notary" {
		t.Fatalf("explorer: %s = code %d type %q; want a valid notary transaction", txHash, tx.Code, tx.Type)
	}

	// The gateway spreads queries over the peers: ask until org3's
	// answers, which it does only with the package installed and org3's
	// approval committed.
	answered := map[string]bool{}
	for i := 0; i < 30 && !answered["org3-peer-0"]; i++ {
		var ans api.QueryAnswer
		q := url.Values{"path": {"/notary/Get"}, "data": {fmt.Sprintf("[%q]", hash)}, "minHeight": {fmt.Sprint(height)}}
		if err := getJSON(ctx, c, base+"/query?"+q.Encode(), &ans); err != nil {
			t.Fatalf("query: %v", err)
		}
		var rec notaryRecord
		if ans.Code != 0 || json.Unmarshal(ans.Value, &rec) != nil {
			t.Fatalf("query on %s: code %d %s %s", ans.Node, ans.Code, ans.Log, ans.Value)
		}
		if rec.Hash != hash || rec.Submitter != fabric.MSPID("org3") || !strings.EqualFold(rec.TxID, txHash) {
			t.Fatalf("query on %s: %+v; want submitter %s, transaction %s", ans.Node, rec, fabric.MSPID("org3"), txHash)
		}
		if !answered[ans.Node] {
			t.Logf("%s answers: %+v, at height %d", ans.Node, rec, ans.Height)
		}
		answered[ans.Node] = true
	}
	if !answered["org3-peer-0"] {
		t.Fatalf("the peers that answered: %v; want org3-peer-0 among them", answered)
	}

	// Every organisation must endorse now: org3's peer endorses.
	upgraded := time.Now()
	if err := c.Do(ctx, http.MethodPut, base+"/contracts/notary", []byte(`{"package":"builtin/fabric-notary@1.0.0","endorsementPolicy":"ALL"}`), "application/json", nil); err != nil {
		t.Fatalf("upgrade notary to ALL: %v", err)
	}
	t.Logf("notary upgraded to ALL (approved by the three organisations) in %.1fs", time.Since(upgraded).Seconds())
	doc = sha256.Sum256([]byte("org3's second charter, " + time.Now().String()))
	s, err = submitTx(ctx, c, name, fmt.Appendf(nil, `{"chaincode":"notary","function":"Notarize","args":[%q,"all three"],"organization":"org3"}`, hex.EncodeToString(doc[:])))
	if err != nil || s.status != http.StatusOK || s.receipt["committed"] != true {
		t.Fatalf("notarise under ALL: %v HTTP %d %v %+v", err, s.status, s.receipt, s.problem)
	}
	txHash, _ = s.receipt["hash"].(string)
	if err := pollJSON(t, c, base+"/transactions/"+txHash, &tx); err != nil {
		t.Fatalf("explorer: %s: %v", txHash, err)
	}
	if got := endorsers(t, tx); tx.Code != 0 || !slices.Equal(got, []string{"Org1MSP", "Org2MSP", "Org3MSP"}) {
		t.Fatalf("transaction %s under ALL: code %d, endorsed by %v; want valid, by all three", txHash, tx.Code, got)
	}
	t.Logf("under ALL: %s valid, endorsed by Org1MSP, Org2MSP and Org3MSP", txHash)

	deleteFabricNetwork(t, srv, dataDir, n)
}
