package channel

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	ob "github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer/smartbft"

	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

// bftNetwork is the test network with four BFT orderers, each with an
// enrolment certificate of the orderer organisation.
func bftNetwork(t *testing.T) *network {
	t.Helper()
	n := newNetwork(t)
	var endpoints []string
	n.spec.Consenters = nil
	for i := range 4 {
		host := fmt.Sprintf("orderer%d.example.com", i)
		tls, err := n.ord.cas.TLS.IssueTLS(pki.Request{Name: host, Hosts: []string{host}})
		if err != nil {
			t.Fatal(err)
		}
		id, err := n.ord.cas.MSP.IssueMSP(pki.Request{Name: host, Role: pki.RoleOrderer})
		if err != nil {
			t.Fatal(err)
		}
		endpoints = append(endpoints, fmt.Sprintf("%s:%d", host, 7050))
		n.spec.Consenters = append(n.spec.Consenters, Consenter{
			Host: host, Port: 7050, MSPID: n.ord.mspID, Identity: id.Cert, ClientTLSCert: tls.Cert, ServerTLSCert: tls.Cert,
		})
	}
	n.spec.OrdererOrgs = []Organization{n.ord.org(endpoints...)}
	n.spec.Consensus = ConsensusBFT
	return n
}

func TestBFTGenesisBlock(t *testing.T) {
	n := bftNetwork(t)
	built, err := GenesisBlock(n.spec)
	if err != nil {
		t.Fatal(err)
	}
	block := wire(t, built, &cb.Block{})
	if got, want := block.Header.DataHash, blockDataHash(block.Data); string(got) != string(want) {
		t.Errorf("data hash %x, want %x (the hash of the rewritten data)", got, want)
	}
	config, err := ConfigFromBlock(block)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "genesis-bft.golden", []byte(describeBFT(t, config)))

	// What BFT reads of each consenter is the orderer's own: its
	// enrolment certificate as PEM, and its TLS certificates.
	orderers := &cb.Orderers{}
	unmarshal(t, config.ChannelGroup.Groups[configtx.OrdererGroupKey].Values[orderersKey].Value, orderers)
	for i, c := range orderers.ConsenterMapping {
		want := n.spec.Consenters[i]
		for _, got := range []struct {
			name string
			pem  []byte
			cert *x509.Certificate
		}{{"identity", c.Identity, want.Identity}, {"client TLS", c.ClientTlsCert, want.ClientTLSCert}, {"server TLS", c.ServerTlsCert, want.ServerTLSCert}} {
			if !parsePEM(t, got.pem).Equal(got.cert) {
				t.Errorf("consenter %d: %s certificate is not the orderer's", c.Id, got.name)
			}
		}
	}

	// The etcdraft block of the same network is what it was: only the
	// BFT spec is rewritten.
	raft := n.spec
	raft.Consensus = ""
	rb, err := GenesisBlock(raft)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ConfigFromBlock(rb)
	if err != nil {
		t.Fatal(err)
	}
	if ct := consensusType(t, rc); ct.Type != ConsensusEtcdRaft {
		t.Errorf("without consensus set: type %s, want %s", ct.Type, ConsensusEtcdRaft)
	}
	if _, ok := rc.ChannelGroup.Groups[configtx.OrdererGroupKey].Values[orderersKey]; ok {
		t.Error("an etcdraft channel has an Orderers value")
	}
}

func TestBFTQuorum(t *testing.T) {
	// Fabric's policies.ComputeBFTQuorum for n nodes and f = (n-1)/3.
	for n, want := range map[int]int{1: 1, 4: 3, 5: 4, 7: 5, 10: 7} {
		if got := BFTQuorum(n); got != want {
			t.Errorf("BFTQuorum(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestBFTSpecValidation(t *testing.T) {
	other := newTestOrg(t, "other.example.com", "OtherMSP")
	foreign, err := other.cas.MSP.IssueMSP(pki.Request{Name: "orderer9", Role: pki.RoleOrderer})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(s *Spec)
		is     error
		says   []string
	}{
		{"unknown consensus", func(s *Spec) { s.Consensus = "kafka" }, ErrConsensus, []string{`consensus: invalid consensus: "kafka" is neither etcdraft nor BFT`}},
		{"consenter without identity", func(s *Spec) { s.Consenters[1].Identity = nil }, ErrConsenter, []string{"consenters[1].identity: invalid consenter: none"}},
		{"consenter of another MSP", func(s *Spec) { s.Consenters[2].MSPID = "Org1MSP" }, ErrConsenter, []string{`consenters[2].mspID: invalid consenter: "Org1MSP" is not an orderer organisation`}},
		{"identity from another CA", func(s *Spec) { s.Consenters[3].Identity = foreign.Cert }, ErrConsenter,
			[]string{"consenters[3].identity: invalid consenter: not issued by the membership CA of OrdererMSP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bftNetwork(t).spec
			tt.change(&s)
			_, err := GenesisBlock(s)
			if !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
			for _, w := range tt.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func parsePEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, rest := pem.Decode(b)
	if blk == nil || len(rest) > 0 {
		t.Fatalf("not one PEM block: %q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func consensusType(t *testing.T, config *cb.Config) *ob.ConsensusType {
	t.Helper()
	ct := &ob.ConsensusType{}
	unmarshal(t, config.ChannelGroup.Groups[configtx.OrdererGroupKey].Values["ConsensusType"].Value, ct)
	return ct
}

// describeBFT is what a BFT configuration holds beyond an etcdraft one,
// read from the protos (fabric-config cannot read a BFT orderer group):
// capabilities, consensus type and options, consenters, the orderer
// group's policies and organisations.
func describeBFT(t *testing.T, config *cb.Config) string {
	t.Helper()
	var b strings.Builder
	p := func(indent int, format string, args ...any) {
		fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", indent), fmt.Sprintf(format, args...))
	}
	capabilities := func(g *cb.ConfigGroup) string {
		c := &cb.Capabilities{}
		unmarshal(t, g.Values["Capabilities"].GetValue(), c)
		return strings.Join(sortedKeys(c.Capabilities), ", ")
	}
	cn := func(pemBytes []byte) string {
		c := parsePEM(t, pemBytes)
		return fmt.Sprintf("%s (issuer %s)", c.Subject.CommonName, c.Issuer.CommonName)
	}
	ch := config.ChannelGroup
	og := ch.Groups[configtx.OrdererGroupKey]
	p(0, "channel capabilities: %s", capabilities(ch))
	p(0, "application capabilities: %s", capabilities(ch.Groups[configtx.ApplicationGroupKey]))
	p(0, "application organisations: %s", strings.Join(sortedKeys(ch.Groups[configtx.ApplicationGroupKey].Groups), ", "))
	p(0, "channel values: %s", strings.Join(sortedKeys(ch.Values), ", "))
	p(0, "orderer:")
	p(1, "capabilities: %s", capabilities(og))
	ct := consensusType(t, config)
	p(1, "type: %s, state %s", ct.Type, ct.State)
	opts := &smartbft.Options{}
	unmarshal(t, ct.Metadata, opts)
	p(1, "SmartBFT options: %s", strings.Join(strings.Fields(fmt.Sprint(opts)), " "))
	bs := &ob.BatchSize{}
	unmarshal(t, og.Values["BatchSize"].Value, bs)
	bt := &ob.BatchTimeout{}
	unmarshal(t, og.Values["BatchTimeout"].Value, bt)
	p(1, "batch: timeout %s, max messages %d, absolute max bytes %d, preferred max bytes %d",
		bt.Timeout, bs.MaxMessageCount, bs.AbsoluteMaxBytes, bs.PreferredMaxBytes)
	p(1, "values: %s", strings.Join(sortedKeys(og.Values), ", "))
	orderers := &cb.Orderers{}
	unmarshal(t, og.Values[orderersKey].Value, orderers)
	p(1, "consenters:")
	for _, c := range orderers.ConsenterMapping {
		p(2, "%d: %s:%d MSP %s, identity %s, client TLS %s, server TLS %s", c.Id, c.Host, c.Port, c.MspId,
			cn(c.Identity), cn(c.ClientTlsCert), cn(c.ServerTlsCert))
	}
	p(1, "policies:")
	for _, name := range sortedKeys(og.Policies) {
		pol := og.Policies[name]
		switch cb.Policy_PolicyType(pol.Policy.Type) {
		case cb.Policy_IMPLICIT_META:
			im := &cb.ImplicitMetaPolicy{}
			unmarshal(t, pol.Policy.Value, im)
			p(2, "%s: ImplicitMeta %s %s (mod policy %s)", name, im.Rule, im.SubPolicy, pol.ModPolicy)
		case cb.Policy_SIGNATURE:
			env := &cb.SignaturePolicyEnvelope{}
			unmarshal(t, pol.Policy.Value, env)
			var ids []string
			for _, id := range env.Identities {
				if id.PrincipalClassification != mb.MSPPrincipal_IDENTITY {
					ids = append(ids, id.PrincipalClassification.String())
					continue
				}
				sid := &mb.SerializedIdentity{}
				unmarshal(t, id.Principal, sid)
				ids = append(ids, sid.Mspid+" "+parsePEM(t, sid.IdBytes).Subject.CommonName)
			}
			p(2, "%s: Signature %s of [%s] (mod policy %s)", name, rule(env.Rule), strings.Join(ids, "; "), pol.ModPolicy)
		default:
			p(2, "%s: type %d", name, pol.Policy.Type)
		}
	}
	for _, name := range sortedKeys(og.Groups) {
		org := og.Groups[name]
		ep := &cb.OrdererAddresses{}
		unmarshal(t, org.Values["Endpoints"].GetValue(), ep)
		p(1, "organisation %s: endpoints %s; policies %s", name, strings.Join(ep.Addresses, ", "), strings.Join(sortedKeys(org.Policies), ", "))
	}
	return b.String()
}

// rule is a signature policy rule as Fabric's DSL writes it, with
// identities by index.
func rule(r *cb.SignaturePolicy) string {
	switch r := r.Type.(type) {
	case *cb.SignaturePolicy_SignedBy:
		return fmt.Sprintf("signed by %d", r.SignedBy)
	case *cb.SignaturePolicy_NOutOf_:
		var parts []string
		for _, sub := range r.NOutOf.Rules {
			parts = append(parts, rule(sub))
		}
		sort.Strings(parts)
		return fmt.Sprintf("%d out of (%s)", r.NOutOf.N, strings.Join(parts, ", "))
	}
	return "?"
}
