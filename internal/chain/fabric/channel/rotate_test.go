package channel

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// renewed is consenter c with its certificates renewed by the test
// network's orderer CAs, for the same keys.
func (n *network) renewed(t *testing.T, c Consenter) Consenter {
	t.Helper()
	now := time.Now().Add(time.Hour)
	tls, err := n.ord.cas.TLS.Renew(c.ClientTLSCert, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	c.ClientTLSCert, c.ServerTLSCert = tls, tls
	if c.Identity != nil {
		if c.Identity, err = n.ord.cas.MSP.Renew(c.Identity, 0, now); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// signedApplied signs u, an update the orderer organisation's admin
// alone signs, as that admin, and applies it; it also returns the values
// and policies the update writes of the Orderer group.
func (n *network) signedApplied(t *testing.T, cfg *cb.Config, u *Update) (*cb.Config, []string) {
	t.Helper()
	if got := u.Policy.MSPIDs(); !slices.Equal(got, []string{"OrdererMSP"}) || u.Policy.Need != 1 {
		t.Errorf("signers %v (need %d), want the orderer organisation's admin", got, u.Policy.Need)
	}
	env, err := u.Sign(n.ord.admin)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeUpdate(t, env, n.cas())
	wOrd := d.update.WriteSet.Groups[configtx.OrdererGroupKey]
	var written []string
	for k := range wOrd.GetValues() {
		written = append(written, "value "+k)
	}
	for k := range wOrd.GetPolicies() {
		written = append(written, "policy "+k)
	}
	slices.Sort(written)
	return applied(t, cfg, d.update), written
}

func TestRotateRaftConsenter(t *testing.T) {
	n := newNetwork(t)
	cfg := genesisConfig(t, n.spec)
	old := n.spec.Consenters[1]
	c := n.renewed(t, old)
	u, err := RotateConsenter("mychannel", cfg, "OrdererMSP", c)
	if err != nil {
		t.Fatal(err)
	}
	after, written := n.signedApplied(t, cfg, u)
	if want := []string{"value ConsensusType"}; !slices.Equal(written, want) {
		t.Errorf("the update writes %v of the Orderer group, want %v", written, want)
	}
	before, _ := Consenters(cfg)
	if got, _ := Consenters(after); !slices.Equal(got, before) {
		t.Errorf("consenters %v after a rotation, were %v", got, before)
	}
	for i, have := range n.spec.Consenters {
		got, id, err := ConsenterCerts(after, Address{have.Host, have.Port})
		if err != nil {
			t.Fatal(err)
		}
		want := have.ClientTLSCert
		if i == 1 {
			want = c.ClientTLSCert
		}
		if !SameCert(got, want) || id != nil {
			t.Errorf("consenter %d: TLS certificate serial %v, want %v", i, got.SerialNumber, want.SerialNumber)
		}
	}
	raft, err := raftConfig(after)
	if err != nil {
		t.Fatal(err)
	}
	if !SameCert(raft.EtcdRaft.Consenters[1].ServerTLSCert, c.ServerTLSCert) {
		t.Error("the server TLS certificate was not rotated")
	}
	was, _ := raftConfig(cfg)
	if raft.EtcdRaft.Options != was.EtcdRaft.Options || raft.State != was.State {
		t.Errorf("options %+v, state %s after a rotation; were %+v, %s", raft.EtcdRaft.Options, raft.State, was.EtcdRaft.Options, was.State)
	}

	if _, err := RotateConsenter("mychannel", after, "OrdererMSP", c); !errors.Is(err, ErrNoChange) {
		t.Errorf("rotating to the certificates it has: %v", err)
	}
	gone := c
	gone.Port = 7051
	_, err = RotateConsenter("mychannel", cfg, "OrdererMSP", gone)
	wantErr(t, err, ErrNoChange, "is no consenter")
	_, err = RotateConsenter("mychannel", cfg, "Org1MSP", c)
	wantErr(t, err, ErrUnknownOrg, "no orderer organisation Org1MSP")
	if _, _, err := ConsenterCerts(cfg, Address{"nowhere", 1}); err == nil {
		t.Error("certificates of no consenter")
	}
}

func TestRotateBFTConsenter(t *testing.T) {
	n := bftNetwork(t)
	cfg := genesisConfig(t, n.spec)
	genesis := checkBFTConfig(t, cfg)
	c := n.renewed(t, n.spec.Consenters[2])
	u, err := RotateConsenter("mychannel", cfg, "OrdererMSP", c)
	if err != nil {
		t.Fatal(err)
	}
	after, written := n.signedApplied(t, cfg, u)
	if want := []string{"policy BlockValidation", "value Orderers"}; !slices.Equal(written, want) {
		t.Errorf("the update writes %v of the Orderer group, want %v", written, want)
	}
	mapping := checkBFTConfig(t, after)
	for i, m := range mapping {
		if i != 2 {
			if !proto.Equal(m, genesis[i]) {
				t.Errorf("consenter %d changed", i)
			}
			continue
		}
		if m.Id != genesis[i].Id || m.Host != genesis[i].Host || m.Port != genesis[i].Port || m.MspId != genesis[i].MspId {
			t.Errorf("the rotated consenter is mapped as %d %s:%d %s, was %d %s:%d %s", m.Id, m.Host, m.Port, m.MspId, genesis[i].Id, genesis[i].Host, genesis[i].Port, genesis[i].MspId)
		}
	}
	tlsCert, id, err := ConsenterCerts(after, Address{c.Host, c.Port})
	if err != nil {
		t.Fatal(err)
	}
	if !SameCert(tlsCert, c.ClientTLSCert) || !SameCert(id, c.Identity) {
		t.Error("the mapping does not have the renewed certificates")
	}
	noID := c
	noID.Identity = nil
	_, err = RotateConsenter("mychannel", cfg, "OrdererMSP", noID)
	wantErr(t, err, ErrConsenter, "no enrolment certificate")
}
