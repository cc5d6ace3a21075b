package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricChannelMembers changes the members of a second channel of a
// running network of three organisations: org3 joins the pair of org1
// and org2, whose notarisation contract it then runs (its peer joins the
// channel, installs and approves the contract) and calls; org2 is taken
// out, and its users' calls on the channel are refused while org1's go
// on; last org3 leaves the network, out of the channel first.
// The second change goes through the command line.
func TestFabricChannelMembers(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "37300-37399", "--probe-interval", "500ms")
	c := srv.Client

	const name, shared, pair = "members", "everyone", "pair"
	users, applied := createPairNetwork(ctx, t, srv, name, shared, pair)
	waitChannels(ctx, t, c, name, map[string]map[string]int64{
		"org1-peer-0": {shared: 4, pair: 3},
		"org2-peer-0": {shared: 4, pair: 3},
		"org3-peer-0": {shared: 4, pair: 0},
	})
	t.Logf("network running, org1 and org2 on channel %s, %.1fs after apply", pair, time.Since(applied).Seconds())

	base := "/api/v1/networks/" + name
	deployed := time.Now()
	var notary api.Contract
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(`{"name":"notary","package":"builtin/fabric-notary@1.0.0","channel":"`+pair+`"}`), "application/json", &notary); err != nil {
		t.Fatal(err)
	}
	t.Logf("notary committed on channel %s in %.1fs", pair, time.Since(deployed).Seconds())
	notariseOn(ctx, t, users["org1"], name, pair, "", "Org1MSP")
	expectChannelRefused(ctx, t, users["org3"], name, pair)

	// Refused: the shared channel, a channel the network lacks, an
	// organisation it lacks, one named twice, none.
	membersRefused(ctx, t, c, name, shared, `{"organizations":["org1"]}`, http.StatusUnprocessableEntity, "channel")
	membersRefused(ctx, t, c, name, "nochannel", `{"organizations":["org1"]}`, http.StatusNotFound, "")
	membersRefused(ctx, t, c, name, pair, `{"organizations":["org1","org2","org9"]}`, http.StatusUnprocessableEntity, "organizations[2]")
	membersRefused(ctx, t, c, name, pair, `{"organizations":["org1","org1"]}`, http.StatusUnprocessableEntity, "organizations[1]")
	membersRefused(ctx, t, c, name, pair, `{"organizations":[]}`, http.StatusUnprocessableEntity, "organizations")

	// org3 joins the pair: its peer joins the channel and runs the
	// contract, which org3 then calls.
	asked := time.Now()
	setMembers(ctx, t, c, name, pair, "org1", "org2", "org3")
	waitReconfigured(ctx, t, c, name, "adding org3")
	t.Logf("org3 a member of %s, its peer joined and caught up, %.1fs after the request", pair, time.Since(asked).Seconds())
	waitChannels(ctx, t, c, name, map[string]map[string]int64{"org3-peer-0": {pair: 4}})
	notariseOn(ctx, t, users["org3"], name, pair, "", "Org3MSP")

	// org2 is taken out, with the command line: its users are refused
	// the channel; org1 goes on, now endorsed with org3.
	asked = time.Now()
	cmd := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	if out := cmd.ok("channel", "set", name, pair, "--orgs", "org1,org3"); !strings.Contains(out, "channel pair: members org1, org3") {
		t.Errorf("chaindock channel set: %q", out)
	}
	waitReconfigured(ctx, t, c, name, "removing org2")
	t.Logf("org2 out of %s %.1fs after the request", pair, time.Since(asked).Seconds())
	expectChannelRefused(ctx, t, users["org2"], name, pair)
	notariseOn(ctx, t, users["org1"], name, pair, "", "Org1MSP")
	// The orderer delivers the channel's blocks to members only: org2's
	// peer stops at the block that took it out.
	var h1, h2 int64
	err := framework.Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		var h [3]int64
		for i, node := range []string{"org1-peer-0", "org2-peer-0", "org3-peer-0"} {
			s, ok := framework.NodeByName(n, node)
			if !ok {
				return false, "no node " + node
			}
			h[i] = channelHeight(t, s, pair)
		}
		h1, h2 = h[0], h[1]
		return h[2] == h1, fmt.Sprintf("%s at %d on org1's peer, %d on org3's", pair, h1, h[2])
	})
	if err != nil {
		t.Fatal(err)
	}
	if h2 >= h1 {
		t.Errorf("org2's peer at height %d on %s, as org1's (%d): still served the channel's blocks", h2, pair, h1)
	}
	t.Logf("%s at height %d on the members' peers, %d on org2's", pair, h1, h2)

	// org3 leaves the network: out of the pair first, which org1 keeps.
	asked = time.Now()
	scaleFabric(ctx, t, c, name, "org3", 0)
	n := waitFabric(ctx, t, c, name, 90*time.Second, "org3 gone", func(n *apis.Network) bool {
		_, ok := framework.NodeByName(n, "org3-peer-0")
		return !ok && n.Status.Message == ""
	})
	if got := n.Spec.Fabric.Channels[0].Organizations; len(got) != 1 || got[0] != "org1" {
		t.Errorf("members of %s after org3 left: %v, want org1", pair, got)
	}
	t.Logf("org3 left the network and channel %s %.1fs after the request", pair, time.Since(asked).Seconds())
	notariseOn(ctx, t, users["org1"], name, pair, "", "Org1MSP")

	deleteFabricNetwork(t, srv, dataDir, n)
}

// setMembers sets the member organisations of channel ch.
func setMembers(ctx context.Context, t *testing.T, c *client.Client, network, ch string, orgs ...string) {
	t.Helper()
	body, _ := json.Marshal(api.ChannelMembersRequest{Organizations: orgs})
	var out apis.Network
	if err := c.Do(ctx, http.MethodPut, "/api/v1/networks/"+network+"/channels/"+ch, body, "application/json", &out); err != nil {
		t.Fatalf("set the members of %s to %v: %v", ch, orgs, err)
	}
}

// membersRefused sets the members of channel ch with body and checks the
// server refuses it with status, naming field (when given) first.
func membersRefused(ctx context.Context, t *testing.T, c *client.Client, network, ch, body string, status int, field string) {
	t.Helper()
	err := c.Do(ctx, http.MethodPut, "/api/v1/networks/"+network+"/channels/"+ch, []byte(body), "application/json", nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != status || field != "" && (len(ce.Errors) == 0 || ce.Errors[0].Field != field) {
		t.Errorf("members of %s %s: %v; want HTTP %d naming %q", ch, body, err, status, field)
		return
	}
	t.Logf("members of %s %s refused: %v", ch, body, err)
}

// waitReconfigured waits for the network's Reconfigured event saying
// what, and for it to run with nothing under way.
func waitReconfigured(ctx context.Context, t *testing.T, c *client.Client, network, what string) {
	t.Helper()
	err := framework.Poll(ctx, 120*time.Second, 200*time.Millisecond, func() (bool, string) {
		n, err := c.GetNetwork(ctx, network)
		if err != nil {
			return false, err.Error()
		}
		var out api.EventList
		if err := getJSON(ctx, c, "/api/v1/networks/"+network+"/events?limit=5000", &out); err != nil {
			return false, err.Error()
		}
		for _, e := range out.Items {
			if e.Reason == "Reconfigured" && strings.Contains(e.Message, what) {
				return n.Status.Phase == apis.PhaseRunning && n.Status.Message == "", framework.Describe(n) + " " + n.Status.Message
			}
		}
		return false, framework.Describe(n) + " " + n.Status.Message
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// notariseOn notarises a new hash on channel ch, as organisation org
// (empty: the caller's), and reads it back there: the record names
// submitter. It returns the hash and the receipt.
func notariseOn(ctx context.Context, t *testing.T, c *client.Client, network, ch, org, submitter string) (string, map[string]any) {
	t.Helper()
	doc := sha256.Sum256([]byte(submitter + " on " + ch + ", " + time.Now().String()))
	hash := hex.EncodeToString(doc[:])
	call := map[string]any{"chaincode": "notary", "function": "Notarize", "args": []string{hash, "private"}, "channel": ch}
	if org != "" {
		call["organization"] = org
	}
	body, _ := json.Marshal(call)
	sent := time.Now()
	sub, err := submitTx(ctx, c, network, body)
	if err != nil {
		t.Fatal(err)
	}
	if sub.status != http.StatusOK || sub.receipt["committed"] != true || sub.receipt["channel"] != ch {
		t.Fatalf("%s notarising on %s: HTTP %d %v %+v; want 200, committed on %s", submitter, ch, sub.status, sub.receipt, sub.problem, ch)
	}
	t.Logf("%s notarised on %s in %.2fs: %v", submitter, ch, time.Since(sent).Seconds(), sub.receipt)
	var ans api.QueryAnswer
	q := url.Values{"path": {"/" + ch + "/notary/Get"}, "data": {fmt.Sprintf("[%q]", hash)}}
	if err := getJSON(ctx, c, "/api/v1/networks/"+network+"/query?"+q.Encode(), &ans); err != nil {
		t.Fatal(err)
	}
	var rec notaryRecord
	if ans.Code != 0 || json.Unmarshal(ans.Value, &rec) != nil || rec.Submitter != submitter || rec.Hash != hash {
		t.Fatalf("query on %s via %s: code %d %s %s; want the record of %s", ch, ans.Node, ans.Code, ans.Log, ans.Value, submitter)
	}
	return hash, sub.receipt
}

// expectChannelRefused checks that the caller, of no member organisation
// of channel ch, is refused a call and a query on it.
func expectChannelRefused(ctx context.Context, t *testing.T, c *client.Client, network, ch string) {
	t.Helper()
	sub, err := submitTx(ctx, c, network, fmt.Appendf(nil, `{"chaincode":"notary","function":"Notarize","args":["%x","x"],"channel":%q}`, sha256.Sum256([]byte(time.Now().String())), ch))
	if err != nil || sub.status != http.StatusForbidden || !strings.Contains(sub.problem.Detail, "channel "+ch) {
		t.Errorf("a call on %s: %v, HTTP %d %+v; want 403", ch, err, sub.status, sub.problem)
	}
	q := url.Values{"path": {"/" + ch + "/notary/Get"}, "data": {`["00"]`}}
	err = getJSON(ctx, c, "/api/v1/networks/"+network+"/query?"+q.Encode(), nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusForbidden {
		t.Errorf("a query on %s: %v; want 403", ch, err)
	}
}
