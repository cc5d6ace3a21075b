package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/store"
)

// TestExplorerChannels: with ?channel= the explorer reads a channel of
// spec.fabric.channels, apart from the shared one, for a caller who may
// act for one of its members and for a platform administrator; another
// member of the network is refused, and a channel the network lacks is
// not found.
func TestExplorerChannels(t *testing.T) {
	tn := newTenants(t)
	ctx := t.Context()
	a1, a2, root := tn.callers["a1"], tn.callers["a2"], tn.callers["root"]
	tn.must(a1, "POST", "/api/v1/consortia", `{"name":"c1","owner":"org1"}`, 201)
	var inv api.Invitation
	tn.decode(tn.must(a1, "POST", "/api/v1/consortia/c1/invitations", `{"org":"org2"}`, 201), &inv)
	tn.must(a2, "POST", "/api/v1/invitations/"+inv.ID+"/accept", "", 200)
	n := &apis.Network{
		APIVersion: "chaindock/v1", Kind: apis.KindNetwork,
		Metadata: apis.ObjectMeta{Name: "fab", Owner: "org1"},
		Spec: apis.NetworkSpec{Chain: apis.ChainFabric, Runtime: "process", Consortium: "c1",
			Organizations: []apis.OrganizationNodes{{Name: "org1", Peers: 1}, {Name: "org2", Peers: 1}},
			Fabric: &apis.FabricSpec{Orderers: 1, Channel: "everyone",
				Channels: []apis.FabricChannel{{Name: "solo", Organizations: []string{"org2"}}}}},
	}
	tn.storeFabric(n)
	// Two blocks on the shared channel, three on solo, each with one
	// transaction whose hash names its channel.
	hash := func(ch string, h int64) string { return fmt.Sprintf("%X%056X", fmt.Sprintf("%-4s", ch)[:4], h) }
	for ch, top := range map[string]int64{"": 2, "solo": 3} {
		key := store.LedgerKey(n.Metadata.UID, ch)
		var blocks []store.Block
		for h := int64(1); h <= top; h++ {
			blocks = append(blocks, store.Block{NetworkUID: key, Height: h, Hash: hash("blk"+ch, h), Time: time.Unix(h, 0), NumTxs: 1,
				Txs: []store.Tx{{Hash: hash("tx"+ch, h), Index: 0, Code: uint32(h), Type: "ENDORSER_TRANSACTION/notary"}}})
		}
		if err := tn.store.PutBlocks(ctx, blocks); err != nil {
			t.Fatal(err)
		}
	}
	base := "/api/v1/networks/fab"
	var blocks api.BlockList
	for _, c := range []struct {
		who   string
		query string
		want  int64
	}{{"a2", "?channel=solo", 3}, {"root", "?channel=solo", 3}, {"a1", "", 2}, {"a2", "", 2}, {"a1", "?channel=everyone", 2}} {
		tn.decode(tn.must(tn.callers[c.who], "GET", base+"/blocks"+c.query, "", 200), &blocks)
		if int64(len(blocks.Items)) != c.want || blocks.Items[0].Height != c.want {
			t.Fatalf("blocks%s for %s: %+v; want %d", c.query, c.who, blocks.Items, c.want)
		}
	}
	var txs api.TxList
	tn.decode(tn.must(a2, "GET", base+"/transactions?channel=solo", "", 200), &txs)
	if len(txs.Items) != 3 || txs.Items[0].Hash != hash("txsolo", 3) || txs.Items[0].Code != 3 {
		t.Fatalf("transactions of solo: %+v", txs.Items)
	}
	var tx api.Tx
	tn.decode(tn.must(a2, "GET", base+"/transactions/"+hash("txsolo", 2)+"?channel=solo", "", 200), &tx)
	if tx.Height != 2 || tx.Code != 2 {
		t.Fatalf("transaction 2 of solo: %+v", tx)
	}
	// A channel's transaction is not the shared channel's, nor the
	// other way round.
	tn.must(a2, "GET", base+"/transactions/"+hash("txsolo", 2), "", 404)
	tn.must(a2, "GET", base+"/transactions/"+hash("tx", 2)+"?channel=solo", "", 404)
	var found api.SearchResult
	tn.decode(tn.must(a2, "GET", base+"/search?channel=solo&q="+hash("blksolo", 3), "", 200), &found)
	if found.Kind != "block" || found.Block.Height != 3 {
		t.Fatalf("search of solo's block 3: %+v", found)
	}
	code, b := tn.call(a2, "GET", base+"/search?q="+hash("blksolo", 3), "")
	if code != 404 {
		t.Fatalf("search of solo's block on the shared channel: %d %s", code, b)
	}
	var blk struct {
		api.Block
		Txs []api.Tx `json:"transactions"`
	}
	tn.decode(tn.must(root, "GET", base+"/blocks/1?channel=solo", "", 200), &blk)
	if blk.Hash != hash("blksolo", 1) || len(blk.Txs) != 1 || blk.Txs[0].Hash != hash("txsolo", 1) {
		t.Fatalf("block 1 of solo: %+v", blk)
	}

	// org1 is a member of the network, not of solo.
	for _, p := range []string{"/blocks", "/blocks/1", "/transactions", "/transactions/" + hash("txsolo", 1), "/search?q=1", "/explorer"} {
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		code, b := tn.call(a1, "GET", base+p+sep+"channel=solo", "")
		if code != 403 || !strings.Contains(string(b), "no member organisation of channel solo") {
			t.Errorf("org1 reading %s of solo: %d %s; want 403", p, code, b)
		}
		code, b = tn.call(a2, "GET", base+p+sep+"channel=nowhere", "")
		if code != 404 || !strings.Contains(string(b), `no channel \"nowhere\"`) {
			t.Errorf("%s of channel nowhere: %d %s; want 404 naming it", p, code, b)
		}
	}
	tn.must(a1, "POST", base+"/explorer/reindex?channel=solo", "", 403)
	// org1 asked into solo: until the change is done, and the plan has
	// it, org1 still reads nothing of solo.
	stored, err := tn.store.Get(ctx, apis.KindNetwork, "fab")
	if err != nil {
		t.Fatal(err)
	}
	asked, err := store.ObjectToNetwork(stored)
	if err != nil {
		t.Fatal(err)
	}
	asked.Spec.Fabric.Channels[0].Organizations = []string{"org2", "org1"}
	if stored, err = store.NetworkToObject(asked); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.store.Update(ctx, stored); err != nil {
		t.Fatal(err)
	}
	tn.must(a1, "GET", base+"/blocks?channel=solo", "", 403)

	// Reindexing solo forgets solo's index alone.
	var st api.ExplorerStatus
	tn.decode(tn.must(root, "POST", base+"/explorer/reindex?channel=solo", "", 202), &st)
	if st.Channel != "solo" {
		t.Fatalf("reindex of solo: %+v", st)
	}
	tn.decode(tn.must(a2, "GET", base+"/blocks?channel=solo", "", 200), &blocks)
	if len(blocks.Items) != 0 {
		t.Fatalf("solo's blocks after its reindex: %+v", blocks.Items)
	}
	tn.decode(tn.must(a2, "GET", base+"/blocks", "", 200), &blocks)
	if len(blocks.Items) != 2 {
		t.Fatalf("the shared channel's blocks after solo's reindex: %+v", blocks.Items)
	}
}
