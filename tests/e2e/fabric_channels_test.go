package e2e

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricChannels deploys three organisations of one peer with a
// second channel of two of them: every orderer joins both channels, each
// peer the channels of its organisation, and each member organisation
// sets its anchor peer on each. An orderer added later becomes a consenter
// of both and joins both; an organisation of the shared channel alone
// leaves. The network is a consortium's, so that its organisations' users
// are told apart: the explorer of the second channel shows a transaction
// on it to a member, not on the shared channel, and refuses org3's user.
func TestFabricChannels(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "37200-37299", "--probe-interval", "500ms")
	c := srv.Client

	const name, shared, pair = "chans", "everyone", "pair"
	users, applied := createPairNetwork(ctx, t, srv, name, shared, pair)
	// The shared channel: genesis and three anchor updates; the pair's:
	// genesis and two.
	want := map[string]map[string]int64{
		"orderer-0":   {shared: 4, pair: 3},
		"org1-peer-0": {shared: 4, pair: 3},
		"org2-peer-0": {shared: 4, pair: 3},
		"org3-peer-0": {shared: 4, pair: 0},
	}
	waitChannels(ctx, t, c, name, want)
	t.Logf("three organisations on channel %s, two of them on %s, every anchor peer set, %.1fs after apply", shared, pair, time.Since(applied).Seconds())

	// The notarisation template on the pair's channel: installed on and
	// approved by its two organisations, committed there.
	base := "/api/v1/networks/" + name
	expectContractRefused(ctx, t, c, base, `{"name":"nowhere","package":"builtin/fabric-notary@1.0.0","channel":"nochannel"}`, "channel")
	expectContractRefused(ctx, t, c, base, `{"name":"notary3","package":"builtin/fabric-notary@1.0.0","channel":"`+pair+`","endorsementPolicy":"OR('Org3MSP.peer')"}`, "endorsementPolicy")
	var notary api.Contract
	deployed := time.Now()
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(`{"name":"notary","package":"builtin/fabric-notary@1.0.0","channel":"`+pair+`"}`), "application/json", &notary); err != nil {
		t.Fatal(err)
	}
	if notary.Channel != pair {
		t.Errorf("contract notary on channel %q, want %s", notary.Channel, pair)
	}
	t.Logf("notary deployed on channel %s at its block %d, %.1fs after the request", pair, notary.Height, time.Since(deployed).Seconds())

	// A notarisation on the pair's channel, signed by org2: the receipt
	// names the channel, and its height is that channel's.
	hash, receipt := notariseOn(ctx, t, c, name, pair, "org2", "Org2MSP")
	checkChannelExplorer(t, c, users, name, pair, receipt)
	q := url.Values{"path": {"/notary/Get"}, "data": {fmt.Sprintf("[%q]", hash)}}
	var ans api.QueryAnswer
	// Not on the shared channel, which has no notary chaincode.
	if err := getJSON(ctx, c, base+"/query?"+q.Encode(), &ans); err != nil || ans.Code == 0 {
		t.Errorf("query on %s: %v, code %d; want the chaincode missing there", shared, err, ans.Code)
	}
	// org3 is no member of the pair's channel.
	sub, err := submitTx(ctx, c, name, []byte(fmt.Sprintf(`{"chaincode":"notary","function":"Notarize","args":["%x","x"],"channel":%q,"organization":"org3"}`, sha256.Sum256([]byte("org3")), pair)))
	if err != nil || sub.status != http.StatusBadRequest || !strings.Contains(sub.problem.Detail, "no member of channel "+pair) {
		t.Errorf("org3 on %s: %v, HTTP %d %+v; want 400, no member", pair, err, sub.status, sub.problem)
	}

	// Refused: a channel naming an organisation the network lacks.
	_, err = c.CreateNetwork(ctx, []byte(`apiVersion: chaindock/v1
kind: Network
metadata: {name: chans-bad}
spec:
  chain: fabric
  runtime: process
  organizations: [{name: org1, peers: 1}]
  fabric: {orderers: 1, channels: [{name: other, organizations: [org1, org9]}]}
`))
	var p *client.Error
	if !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "spec.fabric.channels[0].organizations[1]") {
		t.Errorf("a channel of an organisation the network lacks: %v, want 422 naming spec.fabric.channels[0].organizations[1]", err)
	}

	// An orderer more (three): a consenter of both channels, on both.
	asked := time.Now()
	scaleOrderers(ctx, t, c, name, 3)
	for _, o := range []string{"orderer-1", "orderer-2"} {
		want[o] = map[string]int64{shared: 4, pair: 3}
	}
	waitChannels(ctx, t, c, name, want)
	t.Logf("orderers 1 to 3 on both channels %.1fs after the request", time.Since(asked).Seconds())

	// org3, of the shared channel alone, leaves (one of the pair's
	// leaves it first: see TestFabricChannelMembers).
	scaleFabric(ctx, t, c, name, "org3", 0)
	n := waitFabric(ctx, t, c, name, 60*time.Second, "org3 gone", func(n *apis.Network) bool {
		_, ok := framework.NodeByName(n, "org3-peer-0")
		return !ok && n.Status.Message == ""
	})

	deleteFabricNetwork(t, srv, dataDir, n)
}

// waitChannels waits until every node named in want is at least at the
// heights it gives on each channel, from its own metrics, and no other
// channel: 0 means not a member.
func waitChannels(ctx context.Context, t *testing.T, c *client.Client, name string, want map[string]map[string]int64) *apis.Network {
	t.Helper()
	var n *apis.Network
	err := framework.Poll(ctx, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		var err error
		if n, err = c.GetNetwork(ctx, name); err != nil {
			return false, err.Error()
		}
		if n.Status.Phase != apis.PhaseRunning || n.Status.Message != "" {
			return false, framework.Describe(n) + " " + n.Status.Message
		}
		for node, chans := range want {
			s, ok := framework.NodeByName(n, node)
			if !ok {
				return false, "no node " + node
			}
			for ch, h := range chans {
				m, err := fabricMetrics(ctx, s, ch)
				if err != nil {
					return false, err.Error()
				}
				got := int64(m["ledger_blockchain_height"])
				if h == 0 && got != 0 || h > 0 && got < h {
					return false, fmt.Sprintf("%s on %s: height %d, want %d", node, ch, got, h)
				}
			}
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("channels: %v", err)
	}
	return n
}

// expectContractRefused deploys body and checks the answer is 422 naming
// field.
func expectContractRefused(ctx context.Context, t *testing.T, c *client.Client, base, body, field string) {
	t.Helper()
	err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(body), "application/json", nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnprocessableEntity || len(ce.Errors) == 0 || ce.Errors[0].Field != field {
		t.Errorf("deploy %s: %v; want 422 naming %s", body, err, field)
		return
	}
	t.Logf("deploy refused: %s: %s", ce.Errors[0].Field, ce.Errors[0].Detail)
}

// consortium makes organisations orgs, each with an administrator who
// logs in, and a consortium named name of them owned by the first; it
// returns a client of each organisation's administrator.
func consortium(ctx context.Context, t *testing.T, srv *framework.Server, name string, orgs ...string) map[string]*client.Client {
	t.Helper()
	c := srv.Client
	out := map[string]*client.Client{}
	for _, org := range orgs {
		user, password := org+"-admin", "the long password of "+org
		if err := c.Do(ctx, http.MethodPost, "/api/v1/users", fmt.Appendf(nil, `{"name":%q,"password":%q}`, user, password), "application/json", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Do(ctx, http.MethodPost, "/api/v1/organizations", fmt.Appendf(nil, `{"name":%q,"admin":%q}`, org, user), "application/json", nil); err != nil {
			t.Fatal(err)
		}
		var lr api.LoginResponse
		if err := c.Do(ctx, http.MethodPost, "/api/v1/login", fmt.Appendf(nil, `{"user":%q,"password":%q}`, user, password), "application/json", &lr); err != nil {
			t.Fatal(err)
		}
		out[org] = client.New(srv.Addr, lr.Token)
	}
	owner := out[orgs[0]]
	if err := owner.Do(ctx, http.MethodPost, "/api/v1/consortia", fmt.Appendf(nil, `{"name":%q,"owner":%q}`, name, orgs[0]), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	for _, org := range orgs[1:] {
		var inv api.Invitation
		if err := owner.Do(ctx, http.MethodPost, "/api/v1/consortia/"+name+"/invitations", fmt.Appendf(nil, `{"org":%q}`, org), "application/json", &inv); err != nil {
			t.Fatal(err)
		}
		if err := out[org].Do(ctx, http.MethodPost, "/api/v1/invitations/"+inv.ID+"/accept", nil, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkChannelExplorer checks the explorer of channel ch of network name
// after the transaction of receipt was committed on it: a member's
// (org2's) explorer of ch lists it, valid, in its block; the shared
// channel's has no such transaction; org3's user, no member of ch, is
// refused it; a channel the network lacks is not found.
func checkChannelExplorer(t *testing.T, c *client.Client, users map[string]*client.Client, name, ch string, receipt map[string]any) {
	t.Helper()
	ctx := t.Context()
	base := "/api/v1/networks/" + name
	hash, _ := receipt["hash"].(string)
	height, _ := receipt["height"].(float64)
	member := users["org2"]
	start := time.Now()
	var tx api.Tx
	if err := pollJSON(t, member, base+"/transactions/"+hash+"?channel="+ch, &tx); err != nil {
		t.Fatalf("explorer of %s: transaction %s: %v", ch, hash, err)
	}
	if tx.Code != 0 || tx.Type != "ENDORSER_TRANSACTION/notary" || !strings.EqualFold(tx.Hash, hash) || tx.Height != int64(height) {
		t.Fatalf("explorer of %s: %+v; want a valid (code 0) notary transaction %s at height %v", ch, tx, hash, height)
	}
	t.Logf("explorer of %s: transaction %s, code %d, in block %d, indexed %.2fs after the receipt", ch, tx.Hash, tx.Code, tx.Height, time.Since(start).Seconds())
	var txs api.TxList
	if err := getJSON(ctx, member, base+"/transactions?channel="+ch, &txs); err != nil {
		t.Fatal(err)
	}
	if len(txs.Items) == 0 || !strings.EqualFold(txs.Items[0].Hash, hash) || txs.Items[0].Code != 0 {
		t.Errorf("transactions of %s: %+v; want %s newest, code 0", ch, txs.Items, hash)
	}
	var blk struct {
		api.Block
		Txs []api.Tx `json:"transactions"`
	}
	if err := getJSON(ctx, member, fmt.Sprintf("%s/blocks/%d?channel=%s", base, tx.Height, ch), &blk); err != nil {
		t.Fatal(err)
	}
	if len(blk.Txs) != 1 || !strings.EqualFold(blk.Txs[0].Hash, hash) {
		t.Errorf("block %d of %s: %+v; want the transaction alone", tx.Height, ch, blk.Txs)
	}
	var st api.ExplorerStatus
	if err := getJSON(ctx, member, base+"/explorer?channel="+ch, &st); err != nil || st.Channel != ch || st.IndexedHeight < tx.Height || st.ChainHeight < st.IndexedHeight {
		t.Errorf("explorer status of %s: %+v %v", ch, st, err)
	}

	// Not on the shared channel, for the member nor the platform's
	// administrator.
	for who, cl := range map[string]*client.Client{"org2": member, "the administrator": c} {
		err := getJSON(ctx, cl, base+"/transactions/"+hash, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusNotFound {
			t.Errorf("the shared channel's explorer for %s: transaction %s: %v; want 404", who, hash, err)
		}
	}
	if err := getJSON(ctx, c, base+"/transactions/"+hash+"?channel="+ch, &tx); err != nil {
		t.Errorf("explorer of %s for the administrator: %v", ch, err)
	}

	// org3 reads the shared channel, not ch.
	outsider := users["org3"]
	if err := getJSON(ctx, outsider, base+"/blocks", &api.BlockList{}); err != nil {
		t.Errorf("org3 on the shared channel: %v", err)
	}
	for _, p := range []string{"/transactions/" + hash, "/transactions", "/blocks", "/explorer"} {
		err := getJSON(ctx, outsider, base+p+"?channel="+ch, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusForbidden || !strings.Contains(ce.Detail, "no member organisation of channel "+ch) {
			t.Errorf("org3 reading %s of %s: %v; want 403", p, ch, err)
		}
	}
	err := getJSON(ctx, member, base+"/blocks?channel=nochannel", nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound || !strings.Contains(ce.Detail, `"nochannel"`) {
		t.Errorf("blocks of channel nochannel: %v; want 404 naming it", err)
	}
}

// createPairNetwork creates network name of the consortium of the same
// name, whose organisations org1, org2 and org3 (one peer each, one
// orderer, the templates) share channel shared, and org1 and org2 also
// channel pair. It returns a client of each organisation's administrator
// and when the network was asked for.
func createPairNetwork(ctx context.Context, t *testing.T, srv *framework.Server, name, shared, pair string) (map[string]*client.Client, time.Time) {
	t.Helper()
	users := consortium(ctx, t, srv, name, "org1", "org2", "org3")
	applied := time.Now()
	manifest := withFabricVersion(t, []byte(`apiVersion: chaindock/v1
kind: Network
metadata: {name: `+name+`, owner: org1}
spec:
  chain: fabric
  runtime: process
  consortium: `+name+`
  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
    - {name: org3, peers: 1}
  fabric:
    orderers: 1
    templates: true
    channel: `+shared+`
    channels:
      - {name: `+pair+`, organizations: [org1, org2]}
`))
	if _, err := srv.Client.CreateNetwork(ctx, manifest); err != nil {
		t.Fatal(err)
	}
	return users, applied
}
