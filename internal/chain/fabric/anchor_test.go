package fabric

import (
	"crypto/ecdsa"
	"slices"
	"testing"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

func TestAnchorsOf(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	var names []string
	for _, a := range anchorsOf(plan, "org1") {
		names = append(names, a.Name)
	}
	if want := []string{"org1-peer-0", "org1-peer-1"}; !slices.Equal(names, want) {
		t.Fatalf("anchors of org1 = %v, want %v", names, want)
	}
	if a := anchorsOf(plan, "orderer"); len(a) != 0 {
		t.Errorf("the orderer organisation has anchors %v, want none", a)
	}
	addr, err := anchorAddress(planned(t, plan, "org1-peer-1"))
	if err != nil {
		t.Fatal(err)
	}
	if addr.Host != "127.0.0.1" || addr.Port < 40000 {
		t.Errorf("anchor address of org1-peer-1 = %v, want 127.0.0.1 and its listen port", addr)
	}
}

// TestSetsAnchors: one node makes an organisation's anchor update, the
// first anchor that joins now, so that two do not race.
func TestSetsAnchors(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	set := func(joining ...string) *chain.Plan {
		p := *plan
		p.Nodes = slices.Clone(plan.Nodes)
		for i := range p.Nodes {
			p.Nodes[i].Joining = slices.Contains(joining, p.Nodes[i].Name)
		}
		return &p
	}
	for _, tc := range []struct {
		name    string
		joining []string
		node    string
		want    bool
	}{
		{"new network: the first peer sets them", []string{"org1-peer-0", "org1-peer-1"}, "org1-peer-0", true},
		{"new network: not the second", []string{"org1-peer-0", "org1-peer-1"}, "org1-peer-1", false},
		{"the first joined: the second finds them set", []string{"org1-peer-1"}, "org1-peer-1", true},
		{"a second peer added to an organisation of one", []string{"org2-peer-1"}, "org2-peer-1", true},
		{"an orderer", []string{"orderer-0"}, "orderer-0", false},
	} {
		p := set(tc.joining...)
		if got := setsAnchors(p, planned(t, p, tc.node)); got != tc.want {
			t.Errorf("%s: setsAnchors(%s) = %v, want %v", tc.name, tc.node, got, tc.want)
		}
	}
	// A third peer of an organisation is no anchor.
	p := set("org1-peer-2")
	third := planned(t, p, "org1-peer-0")
	third.Name, third.Joining = "org1-peer-2", true
	p.Nodes = append(p.Nodes, third)
	if setsAnchors(p, third) {
		t.Error("a third peer sets anchors, want only the first two be anchors")
	}
}

// TestAnchorUpdate makes the update from the genesis block's
// configuration, checks that an orderer would see the organisation's
// admin sign it, and that anchorsSet sees it once applied.
func TestAnchorUpdate(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	var gb cb.Block
	if err := proto.Unmarshal(plan.Artifact(BlockPath(plan.ChainID)), &gb); err != nil {
		t.Fatal(err)
	}
	cfg, err := channel.ConfigFromBlock(&gb)
	if err != nil {
		t.Fatal(err)
	}
	var want []channel.Address
	for _, a := range anchorsOf(plan, "org2") {
		addr, err := anchorAddress(a)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, addr)
	}
	if ok, err := anchorsSet(cfg, MSPID("org2"), want); ok || err != nil {
		t.Fatalf("genesis has org2's anchors: %v, %v; want none set", ok, err)
	}
	if _, err := anchorsSet(cfg, MSPID("org9"), want); err == nil {
		t.Error("anchorsSet of an organisation the channel lacks: no error")
	}
	u, err := channel.SetAnchorPeers(plan.ChainID, cfg, MSPID("org2"), want)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Policy.MSPIDs(); !slices.Equal(got, []string{MSPID("org2")}) {
		t.Errorf("the update needs the admins of %v, want org2's alone", got)
	}
	a, err := loadAdmin(plan, "org2")
	if err != nil {
		t.Fatal(err)
	}
	signer := channel.Signer{MSPID: MSPID("org2"), Cert: a.signer.Certificate, Key: a.signer.PrivateKey.(*ecdsa.PrivateKey)}
	if _, err := u.Sign(signer); err != nil {
		t.Fatalf("org2's admin signs its anchor update: %v", err)
	}
	o1, err := loadAdmin(plan, "org1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Sign(channel.Signer{MSPID: MSPID("org1"), Cert: o1.signer.Certificate, Key: o1.signer.PrivateKey.(*ecdsa.PrivateKey)}); err == nil {
		t.Error("org1's admin signs org2's anchor update alone: no error")
	}

	// The configuration as the update leaves it, anchors in another order.
	tx := configtx.New(cfg)
	org := tx.Application().Organization(MSPID("org2"))
	for _, w := range slices.Backward(want) {
		if err := org.AddAnchorPeer(configtx.Address{Host: w.Host, Port: w.Port}); err != nil {
			t.Fatal(err)
		}
	}
	updated := tx.UpdatedConfig()
	if ok, err := anchorsSet(updated, MSPID("org2"), want); !ok || err != nil {
		t.Errorf("after the update anchorsSet = %v, %v; want true", ok, err)
	}
	if ok, _ := anchorsSet(updated, MSPID("org2"), want[:1]); ok {
		t.Error("anchorsSet with one of the two anchors = true, want false")
	}
}
