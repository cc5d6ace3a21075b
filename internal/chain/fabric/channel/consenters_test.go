package channel

import (
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

// applied is the configuration an orderer makes of cfg and a signed
// update: the write set's values and the Orderer group's policies
// replace the configuration's, and its sequence goes up by one.
func applied(t *testing.T, cfg *cb.Config, u *cb.ConfigUpdate) *cb.Config {
	t.Helper()
	out := wire(t, cfg, &cb.Config{})
	ord, wOrd := out.ChannelGroup.Groups[configtx.OrdererGroupKey], u.WriteSet.Groups[configtx.OrdererGroupKey]
	for k, v := range wOrd.GetValues() {
		ord.Values[k] = v
	}
	for k, p := range wOrd.GetPolicies() {
		ord.Policies[k] = p
	}
	out.Sequence++
	for name, g := range wOrd.GetGroups() {
		for k, v := range g.GetValues() {
			ord.Groups[name].Values[k] = v
		}
	}
	return out
}

func TestAddRemoveConsenter(t *testing.T) {
	n := newNetwork(t)
	cfg := genesisConfig(t, n.spec)
	host := "orderer3.example.com"
	tls, err := n.ord.cas.TLS.IssueTLS(pki.Request{Name: host, Hosts: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	c := Consenter{Host: host, Port: 7050, ClientTLSCert: tls.Cert, ServerTLSCert: tls.Cert}

	upd, err := AddConsenter("mychannel", cfg, "OrdererMSP", c)
	if err != nil {
		t.Fatal(err)
	}
	if got := upd.Policy.MSPIDs(); !slices.Equal(got, []string{"OrdererMSP"}) || upd.Policy.Need != 1 {
		t.Errorf("signers %v (need %d), want the orderer organisation's admin", got, upd.Policy.Need)
	}
	_, err = upd.Sign(n.org1.admin)
	wantErr(t, err, ErrSigner, "Org1MSP: not one of the organisations whose admins MAJORITY Admins counts (OrdererMSP)")
	env, err := upd.Sign(n.ord.admin)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeUpdate(t, env, n.cas())
	if !slices.Equal(d.signers, []string{"OrdererMSP"}) {
		t.Errorf("signed by %v", d.signers)
	}
	wOrd := d.update.WriteSet.Groups[configtx.OrdererGroupKey]
	if _, ok := wOrd.GetValues()["ConsensusType"]; !ok {
		t.Fatal("the update does not write the ConsensusType value")
	}
	after := applied(t, cfg, d.update)
	got, err := Consenters(after)
	if err != nil {
		t.Fatal(err)
	}
	want := []Address{{"orderer0.example.com", 7050}, {"orderer1.example.com", 7050}, {"orderer2.example.com", 7050}, {host, 7050}}
	if !slices.Equal(got, want) {
		t.Errorf("consenters after adding: %v, want %v", got, want)
	}
	tx := configtx.New(after)
	org, err := tx.Orderer().Organization("OrdererMSP").Configuration()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(org.OrdererEndpoints, host+":7050") || len(org.OrdererEndpoints) != 4 {
		t.Errorf("orderer endpoints %v, want the new one among four", org.OrdererEndpoints)
	}

	_, err = AddConsenter("mychannel", after, "OrdererMSP", c)
	wantErr(t, err, ErrNoChange, "is a consenter")
	_, err = AddConsenter("mychannel", cfg, "Org1MSP", c)
	wantErr(t, err, ErrUnknownOrg, "no orderer organisation Org1MSP")
	_, err = AddConsenter("mychannel", cfg, "OrdererMSP", Consenter{Host: host})
	if err == nil || !strings.Contains(err.Error(), "is not host:port") {
		t.Errorf("a consenter without a port: %v", err)
	}

	// And out again.
	upd, err = RemoveConsenter("mychannel", after, "OrdererMSP", Address{host, 7050})
	if err != nil {
		t.Fatal(err)
	}
	env, err = upd.Sign(n.ord.admin)
	if err != nil {
		t.Fatal(err)
	}
	d = decodeUpdate(t, env, n.cas())
	back := applied(t, after, d.update)
	if got, _ := Consenters(back); !slices.Equal(got, want[:3]) {
		t.Errorf("consenters after removing: %v, want %v", got, want[:3])
	}
	tx = configtx.New(back)
	org, err = tx.Orderer().Organization("OrdererMSP").Configuration()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(org.OrdererEndpoints, host+":7050") {
		t.Errorf("orderer endpoints %v still name the removed consenter", org.OrdererEndpoints)
	}
	_, err = RemoveConsenter("mychannel", back, "OrdererMSP", Address{host, 7050})
	wantErr(t, err, ErrNoChange, "is no consenter")

	one := n.spec
	one.Consenters = one.Consenters[:1]
	one.OrdererOrgs = []Organization{n.ord.org("orderer0.example.com:7050")}
	_, err = RemoveConsenter("mychannel", genesisConfig(t, one), "OrdererMSP", Address{"orderer0.example.com", 7050})
	if err == nil || !strings.Contains(err.Error(), "the channel's last consenter") {
		t.Errorf("removing the last consenter: %v", err)
	}
}
