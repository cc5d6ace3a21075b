package channel

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

// bftConsenter issues orderer host of the test network's orderer
// organisation its enrolment and TLS certificates.
func (n *network) bftConsenter(t *testing.T, host string) Consenter {
	t.Helper()
	tls, err := n.ord.cas.TLS.IssueTLS(pki.Request{Name: host, Hosts: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := n.ord.cas.MSP.IssueMSP(pki.Request{Name: host, Role: pki.RoleOrderer})
	if err != nil {
		t.Fatal(err)
	}
	return Consenter{Host: host, Port: 7050, MSPID: n.ord.mspID, Identity: id.Cert, ClientTLSCert: tls.Cert, ServerTLSCert: tls.Cert}
}

// checkBFTConfig checks what an orderer checks of a BFT configuration
// (Fabric's smartbft ConfigBlockValidator): a BlockValidation policy of
// exactly a quorum of the mapped consenters, f = (n-1)/3 and quorum
// ceil((n+f+1)/2), each by its enrolment certificate in the mapping's
// order; and ids no two consenters share.
func checkBFTConfig(t *testing.T, cfg *cb.Config) []*cb.Consenter {
	t.Helper()
	og := cfg.ChannelGroup.Groups[configtx.OrdererGroupKey]
	o := &cb.Orderers{}
	unmarshal(t, og.Values[orderersKey].Value, o)
	n := len(o.ConsenterMapping)
	f := (n - 1) / 3
	quorum := int(math.Ceil(float64(n+f+1) / 2))
	bv := og.Policies[configtx.BlockValidationPolicyKey].GetPolicy()
	if cb.Policy_PolicyType(bv.GetType()) != cb.Policy_SIGNATURE {
		t.Fatalf("BlockValidation policy of type %v, want a signature policy", bv.GetType())
	}
	env := &cb.SignaturePolicyEnvelope{}
	unmarshal(t, bv.Value, env)
	rule := env.Rule.GetNOutOf()
	if int(rule.GetN()) != quorum || len(rule.GetRules()) != n || len(env.Identities) != n {
		t.Fatalf("BlockValidation: %d of %d rules over %d identities, want %d of %d", rule.GetN(), len(rule.GetRules()), len(env.Identities), quorum, n)
	}
	ids := map[uint32]bool{}
	for i, c := range o.ConsenterMapping {
		if ids[c.Id] {
			t.Errorf("id %d mapped twice", c.Id)
		}
		ids[c.Id] = true
		if got := rule.Rules[i].GetSignedBy(); got != int32(i) {
			t.Errorf("rule %d signed by %d", i, got)
		}
		sid := &mb.SerializedIdentity{}
		unmarshal(t, env.Identities[i].Principal, sid)
		if env.Identities[i].PrincipalClassification != mb.MSPPrincipal_IDENTITY || sid.Mspid != c.MspId || string(sid.IdBytes) != string(c.Identity) {
			t.Errorf("identity %d is not consenter %d's enrolment certificate", i, c.Id)
		}
	}
	return o.ConsenterMapping
}

// TestAddRemoveBFTConsenter grows a BFT channel of four consenters to
// five and six and back, each change one signed update decoded as an
// orderer reads it.
func TestAddRemoveBFTConsenter(t *testing.T) {
	n := bftNetwork(t)
	cfg := genesisConfig(t, n.spec)
	genesis := checkBFTConfig(t, cfg)

	add := func(t *testing.T, cfg *cb.Config, c Consenter) *cb.Config {
		t.Helper()
		upd, err := AddConsenter("mychannel", cfg, "OrdererMSP", c)
		if err != nil {
			t.Fatal(err)
		}
		after, written := n.signedApplied(t, cfg, upd)
		// The consensus type and options stay; the consenters and the
		// quorum change together.
		if want := []string{"policy BlockValidation", "value Orderers"}; !slices.Equal(written, want) {
			t.Errorf("the update writes %v of the Orderer group, want %v", written, want)
		}
		return after
	}

	c4 := n.bftConsenter(t, "orderer4.example.com")
	five := add(t, cfg, c4)
	mapping := checkBFTConfig(t, five)
	if len(mapping) != 5 {
		t.Fatalf("%d consenters after adding one to four", len(mapping))
	}
	for i, c := range genesis {
		if !proto.Equal(mapping[i], c) {
			t.Errorf("consenter %d changed: %v, was %v", i, mapping[i], c)
		}
	}
	// The new consenter is mapped as genesis maps one, but for its id.
	spec5 := n.spec
	spec5.Consenters = append(slices.Clone(n.spec.Consenters), c4)
	want := checkBFTConfig(t, genesisConfig(t, spec5))[4]
	got := proto.Clone(mapping[4]).(*cb.Consenter)
	if got.Id <= 4 {
		t.Errorf("new consenter's id %d is not above the genesis ones", got.Id)
	}
	got.Id = want.Id
	if !proto.Equal(got, want) {
		t.Errorf("new consenter mapped as %v, want %v", got, want)
	}
	ends := func(cfg *cb.Config) []string {
		tx := configtx.New(cfg)
		org, err := tx.Orderer().Organization("OrdererMSP").Configuration()
		if err != nil {
			t.Fatal(err)
		}
		return org.OrdererEndpoints
	}
	if e := ends(five); !slices.Contains(e, "orderer4.example.com:7050") || len(e) != 5 {
		t.Errorf("orderer endpoints %v, want the new one among five", e)
	}
	addrs, err := Consenters(five)
	if err != nil || len(addrs) != 5 || addrs[4] != (Address{"orderer4.example.com", 7050}) {
		t.Errorf("Consenters: %v, %v", addrs, err)
	}

	_, err = AddConsenter("mychannel", five, "OrdererMSP", c4)
	wantErr(t, err, ErrNoChange, "is a consenter")
	stranger := c4
	stranger.Host = "orderer9.example.com"
	stranger.Identity = n.org1.admin.Cert
	_, err = AddConsenter("mychannel", five, "OrdererMSP", stranger)
	wantErr(t, err, ErrConsenter, "not issued by the membership CA of OrdererMSP")
	stranger.Identity = nil
	_, err = AddConsenter("mychannel", five, "OrdererMSP", stranger)
	wantErr(t, err, ErrConsenter, "no enrolment certificate")

	// Out again, then another in: its id is neither a present nor a
	// past one.
	remove := func(t *testing.T, cfg *cb.Config, addr Address) *cb.Config {
		t.Helper()
		upd, err := RemoveConsenter("mychannel", cfg, "OrdererMSP", addr)
		if err != nil {
			t.Fatal(err)
		}
		env, err := upd.Sign(n.ord.admin)
		if err != nil {
			t.Fatal(err)
		}
		return applied(t, cfg, decodeUpdate(t, env, n.cas()).update)
	}
	four := remove(t, five, Address{"orderer4.example.com", 7050})
	if m := checkBFTConfig(t, four); len(m) != 4 || !proto.Equal(m[3], genesis[3]) {
		t.Errorf("after removing the fifth: %v", m)
	}
	if e := ends(four); slices.Contains(e, "orderer4.example.com:7050") {
		t.Errorf("orderer endpoints %v still name the removed consenter", e)
	}
	_, err = RemoveConsenter("mychannel", four, "OrdererMSP", Address{"orderer4.example.com", 7050})
	wantErr(t, err, ErrNoChange, "is no consenter")

	used := map[uint32]bool{}
	for _, c := range mapping {
		used[c.Id] = true
	}
	cfg = four
	for i := range 3 {
		cfg = add(t, cfg, n.bftConsenter(t, fmt.Sprintf("new%d.example.com", i)))
		m := checkBFTConfig(t, cfg)
		last := m[len(m)-1]
		if used[last.Id] {
			t.Errorf("id %d given again", last.Id)
		}
		used[last.Id] = true
	}
	if m := checkBFTConfig(t, cfg); len(m) != 7 {
		t.Errorf("%d consenters, want 7", len(m))
	}
	// Down to one, the first genesis consenter; not below.
	for _, c := range checkBFTConfig(t, cfg)[1:] {
		cfg = remove(t, cfg, Address{c.Host, int(c.Port)})
	}
	if m := checkBFTConfig(t, cfg); len(m) != 1 || !proto.Equal(m[0], genesis[0]) {
		t.Errorf("left %v, want the first consenter", m)
	}
	_, err = RemoveConsenter("mychannel", cfg, "OrdererMSP", Address{genesis[0].Host, int(genesis[0].Port)})
	if err == nil {
		t.Error("the last consenter removed")
	}
}
