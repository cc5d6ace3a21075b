package channel

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

func genesisConfig(t *testing.T, s Spec) *cb.Config {
	t.Helper()
	block, err := GenesisBlock(s)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromBlock(wire(t, block, &cb.Block{}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// decoded is a CONFIG_UPDATE envelope as an orderer reads it.
type decoded struct {
	update  *cb.ConfigUpdate
	signers []string
}

// decodeUpdate reads env as an orderer does and checks every signature:
// the envelope's by the submitter, the update's by each admin, whose
// certificate must chain to its organisation's CA.
func decodeUpdate(t *testing.T, env *cb.Envelope, cas map[string]*x509.Certificate) decoded {
	t.Helper()
	env = wire(t, env, &cb.Envelope{})
	payload := &cb.Payload{}
	unmarshal(t, env.Payload, payload)
	chdr := &cb.ChannelHeader{}
	unmarshal(t, payload.Header.ChannelHeader, chdr)
	if cb.HeaderType(chdr.Type) != cb.HeaderType_CONFIG_UPDATE || chdr.ChannelId != "mychannel" {
		t.Fatalf("channel header: type %s, channel %q; want CONFIG_UPDATE, mychannel", cb.HeaderType(chdr.Type), chdr.ChannelId)
	}
	shdr := &cb.SignatureHeader{}
	unmarshal(t, payload.Header.SignatureHeader, shdr)
	submitter, cert, err := Creator(shdr.Creator)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyECDSA(cert, env.Payload, env.Signature); err != nil {
		t.Errorf("envelope signature of %s: %v", submitter.Mspid, err)
	}
	cue := &cb.ConfigUpdateEnvelope{}
	unmarshal(t, payload.Data, cue)
	cu := &cb.ConfigUpdate{}
	unmarshal(t, cue.ConfigUpdate, cu)
	if cu.ChannelId != "mychannel" {
		t.Errorf("config update for channel %q", cu.ChannelId)
	}
	var d decoded
	d.update = cu
	for i, sig := range cue.Signatures {
		hdr := &cb.SignatureHeader{}
		unmarshal(t, sig.SignatureHeader, hdr)
		id := &mb.SerializedIdentity{}
		unmarshal(t, hdr.Creator, id)
		_, cert, err := Creator(hdr.Creator)
		if err != nil {
			t.Fatal(err)
		}
		if len(hdr.Nonce) == 0 {
			t.Errorf("signature %d: no nonce", i)
		}
		roots := x509.NewCertPool()
		roots.AddCert(cas[id.Mspid])
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("signature %d: the certificate of %s does not chain to its CA: %v", i, id.Mspid, err)
		}
		if !slices.Equal(cert.Subject.OrganizationalUnit, []string{"admin"}) {
			t.Errorf("signature %d: signer OU %q, want admin", i, cert.Subject.OrganizationalUnit)
		}
		if err := VerifySignature(cue.ConfigUpdate, sig, cert); err != nil {
			t.Errorf("signature %d by %s: %v", i, id.Mspid, err)
		}
		d.signers = append(d.signers, id.Mspid)
	}
	return d
}

func (n *network) cas(more ...*testOrg) map[string]*x509.Certificate {
	m := map[string]*x509.Certificate{}
	for _, o := range append([]*testOrg{n.org1, n.org2, n.ord}, more...) {
		m[o.mspID] = o.cas.MSP.Cert
	}
	return m
}

func wantErr(t *testing.T, err, is error, says string) {
	t.Helper()
	if !errors.Is(err, is) {
		t.Fatalf("error %v, want %v", err, is)
	}
	if !strings.Contains(err.Error(), says) {
		t.Errorf("error %q does not say %q", err, says)
	}
}

func groupKeys(g *cb.ConfigGroup) []string { return sortedKeys(g.GetGroups()) }

func TestSetAnchorPeers(t *testing.T) {
	n := newNetwork(t)
	cfg := genesisConfig(t, n.spec)
	peers := []Address{{Host: "peer0.org1.example.com", Port: 7051}, {Host: "peer1.org1.example.com", Port: 8051}}
	upd, err := SetAnchorPeers("mychannel", cfg, "Org1MSP", peers)
	if err != nil {
		t.Fatal(err)
	}
	if upd.Policy.Rule != "Org1MSP Admins" || upd.Policy.Need != 1 || !slices.Equal(upd.Policy.MSPIDs(), []string{"Org1MSP"}) {
		t.Errorf("policy %+v, want one admin of Org1MSP", upd.Policy)
	}

	_, err = upd.Sign(n.org2.admin)
	wantErr(t, err, ErrSigner, "Org2MSP: not one of the organisations whose admins Org1MSP Admins counts (Org1MSP)")
	client := issueSigner(t, n.org1.cas.MSP, "Org1MSP", "User1@org1.example.com", pki.RoleClient)
	_, err = upd.Sign(client)
	wantErr(t, err, ErrSigner, "User1@org1.example.com is not an admin")

	env, err := upd.Sign(n.org1.admin)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeUpdate(t, env, n.cas())
	if !slices.Equal(d.signers, []string{"Org1MSP"}) {
		t.Errorf("signed by %v, want Org1MSP", d.signers)
	}

	// It reads the organisation's group at its version and writes the
	// group one version on, with the new AnchorPeers value; nothing else.
	rs, ws := d.update.ReadSet, d.update.WriteSet
	if got := groupKeys(ws); !slices.Equal(got, []string{"Application"}) {
		t.Errorf("write set groups %v, want Application", got)
	}
	if got := groupKeys(ws.Groups["Application"]); !slices.Equal(got, []string{"Org1MSP"}) {
		t.Errorf("write set Application groups %v, want Org1MSP", got)
	}
	if ws.Groups["Application"].Version != 0 {
		t.Errorf("Application group written at version %d, want unchanged 0", ws.Groups["Application"].Version)
	}
	rOrg, wOrg := rs.Groups["Application"].Groups["Org1MSP"], ws.Groups["Application"].Groups["Org1MSP"]
	if rOrg.Version != 0 || wOrg.Version != 1 || wOrg.ModPolicy != configtx.AdminsPolicyKey {
		t.Errorf("Org1MSP read at version %d, written at %d with mod policy %q; want 0, 1, Admins", rOrg.Version, wOrg.Version, wOrg.ModPolicy)
	}
	if _, ok := rOrg.Values["AnchorPeers"]; ok {
		t.Error("the read set has anchor peers the channel did not have")
	}
	v, ok := wOrg.Values["AnchorPeers"]
	if !ok {
		t.Fatal("no AnchorPeers value written")
	}
	if v.ModPolicy != configtx.AdminsPolicyKey {
		t.Errorf("AnchorPeers mod policy %q, want Admins", v.ModPolicy)
	}
	ap := &pb.AnchorPeers{}
	unmarshal(t, v.Value, ap)
	var got []Address
	for _, a := range ap.AnchorPeers {
		got = append(got, Address{Host: a.Host, Port: int(a.Port)})
	}
	if !slices.Equal(got, peers) {
		t.Errorf("anchor peers %v, want %v", got, peers)
	}

	_, err = SetAnchorPeers("mychannel", cfg, "Org1MSP", nil)
	wantErr(t, err, ErrNoChange, "channel mychannel: set anchor peers of Org1MSP: the update changes nothing")
	_, err = SetAnchorPeers("mychannel", cfg, "Org9MSP", peers)
	wantErr(t, err, ErrUnknownOrg, "no such organisation in the channel: Org9MSP")
	if _, err := SetAnchorPeers("mychannel", cfg, "Org1MSP", []Address{{Host: "peer0", Port: 0}}); err == nil || !strings.Contains(err.Error(), `peers[0]: "peer0:0" is not host:port`) {
		t.Errorf("port 0: %v", err)
	}
}

func TestAddOrganization(t *testing.T) {
	n := newNetwork(t)
	cfg := genesisConfig(t, n.spec)
	org3 := newTestOrg(t, "org3.example.com", "Org3MSP")
	newOrg := org3.org()
	newOrg.AnchorPeers = []Address{{Host: "peer0.org3.example.com", Port: 11051}}
	upd, err := AddOrganization("mychannel", cfg, newOrg)
	if err != nil {
		t.Fatal(err)
	}
	if upd.Policy.Rule != "MAJORITY Admins" || upd.Policy.Need != 2 || !slices.Equal(upd.Policy.MSPIDs(), []string{"Org1MSP", "Org2MSP"}) {
		t.Errorf("policy %q needs %d of %v, want MAJORITY Admins, 2 of Org1MSP, Org2MSP", upd.Policy.Rule, upd.Policy.Need, upd.Policy.MSPIDs())
	}

	t.Run("refused signers", func(t *testing.T) {
		_, err := upd.Sign(n.org1.admin)
		wantErr(t, err, ErrTooFewSigners, "the admins of 1 of the 2 organisations sign, and MAJORITY Admins needs 2")
		_, err = upd.Sign(n.org1.admin, n.org1.admin)
		wantErr(t, err, ErrTooFewSigners, "the admins of 1 of the 2 organisations sign")
		_, err = upd.Sign()
		wantErr(t, err, ErrTooFewSigners, "nobody signs")
		_, err = upd.Sign(n.org1.admin, org3.admin)
		wantErr(t, err, ErrSigner, "Org3MSP: not one of the organisations whose admins MAJORITY Admins counts (Org1MSP, Org2MSP)")
		forged := org3.admin
		forged.MSPID = "Org2MSP"
		_, err = upd.Sign(n.org1.admin, forged)
		wantErr(t, err, ErrSigner, "Admin@org3.example.com is not signed by the organisation's CA in the channel")
		peer := issueSigner(t, n.org2.cas.MSP, "Org2MSP", "peer0.org2.example.com", pki.RolePeer)
		_, err = upd.Sign(n.org1.admin, peer)
		wantErr(t, err, ErrSigner, "peer0.org2.example.com is not an admin")
	})

	t.Run("signed by both", func(t *testing.T) {
		env, err := upd.Sign(n.org2.admin, n.org1.admin)
		if err != nil {
			t.Fatal(err)
		}
		d := decodeUpdate(t, env, n.cas())
		if !slices.Equal(d.signers, []string{"Org2MSP", "Org1MSP"}) {
			t.Errorf("signed by %v", d.signers)
		}
		rs, ws := d.update.ReadSet, d.update.WriteSet
		rApp, wApp := rs.Groups["Application"], ws.Groups["Application"]
		if rApp.Version != 0 || wApp.Version != 1 || wApp.ModPolicy != "Admins" {
			t.Errorf("Application read at %d, written at %d with mod policy %q; want 0, 1, Admins", rApp.Version, wApp.Version, wApp.ModPolicy)
		}
		if got := groupKeys(rApp); !slices.Equal(got, []string{"Org1MSP", "Org2MSP"}) {
			t.Errorf("read set organisations %v", got)
		}
		if got := groupKeys(wApp); !slices.Equal(got, []string{"Org1MSP", "Org2MSP", "Org3MSP"}) {
			t.Errorf("write set organisations %v", got)
		}
		if _, ok := ws.Groups["Orderer"]; ok {
			t.Error("the update writes the Orderer group")
		}
		// The new organisation's group is whole: MSP, policies, anchor peers.
		org := wApp.Groups["Org3MSP"]
		if org.Version != 0 || org.ModPolicy != "Admins" {
			t.Errorf("Org3MSP version %d, mod policy %q", org.Version, org.ModPolicy)
		}
		if got := sortedKeys(org.Policies); !slices.Equal(got, []string{"Admins", "Endorsement", "Readers", "Writers"}) {
			t.Errorf("Org3MSP policies %v", got)
		}
		if got := sortedKeys(org.Values); !slices.Equal(got, []string{"AnchorPeers", "MSP"}) {
			t.Errorf("Org3MSP values %v", got)
		}
		mspConf := &mb.MSPConfig{}
		unmarshal(t, org.Values["MSP"].Value, mspConf)
		fmsp := &mb.FabricMSPConfig{}
		unmarshal(t, mspConf.Config, fmsp)
		root, err := pki.ParseCertPEM(fmsp.RootCerts[0])
		if err != nil || fmsp.Name != "Org3MSP" || !root.Equal(org3.cas.MSP.Cert) || !fmsp.FabricNodeOus.GetEnable() {
			t.Errorf("Org3MSP's MSP: name %q, root CA is its own: %v, node OUs %v (%v)", fmsp.Name, root.Equal(org3.cas.MSP.Cert), fmsp.FabricNodeOus.GetEnable(), err)
		}
	})

	t.Run("signatures collected one by one", func(t *testing.T) {
		sig1, err := upd.Signature(n.org1.admin)
		if err != nil {
			t.Fatal(err)
		}
		sig2, err := upd.Signature(n.org2.admin)
		if err != nil {
			t.Fatal(err)
		}
		_, err = upd.Envelope(n.org1.admin, sig1)
		wantErr(t, err, ErrTooFewSigners, "the admins of 1 of the 2 organisations sign, and MAJORITY Admins needs 2")
		env, err := upd.Envelope(n.org1.admin, sig1, sig2)
		if err != nil {
			t.Fatal(err)
		}
		if d := decodeUpdate(t, env, n.cas()); len(d.signers) != 2 {
			t.Errorf("%d signatures, want 2", len(d.signers))
		}
		// A signature of another update does not count for this one.
		other, err := SetAnchorPeers("mychannel", cfg, "Org2MSP", []Address{{Host: "peer0.org2.example.com", Port: 9051}})
		if err != nil {
			t.Fatal(err)
		}
		bad, err := other.Signature(n.org2.admin)
		if err != nil {
			t.Fatal(err)
		}
		_, err = upd.Envelope(n.org1.admin, sig1, bad)
		if err == nil || !strings.Contains(err.Error(), "signature 1 by Org2MSP: signature does not verify") {
			t.Errorf("tampered signature: %v", err)
		}
		_, err = upd.Signature(org3.admin)
		wantErr(t, err, ErrSigner, "Org3MSP")
	})

	_, err = AddOrganization("mychannel", cfg, n.org2.org())
	wantErr(t, err, ErrOrgExists, "add organisation Org2MSP: organisation already in the channel")
	noCA := org3.org()
	noCA.CACert = nil
	_, err = AddOrganization("mychannel", cfg, noCA)
	wantErr(t, err, ErrMissingCA, "org.caCert")
}

func TestRemoveOrganization(t *testing.T) {
	n := newNetwork(t)
	org3 := newTestOrg(t, "org3.example.com", "Org3MSP")
	s := n.spec
	s.PeerOrgs = append(slices.Clone(s.PeerOrgs), org3.org())
	cfg := genesisConfig(t, s)

	upd, err := RemoveOrganization("mychannel", cfg, "Org3MSP")
	if err != nil {
		t.Fatal(err)
	}
	_, err = upd.Sign(org3.admin)
	wantErr(t, err, ErrTooFewSigners, "the admins of 1 of the 3 organisations sign, and MAJORITY Admins needs 2")
	// The leaving organisation's admin counts towards the majority.
	env, err := upd.Sign(n.org1.admin, org3.admin)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeUpdate(t, env, n.cas(org3))
	rApp, wApp := d.update.ReadSet.Groups["Application"], d.update.WriteSet.Groups["Application"]
	if rApp.Version != 0 || wApp.Version != 1 || wApp.ModPolicy != "Admins" {
		t.Errorf("Application read at %d, written at %d with mod policy %q; want 0, 1, Admins", rApp.Version, wApp.Version, wApp.ModPolicy)
	}
	// The orderer drops what a group written at a new version leaves out.
	for name, g := range map[string]*cb.ConfigGroup{"read": rApp, "write": wApp} {
		if got := groupKeys(g); !slices.Equal(got, []string{"Org1MSP", "Org2MSP"}) {
			t.Errorf("%s set organisations %v, want Org3MSP left out", name, got)
		}
		for _, org := range g.Groups {
			if org.Version != 0 || len(org.Values)+len(org.Policies) > 0 {
				t.Errorf("%s set: a remaining organisation is written, not only named", name)
			}
		}
	}

	_, err = RemoveOrganization("mychannel", cfg, "OrdererMSP")
	wantErr(t, err, ErrUnknownOrg, "OrdererMSP")

	one := n.spec
	one.PeerOrgs = one.PeerOrgs[:1]
	_, err = RemoveOrganization("mychannel", genesisConfig(t, one), "Org1MSP")
	if err == nil || !strings.Contains(err.Error(), "the channel's last organisation") {
		t.Errorf("removing the last organisation: %v", err)
	}
}

func TestHighSRefused(t *testing.T) {
	n := newNetwork(t)
	cfg := genesisConfig(t, n.spec)
	upd, err := SetAnchorPeers("mychannel", cfg, "Org1MSP", []Address{{Host: "peer0.org1.example.com", Port: 7051}})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := upd.Signature(n.org1.admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(upd.ConfigUpdate, sig, n.org1.admin.Cert); err != nil {
		t.Fatal(err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig.Signature, &rs); err != nil {
		t.Fatal(err)
	}
	rs.S.Sub(n.org1.admin.Key.Curve.Params().N, rs.S)
	high, err := asn1.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	sig.Signature = high
	if err := VerifySignature(upd.ConfigUpdate, sig, n.org1.admin.Cert); err == nil || !strings.Contains(err.Error(), "high S") {
		t.Errorf("a high-S signature: %v", err)
	}
}

func TestUpdateBadInput(t *testing.T) {
	n := newNetwork(t)
	cfg := genesisConfig(t, n.spec)
	noApp := &cb.Config{ChannelGroup: &cb.ConfigGroup{Groups: map[string]*cb.ConfigGroup{}}}
	tests := []struct {
		name string
		do   func() error
		is   error
		says string
	}{
		{"no configuration", func() error { _, err := SetAnchorPeers("mychannel", nil, "Org1MSP", nil); return err }, nil, "no Application group"},
		{"no Application group", func() error { _, err := RemoveOrganization("mychannel", noApp, "Org1MSP"); return err }, nil, "no Application group"},
		{"bad channel name", func() error { _, err := AddOrganization("My_Channel", cfg, n.org1.org()); return err }, ErrChannelName, `"My_Channel"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %v, want one saying %q", err, tt.says)
			}
		})
	}
}
