package e2e

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
)

// TestFabricAddChannel adds a channel to a running network of two
// organisations that was created with the shared channel alone: the
// orderer and both peers join channel late, each organisation sets its
// anchor peer there, and the network runs again; the notarisation
// template is then deployed on late, a notarisation committed there
// through the gateway, and late's explorer lists it. The channel is added
// with the command line; requests that are not valid are refused first.
func TestFabricAddChannel(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "38800-38899", "--probe-interval", "500ms")
	c := srv.Client

	const name, shared, late = "addch", "everyone", "late"
	applied := time.Now()
	if _, err := c.CreateNetwork(ctx, withFabricVersion(t, []byte(`apiVersion: chaindock/v1
kind: Network
metadata: {name: `+name+`}
spec:
  chain: fabric
  runtime: process
  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric:
    orderers: 1
    templates: true
    channel: `+shared+`
`))); err != nil {
		t.Fatal(err)
	}
	waitChannels(ctx, t, c, name, map[string]map[string]int64{
		"orderer-0":   {shared: 3, late: 0},
		"org1-peer-0": {shared: 3, late: 0},
		"org2-peer-0": {shared: 3, late: 0},
	})
	t.Logf("network running on channel %s alone, %.1fs after apply", shared, time.Since(applied).Seconds())

	// Refused: the shared channel's name, a name that is no channel name,
	// an organisation the network lacks, one named twice, none.
	base := "/api/v1/networks/" + name
	addRefused := func(body string, status int, field string) {
		t.Helper()
		err := c.Do(ctx, http.MethodPost, base+"/channels", []byte(body), "application/json", nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != status || len(ce.Errors) == 0 || ce.Errors[0].Field != field {
			t.Errorf("add channel %s: %v; want HTTP %d naming %q", body, err, status, field)
			return
		}
		t.Logf("add channel %s refused: %v", body, err)
	}
	addRefused(`{"name":"`+shared+`","organizations":["org1"]}`, http.StatusConflict, "name")
	addRefused(`{"name":"Late!","organizations":["org1"]}`, http.StatusUnprocessableEntity, "name")
	addRefused(`{"name":"late","organizations":["org1","org9"]}`, http.StatusUnprocessableEntity, "organizations[1]")
	addRefused(`{"name":"late","organizations":["org2","org2"]}`, http.StatusUnprocessableEntity, "organizations[1]")
	addRefused(`{"name":"late","organizations":[]}`, http.StatusUnprocessableEntity, "organizations")

	asked := time.Now()
	cmd := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	if out := cmd.ok("channel", "add", name, late, "--orgs", "org1,org2"); !strings.Contains(out, "channel late added: members org1, org2") {
		t.Errorf("chaindock channel add: %q", out)
	}
	addRefused(`{"name":"late","organizations":["org1"]}`, http.StatusConflict, "name")
	waitReconfigured(ctx, t, c, name, "channel late made")
	t.Logf("channel %s made, the orderer and both peers joined, anchors set, %.1fs after the request", late, time.Since(asked).Seconds())
	// The genesis block and an anchor update of each organisation.
	n := waitChannels(ctx, t, c, name, map[string]map[string]int64{
		"orderer-0":   {shared: 3, late: 3},
		"org1-peer-0": {shared: 3, late: 3},
		"org2-peer-0": {shared: 3, late: 3},
	})
	if got := n.Spec.Fabric.Channels; len(got) != 1 || got[0].Name != late || strings.Join(got[0].Organizations, ",") != "org1,org2" {
		t.Errorf("spec.fabric.channels: %+v; want late of org1 and org2", got)
	}

	deployed := time.Now()
	var notary api.Contract
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(`{"name":"notary","package":"builtin/fabric-notary@1.0.0","channel":"`+late+`"}`), "application/json", &notary); err != nil {
		t.Fatal(err)
	}
	if notary.Channel != late {
		t.Errorf("contract notary on channel %q, want %s", notary.Channel, late)
	}
	t.Logf("notary committed on channel %s in %.1fs", late, time.Since(deployed).Seconds())

	_, receipt := notariseOn(ctx, t, c, name, late, "org2", "Org2MSP")

	// late's explorer lists the transaction; the shared channel's has it
	// not.
	start := time.Now()
	txHash, _ := receipt["hash"].(string)
	var tx api.Tx
	if err := pollJSON(t, c, base+"/transactions/"+txHash+"?channel="+late, &tx); err != nil {
		t.Fatalf("explorer of %s: transaction %s: %v", late, txHash, err)
	}
	height, _ := receipt["height"].(float64)
	if tx.Code != 0 || tx.Type != "ENDORSER_TRANSACTION/notary" || !strings.EqualFold(tx.Hash, txHash) || tx.Height != int64(height) {
		t.Fatalf("explorer of %s: %+v; want the valid notary transaction %s at height %v", late, tx, txHash, height)
	}
	t.Logf("explorer of %s: transaction in block %d, indexed %.2fs after the receipt", late, tx.Height, time.Since(start).Seconds())
	var txs api.TxList
	if err := getJSON(ctx, c, base+"/transactions?channel="+late, &txs); err != nil {
		t.Fatal(err)
	}
	if len(txs.Items) == 0 || !strings.EqualFold(txs.Items[0].Hash, txHash) {
		t.Errorf("transactions of %s: %+v; want %s newest", late, txs.Items, txHash)
	}
	var st api.ExplorerStatus
	if err := getJSON(ctx, c, base+"/explorer?channel="+late, &st); err != nil || st.Channel != late || st.IndexedHeight < tx.Height {
		t.Errorf("explorer status of %s: %+v %v", late, st, err)
	}
	err := getJSON(ctx, c, base+"/transactions/"+txHash, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound {
		t.Errorf("the shared channel's explorer: transaction %s: %v; want 404", txHash, err)
	}

	n, err = c.GetNetwork(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if n.Status.Phase != apis.PhaseRunning {
		t.Errorf("network %s after all: %s", name, n.Status.Phase)
	}
	deleteFabricNetwork(t, srv, dataDir, n)
}
