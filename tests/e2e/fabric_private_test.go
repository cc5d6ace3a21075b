package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricPrivateData runs one orderer and two organisations of one
// peer with the templates, and deploys the asset template with two
// private data collections: org1Private, kept by org1 alone and read by
// its members only, and shared, kept by both. org1 creates an asset in
// org1Private from transient data; it commits, org1 reads it back, and
// org2 is refused. The transaction the explorer keeps, the store and the
// server's log have none of the transient bytes. An asset org2 writes to
// shared is read by both organisations. Collections that name an
// organisation of no channel, or repeat a name, are refused with their
// field paths; an upgrade keeps the collections, and an organisation
// added afterwards approves the definition with them.
func TestFabricPrivateData(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "39400-39499", "--probe-interval", "500ms")
	c := srv.Client

	const name = "fpriv"
	start := time.Now()
	applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {orderers: 1, templates: true}
`, 90*time.Second)
	t.Logf("network running in %.1fs", time.Since(start).Seconds())
	base := "/api/v1/networks/" + name

	bad := `{"name":"asset","package":"builtin/fabric-asset@1.0.0","collections":[
		{"name":"a","members":["org1","org9"]},
		{"name":"a","members":["org1"],"requiredPeerCount":2,"maxPeerCount":1}]}`
	err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(bad), "application/json", nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnprocessableEntity {
		t.Fatalf("deploy with bad collections: %v; want 422", err)
	}
	fields := map[string]string{}
	for _, e := range ce.Errors {
		fields[e.Field] = e.Detail
	}
	for f, want := range map[string]string{
		"collections[0].members[1]":   `"org9" is not an organisation of channel`,
		"collections[1].name":         `is collections[0]'s name too`,
		"collections[1].maxPeerCount": "below requiredPeerCount 2",
	} {
		if !strings.Contains(fields[f], want) {
			t.Errorf("%s: %q; want it to say %q (all: %v)", f, fields[f], want, ce.Errors)
		}
	}
	var list api.ContractList
	if err := getJSON(ctx, c, base+"/contracts", &list); err != nil || len(list.Items) != 0 {
		t.Fatalf("contracts after a refused deployment: %+v %v; want none", list.Items, err)
	}

	// Endorsement by any organisation: the gateway has a write with
	// transient data endorsed by the collection's members only.
	cols := []apis.Collection{
		{Name: "org1Private", Members: []string{"org1"}, MaxPeerCount: 0, MemberOnlyRead: true, MemberOnlyWrite: true},
		{Name: "shared", Members: []string{"org1", "org2"}, MaxPeerCount: 1},
	}
	body, _ := json.Marshal(api.ContractRequest{Name: "asset", Package: "builtin/fabric-asset@1.0.0", EndorsementPolicy: "ANY", Collections: cols})
	start = time.Now()
	var deployed api.Contract
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", body, "application/json", &deployed); err != nil {
		t.Fatal(err)
	}
	if len(deployed.Collections) != 2 || deployed.Collections[0].Name != "org1Private" {
		t.Fatalf("deployed revision's collections: %+v", deployed.Collections)
	}
	t.Logf("asset deployed with collections org1Private and shared in %.2fs, at block %d", time.Since(start).Seconds(), deployed.Height)

	secret := fmt.Sprintf("appraisal-%d-by-smith", time.Now().UnixNano())
	private := fmt.Sprintf(`{"id":"ring-1","value":5000,"details":%q}`, secret)
	// floor is the block of the newest write, which reads wait for.
	var floor int64
	// callPrivate submits function of the asset template on collection as
	// org, with asset in the transient map.
	callPrivate := func(function, org, collection, asset string) submitted {
		t.Helper()
		call := map[string]any{"chaincode": "asset", "function": function, "args": []string{collection},
			"organization": org, "transient": map[string]any{"asset": map[string]string{"text": asset}}}
		b, _ := json.Marshal(call)
		s, err := submitTx(ctx, c, name, b)
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := s.receipt["height"].(float64); ok {
			floor = max(floor, int64(h))
		}
		return s
	}
	create := func(org, collection, asset string) submitted {
		t.Helper()
		return callPrivate("CreatePrivateAsset", org, collection, asset)
	}
	// The chaincode may still be starting on a peer: try for a while.
	var s submitted
	start = time.Now()
	for i := 0; i < 20; i++ {
		if s = create("org1", "org1Private", private); s.status == http.StatusOK {
			break
		}
		t.Logf("create in org1Private, attempt %d: HTTP %d %s", i+1, s.status, s.problem.Detail)
		time.Sleep(time.Second)
	}
	if s.status != http.StatusOK || s.receipt["committed"] != true {
		t.Fatalf("create in org1Private: HTTP %d %v %+v; want 200, committed", s.status, s.receipt, s.problem)
	}
	hash, _ := s.receipt["hash"].(string)
	t.Logf("ring-1 created in org1Private by org1: %s committed in %.2fs", hash, time.Since(start).Seconds())

	// Reads: each organisation's peer answers with its own identity.
	read := func(collection, id string) map[string]api.QueryAnswer {
		t.Helper()
		got := map[string]api.QueryAnswer{}
		for i := 0; i < 40 && len(got) < 2; i++ {
			q := url.Values{"path": {"/asset/ReadPrivateAsset"}, "data": {fmt.Sprintf("[%q,%q]", collection, id)},
				"minHeight": {fmt.Sprint(floor)}}
			var ans api.QueryAnswer
			if err := getJSON(ctx, c, base+"/query?"+q.Encode(), &ans); err != nil {
				t.Fatalf("query: %v", err)
			}
			got[ans.Node] = ans
		}
		if len(got) < 2 {
			t.Fatalf("read %s/%s: answers from %v only; want both peers", collection, id, got)
		}
		return got
	}
	start = time.Now()
	answers := read("org1Private", "ring-1")
	var ring struct {
		ID, Owner, Details string
		Value              int
	}
	org1 := answers["org1-peer-0"]
	if org1.Code != 0 || json.Unmarshal(org1.Value, &ring) != nil || ring.Owner != "Org1MSP" || ring.Value != 5000 || ring.Details != secret {
		t.Fatalf("org1 reads ring-1: code %d %s %s; want it, owned by Org1MSP", org1.Code, org1.Log, org1.Value)
	}
	org2 := answers["org2-peer-0"]
	if org2.Code == 0 || !strings.Contains(org2.Log, "does not have read access") || strings.Contains(string(org2.Value), secret) {
		t.Fatalf("org2 reads ring-1: code %d %s %s; want a refusal", org2.Code, org2.Log, org2.Value)
	}
	t.Logf("org1 reads ring-1 back; org2 is refused (%s); in %.2fs", org2.Log, time.Since(start).Seconds())

	// The transaction, as the explorer keeps it, has no transient data.
	var tx api.Tx
	if err := pollJSON(t, c, base+"/transactions/"+hash, &tx); err != nil {
		t.Fatalf("explorer: %s: %v", hash, err)
	}
	if tx.Code != 0 || len(tx.Data) == 0 {
		t.Fatalf("explorer: %s = code %d %s, %d bytes; want valid, with its envelope", hash, tx.Code, tx.Log, len(tx.Data))
	}
	if bytes.Contains(tx.Data, []byte(secret)) || strings.Contains(string(tx.Body), secret) {
		t.Fatalf("the explorer's transaction %s carries the transient data", hash)
	}
	if !bytes.Contains(tx.Data, []byte("CreatePrivateAsset")) {
		t.Fatalf("the explorer's transaction %s does not name its function: the search above saw the wrong bytes", hash)
	}
	// Nor do the platform's store and log (the peers' private data
	// stores, under the nodes' directories, are where it belongs).
	searched := noSecretIn(t, srv, dataDir, secret)
	t.Logf("transaction %s, %d bytes in the explorer, and %d files of the platform's (store and log): no transient bytes", hash, len(tx.Data), searched)

	// A collection both organisations keep: org2 writes, both read.
	start = time.Now()
	if s := create("org2", "shared", `{"id":"car-7","value":70,"details":"shared"}`); s.status != http.StatusOK || s.receipt["committed"] != true {
		t.Fatalf("org2 creates car-7 in shared: HTTP %d %v %+v", s.status, s.receipt, s.problem)
	}
	t.Logf("car-7 created in shared by org2 in %.2fs", time.Since(start).Seconds())
	start = time.Now()
	deadline := time.Now().Add(60 * time.Second)
	for {
		answers = read("shared", "car-7")
		ok := true
		for node, ans := range answers {
			var car struct{ Owner string }
			if ans.Code != 0 || json.Unmarshal(ans.Value, &car) != nil || car.Owner != "Org2MSP" {
				ok = false
				if time.Now().After(deadline) {
					t.Fatalf("%s reads car-7 in shared: code %d %s %s", node, ans.Code, ans.Log, ans.Value)
				}
			}
		}
		if ok {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("both organisations read car-7 from shared, %.2fs after its commit", time.Since(start).Seconds())

	// Purged by its owner, car-7 is gone from both peers; org1 may not.
	purge := func(org string) submitted {
		t.Helper()
		return callPrivate("PurgePrivateAsset", org, "shared", `{"id":"car-7"}`)
	}
	if s := purge("org1"); s.status == http.StatusOK || !strings.Contains(s.problem.Detail, "owned by Org2MSP") {
		t.Fatalf("org1 purges org2's car-7: HTTP %d %v %+v; want a refusal naming the owner", s.status, s.receipt, s.problem)
	}
	start = time.Now()
	if s := purge("org2"); s.status != http.StatusOK || s.receipt["committed"] != true {
		t.Fatalf("org2 purges car-7: HTTP %d %v %+v; want 200, committed", s.status, s.receipt, s.problem)
	}
	for node, ans := range read("shared", "car-7") {
		if ans.Code == 0 || !strings.Contains(ans.Log, "is not in collection shared") {
			t.Errorf("%s reads car-7 after its purge: code %d %s %s", node, ans.Code, ans.Log, ans.Value)
		}
	}
	t.Logf("car-7 purged by org2 and gone from both peers in %.2fs; org1's purge was refused", time.Since(start).Seconds())

	// An upgrade that names no collections keeps them; one that drops a
	// collection is refused.
	drop, _ := json.Marshal(api.ContractRequest{Package: "builtin/fabric-asset@1.0.0", EndorsementPolicy: "MAJORITY", Collections: cols[1:]})
	err = c.Do(ctx, http.MethodPut, base+"/contracts/asset", drop, "application/json", nil)
	if !errors.As(err, &ce) || ce.Status != http.StatusUnprocessableEntity || len(ce.Errors) != 1 || ce.Errors[0].Field != "collections" ||
		!strings.Contains(ce.Errors[0].Detail, "leaves out org1Private") {
		t.Fatalf("upgrade dropping org1Private: %v; want 422 naming collections", err)
	}
	start = time.Now()
	var upgraded api.Contract
	if err := c.Do(ctx, http.MethodPut, base+"/contracts/asset", []byte(`{"package":"builtin/fabric-asset@1.0.0","endorsementPolicy":"ALL"}`), "application/json", &upgraded); err != nil {
		t.Fatal(err)
	}
	// Fabric refuses a definition that leaves out a collection the
	// chaincode has: the commit shows they were kept.
	if upgraded.Revision != 2 || len(upgraded.Collections) != 2 || upgraded.TxHash == "" {
		t.Fatalf("upgraded revision: %+v; want revision 2 with the two collections and a lifecycle transaction", upgraded.ContractRevision)
	}
	t.Logf("upgraded to ALL, collections kept, in %.2fs: transaction %s in block %d", time.Since(start).Seconds(), upgraded.TxHash, upgraded.Height)
	answers = read("org1Private", "ring-1")
	if a := answers["org1-peer-0"]; a.Code != 0 || !strings.Contains(string(a.Value), secret) {
		t.Fatalf("org1 reads ring-1 after the upgrade: code %d %s", a.Code, a.Log)
	}

	// org3 joins: its peer is admitted once org3 approved the committed
	// definition, collections and all, byte for byte.
	asked := time.Now()
	scaleFabric(ctx, t, c, name, "org3", 1)
	n := waitFabric(ctx, t, c, name, 120*time.Second, "org3-peer-0 admitted", func(n *apis.Network) bool {
		s, ok := framework.NodeByName(n, "org3-peer-0")
		return ok && !s.Joining && s.Phase == apis.NodeRunning && n.Status.Message == ""
	})
	t.Logf("org3-peer-0 admitted %.1fs after the request, with org3's approval of the definition with collections", time.Since(asked).Seconds())

	deleteFabricNetwork(t, srv, dataDir, n)
}

// noSecretIn fails t if secret is in a file of the server's data
// directory (its store) or in its log, and returns how many files it
// searched.
func noSecretIn(t *testing.T, srv *framework.Server, dataDir, secret string) int {
	t.Helper()
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	searched := 0
	for _, e := range append(entries, nil) {
		path := srv.LogPath()
		if e != nil {
			if !e.Type().IsRegular() {
				continue
			}
			path = filepath.Join(dataDir, e.Name())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		searched++
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("%s has the transient data", path)
		}
	}
	return searched
}
