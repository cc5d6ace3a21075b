package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
)

// TestFabricPrivateEndorsing runs one orderer and two organisations of
// one peer with the templates, and deploys the asset template with the
// channel's default endorsement policy (MAJORITY of two: both) and two
// collections kept by org1 alone: org1Plain, and org1Own, whose own
// endorsementPolicy is org1's peer. Writes with transient data show what
// Fabric does: org1Own is written by org1 with endorsingOrganizations
// [org1] or none, and by org2 (no member) naming [org1], each endorsed by
// org1 alone; org1Plain is refused by the peer's gateway when no
// endorsers are named, and committed invalid (ENDORSEMENT_POLICY_FAILURE)
// when [org1] is. Bad endorsingOrganizations are refused with their
// index. A query with transient data (POST .../query) reaches the
// chaincode on each organisation's peer: VerifyPrivateAsset checks a
// claimed asset against the hash both peers keep; the URL form is
// refused, and nothing of the transient data is in the platform's store
// or log.
func TestFabricPrivateEndorsing(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "39700-39799", "--probe-interval", "500ms")
	c := srv.Client

	const name = "fendorse"
	start := time.Now()
	applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {orderers: 1, templates: true}
`, 90*time.Second)
	t.Logf("network running in %.1fs", time.Since(start).Seconds())
	base := "/api/v1/networks/" + name

	cols := []apis.Collection{
		{Name: "org1Plain", Members: []string{"org1"}, MemberOnlyRead: true, MemberOnlyWrite: true},
		{Name: "org1Own", Members: []string{"org1"}, MemberOnlyRead: true, EndorsementPolicy: "OR('Org1MSP.peer')"},
	}
	body, _ := json.Marshal(api.ContractRequest{Name: "asset", Package: "builtin/fabric-asset@1.0.0", Collections: cols})
	start = time.Now()
	var deployed api.Contract
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", body, "application/json", &deployed); err != nil {
		t.Fatal(err)
	}
	if deployed.EndorsementPolicy != "" || len(deployed.Collections) != 2 {
		t.Fatalf("deployed revision: policy %q, collections %+v; want the default policy and two collections", deployed.EndorsementPolicy, deployed.Collections)
	}
	t.Logf("asset deployed with the default policy, collections org1Plain and org1Own, in %.2fs", time.Since(start).Seconds())

	secret := fmt.Sprintf("appraisal-%d-by-jones", time.Now().UnixNano())
	var floor int64
	create := func(org, collection, id string, endorsers []string) submitted {
		t.Helper()
		call := map[string]any{"chaincode": "asset", "function": "CreatePrivateAsset", "args": []string{collection}, "organization": org,
			"transient": map[string]any{"asset": map[string]string{"text": fmt.Sprintf(`{"id":%q,"value":900,"details":%q}`, id, secret)}}}
		if endorsers != nil {
			call["endorsingOrganizations"] = endorsers
		}
		b, _ := json.Marshal(call)
		s, err := submitTx(ctx, c, name, b)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	said := func(s submitted) string {
		out := s.problem.Detail
		if s.problem.Refusal != nil {
			out += " | " + s.problem.Refusal.Log
		}
		return out
	}

	// endorsed checks that transaction hash is valid and was endorsed by
	// the peers of want alone.
	endorsed := func(hash string, want ...string) {
		t.Helper()
		var tx api.Tx
		if err := pollJSON(t, c, base+"/transactions/"+hash, &tx); err != nil || tx.Code != 0 {
			t.Fatalf("explorer: %s = code %d %s, %v; want valid", hash, tx.Code, tx.Log, err)
		}
		if got := endorsers(t, tx); !slices.Equal(got, want) {
			t.Fatalf("transaction %s endorsed by %v; want %v", hash, got, want)
		}
	}
	committed := func(what string, s submitted, start time.Time, want ...string) {
		t.Helper()
		if s.status != http.StatusOK || s.receipt["committed"] != true {
			t.Fatalf("%s: HTTP %d %v %s; want 200, committed", what, s.status, s.receipt, said(s))
		}
		hash, _ := s.receipt["hash"].(string)
		floor = max(floor, int64(s.receipt["height"].(float64)))
		endorsed(hash, want...)
		t.Logf("%s: committed valid in %.2fs, endorsed by %v", what, time.Since(start).Seconds(), want)
	}

	// org1Own with endorsingOrganizations [org1]: org1's peer alone
	// endorses, which the collection's policy takes. The chaincode may
	// still be starting on the peer: try for a while.
	var s submitted
	start = time.Now()
	for i := 0; i < 20; i++ {
		if s = create("org1", "org1Own", "gem-1", []string{"org1"}); s.status == http.StatusOK {
			break
		}
		t.Logf("create in org1Own, attempt %d: HTTP %d %s", i+1, s.status, said(s))
		time.Sleep(time.Second)
	}
	committed("org1 writes gem-1 to org1Own, endorsers [org1]", s, start, "Org1MSP")
	// Named or not: the gateway plans from the collection's policy too.
	start = time.Now()
	committed("org1 writes gem-2 to org1Own, no endorsers named", create("org1", "org1Own", "gem-2", nil), start, "Org1MSP")

	// A collection without a policy of its own: the gateway plans from
	// the chaincode's, which needs org2, and will not hand org2 the
	// transient data.
	start = time.Now()
	s = create("org1", "org1Plain", "gem-3", nil)
	if s.status == http.StatusOK || !strings.Contains(said(s), "distribution policy") {
		t.Fatalf("create in org1Plain, no endorsers named: HTTP %d %s; want a refusal naming the distribution policy", s.status, said(s))
	}
	t.Logf("org1Plain, no endorsers named: HTTP %d in %.2fs: %s", s.status, time.Since(start).Seconds(), said(s))
	// With [org1] it is ordered, and the peers validate it against the
	// chaincode's policy: invalid.
	start = time.Now()
	s = create("org1", "org1Plain", "gem-4", []string{"org1"})
	if s.status != http.StatusUnprocessableEntity || !strings.Contains(said(s), "ENDORSEMENT_POLICY_FAILURE") {
		t.Fatalf("create in org1Plain endorsed by org1: HTTP %d %s; want 422 ENDORSEMENT_POLICY_FAILURE", s.status, said(s))
	}
	t.Logf("org1Plain endorsed by org1 alone: HTTP %d in %.2fs: %s", s.status, time.Since(start).Seconds(), said(s))

	// org2, no member, writes to org1Own (members write or not): named,
	// org1's peer alone has the transient data and endorses.
	start = time.Now()
	committed("org2 writes gem-6 to org1Own, endorsers [org1]", create("org2", "org1Own", "gem-6", []string{"org1"}), start, "Org1MSP")
	start = time.Now()
	// Not named, the gateway has its own organisation's peer, org2's,
	// simulate the call first, with the transient data, whatever the
	// transaction carries in the end.
	s = create("org2", "org1Own", "gem-7", nil)
	if s.status != http.StatusOK {
		t.Fatalf("org2 writes gem-7 to org1Own, no endorsers named: HTTP %d %s; want 200", s.status, said(s))
	}
	var gem7 api.Tx
	if err := pollJSON(t, c, base+"/transactions/"+s.receipt["hash"].(string), &gem7); err != nil {
		t.Fatal(err)
	}
	t.Logf("org2 writes gem-7 to org1Own, no endorsers named: HTTP %d in %.2fs, code %d, endorsed by %v", s.status, time.Since(start).Seconds(), gem7.Code, endorsers(t, gem7))

	// Organisations the network or the channel does not have.
	s = create("org1", "org1Own", "gem-5", []string{"org1", "org9", "org1"})
	if s.status != http.StatusBadRequest || !strings.Contains(said(s), `endorsingOrganizations[2]: "org1" is endorsingOrganizations[0] too`) {
		t.Fatalf("a repeated organisation: HTTP %d %s; want 400 naming endorsingOrganizations[2]", s.status, said(s))
	}
	s = create("org1", "org1Own", "gem-5", []string{"org9"})
	if s.status != http.StatusBadRequest || !strings.Contains(said(s), `endorsingOrganizations[0]: "org9" is no peer organisation`) {
		t.Fatalf("an unknown organisation: HTTP %d %s; want 400 naming endorsingOrganizations[0]", s.status, said(s))
	}

	// A query with transient data: each organisation's peer checks a
	// claim against the hash it keeps; org2's has no asset, only its hash.
	verify := func(claim string) map[string]api.QueryAnswer {
		t.Helper()
		got := map[string]api.QueryAnswer{}
		for i := 0; i < 40 && len(got) < 2; i++ {
			q, _ := json.Marshal(api.QueryRequest{Path: "/asset/VerifyPrivateAsset", Args: []string{"org1Own"},
				Transient: json.RawMessage(fmt.Sprintf(`{"asset":{"text":%q}}`, claim)), MinHeight: floor})
			var ans api.QueryAnswer
			if err := c.Do(ctx, http.MethodPost, base+"/query", q, "application/json", &ans); err != nil {
				t.Fatalf("query: %v", err)
			}
			got[ans.Node] = ans
		}
		if len(got) < 2 {
			t.Fatalf("verify: answers from %v only; want both peers", got)
		}
		return got
	}
	start = time.Now()
	truth := fmt.Sprintf(`{"id":"gem-1","owner":"Org1MSP","value":900,"details":%q}`, secret)
	for node, ans := range verify(truth) {
		if ans.Code != 0 || string(ans.Value) != "true" {
			t.Fatalf("%s verifies gem-1: code %d %s %s; want true", node, ans.Code, ans.Log, ans.Value)
		}
	}
	for node, ans := range verify(strings.Replace(truth, "900", "901", 1)) {
		if ans.Code != 0 || string(ans.Value) != "false" {
			t.Fatalf("%s verifies gem-1 at another value: code %d %s %s; want false", node, ans.Code, ans.Log, ans.Value)
		}
	}
	t.Logf("both peers verify gem-1 from transient data in a query (true, and false for another value), in %.2fs", time.Since(start).Seconds())
	// The same from the CLI, the transient map on standard input.
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	out, errOut, err := cl.run(fmt.Sprintf(`{"asset":{"text":%q}}`, truth), "query", name, "/asset/VerifyPrivateAsset", `["org1Own"]`, "--transient", "-", "-o", "json")
	var cliAns api.QueryAnswer
	if err != nil || json.Unmarshal([]byte(out), &cliAns) != nil || cliAns.Code != 0 || string(cliAns.Value) != "true" {
		t.Fatalf("chaindock query --transient -: %v %s %s; want the claim verified", err, out, errOut)
	}

	// The URL form is refused.
	q := url.Values{"path": {"/asset/VerifyPrivateAsset"}, "data": {`{"args":["org1Own"],"transient":{}}`}}
	var ce *client.Error
	if err := getJSON(ctx, c, base+"/query?"+q.Encode(), &api.QueryAnswer{}); !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
		t.Fatalf("transient data in the URL: %v; want 400", err)
	}

	// Neither the store nor the server's log has the transient bytes.
	searched := noSecretIn(t, srv, dataDir, secret)
	t.Logf("%d files of the platform's (store and log): no transient bytes", searched)

	n, err := c.GetNetwork(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	deleteFabricNetwork(t, srv, dataDir, n)
}
