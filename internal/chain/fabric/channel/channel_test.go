package channel

import (
	"bytes"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testOrg is an organisation with its CAs and an admin.
type testOrg struct {
	domain string
	mspID  string
	cas    *pki.OrgCAs
	admin  Signer
}

func newTestOrg(t *testing.T, domain, mspID string) *testOrg {
	t.Helper()
	cas, err := pki.NewOrgCAs(domain, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &testOrg{domain: domain, mspID: mspID, cas: cas, admin: issueSigner(t, cas.MSP, mspID, "Admin@"+domain, pki.RoleAdmin)}
}

func issueSigner(t *testing.T, ca *pki.CA, mspID, name string, role pki.Role) Signer {
	t.Helper()
	id, err := ca.IssueMSP(pki.Request{Name: name, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return Signer{MSPID: mspID, Cert: id.Cert, Key: id.Key}
}

func (o *testOrg) org(ordererEndpoints ...string) Organization {
	return Organization{MSPID: o.mspID, CACert: o.cas.MSP.Cert, TLSCACert: o.cas.TLS.Cert, OrdererEndpoints: ordererEndpoints}
}

// network is two peer organisations and one orderer organisation with
// three orderers.
type network struct {
	org1, org2, ord *testOrg
	spec            Spec
}

func newNetwork(t *testing.T) *network {
	t.Helper()
	n := &network{
		org1: newTestOrg(t, "org1.example.com", "Org1MSP"),
		org2: newTestOrg(t, "org2.example.com", "Org2MSP"),
		ord:  newTestOrg(t, "example.com", "OrdererMSP"),
	}
	var endpoints []string
	var consenters []Consenter
	for i := range 3 {
		host := fmt.Sprintf("orderer%d.example.com", i)
		tls, err := n.ord.cas.TLS.IssueTLS(pki.Request{Name: host, Hosts: []string{host, "127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		endpoints = append(endpoints, fmt.Sprintf("%s:%d", host, 7050))
		consenters = append(consenters, Consenter{Host: host, Port: 7050, ClientTLSCert: tls.Cert, ServerTLSCert: tls.Cert})
	}
	n.spec = Spec{
		Name:        "mychannel",
		PeerOrgs:    []Organization{n.org1.org(), n.org2.org()},
		OrdererOrgs: []Organization{n.ord.org(endpoints...)},
		Consenters:  consenters,
	}
	return n
}

// wire marshals a message and reads it back, as it travels between nodes.
func wire[M proto.Message](t *testing.T, m M, into M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
	return into
}

func unmarshal(t *testing.T, b []byte, m proto.Message) {
	t.Helper()
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("unmarshal %T: %v", m, err)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run with -update if the change is intended\n--- got ---\n%s", path, got)
	}
}

func TestGenesisBlock(t *testing.T) {
	n := newNetwork(t)
	built, err := GenesisBlock(n.spec)
	if err != nil {
		t.Fatal(err)
	}
	block := wire(t, built, &cb.Block{})

	// Decode it as an orderer joining the channel does.
	if block.Header.Number != 0 || block.Header.PreviousHash != nil {
		t.Errorf("header: number %d, previous hash %x; want a genesis block", block.Header.Number, block.Header.PreviousHash)
	}
	if len(block.Data.Data) != 1 {
		t.Fatalf("%d envelopes, want 1", len(block.Data.Data))
	}
	env := &cb.Envelope{}
	unmarshal(t, block.Data.Data[0], env)
	payload := &cb.Payload{}
	unmarshal(t, env.Payload, payload)
	chdr := &cb.ChannelHeader{}
	unmarshal(t, payload.Header.ChannelHeader, chdr)
	if cb.HeaderType(chdr.Type) != cb.HeaderType_CONFIG || chdr.ChannelId != "mychannel" {
		t.Errorf("channel header: type %s, channel %q; want CONFIG, mychannel", cb.HeaderType(chdr.Type), chdr.ChannelId)
	}
	cenv := &cb.ConfigEnvelope{}
	unmarshal(t, payload.Data, cenv)
	if cenv.Config.Sequence != 0 {
		t.Errorf("config sequence %d, want 0", cenv.Config.Sequence)
	}
	sigMeta := &cb.Metadata{}
	unmarshal(t, block.Metadata.Metadata[cb.BlockMetadataIndex_SIGNATURES], sigMeta)
	ordererMeta := &cb.OrdererBlockMetadata{}
	unmarshal(t, sigMeta.Value, ordererMeta)
	if ordererMeta.LastConfig.GetIndex() != 0 {
		t.Errorf("last config index %d, want 0", ordererMeta.LastConfig.GetIndex())
	}

	fromBlock, err := ConfigFromBlock(block)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(fromBlock, cenv.Config) {
		t.Error("ConfigFromBlock reads another config than the orderer's decoding")
	}
	if id, err := ChannelID(block); err != nil || id != "mychannel" {
		t.Errorf("ChannelID: %q, %v", id, err)
	}

	tx := configtx.New(cenv.Config)
	golden(t, "genesis.golden", []byte(describe(t, &tx)))

	// The certificates the configuration carries are the organisations'
	// CAs and the consenters' own.
	cfg, err := tx.Channel().Configuration()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*testOrg{n.org1.mspID: n.org1, n.org2.mspID: n.org2, n.ord.mspID: n.ord}
	for _, o := range append(cfg.Application.Organizations, cfg.Orderer.Organizations...) {
		want := byID[o.MSP.Name]
		if want == nil {
			t.Errorf("unexpected organisation %s", o.MSP.Name)
			continue
		}
		if len(o.MSP.RootCerts) != 1 || !o.MSP.RootCerts[0].Equal(want.cas.MSP.Cert) {
			t.Errorf("%s: root certificates are not the organisation's membership CA", o.Name)
		}
		if len(o.MSP.TLSRootCerts) != 1 || !o.MSP.TLSRootCerts[0].Equal(want.cas.TLS.Cert) {
			t.Errorf("%s: TLS root certificates are not the organisation's TLS CA", o.Name)
		}
		for _, ou := range []*x509.Certificate{o.MSP.NodeOUs.ClientOUIdentifier.Certificate, o.MSP.NodeOUs.AdminOUIdentifier.Certificate,
			o.MSP.NodeOUs.PeerOUIdentifier.Certificate, o.MSP.NodeOUs.OrdererOUIdentifier.Certificate} {
			if !ou.Equal(want.cas.MSP.Cert) {
				t.Errorf("%s: a node OU identifier is not the membership CA", o.Name)
			}
		}
	}
	for i, c := range cfg.Orderer.EtcdRaft.Consenters {
		want := n.spec.Consenters[i]
		if !c.ClientTLSCert.Equal(want.ClientTLSCert) || !c.ServerTLSCert.Equal(want.ServerTLSCert) {
			t.Errorf("consenter %d: TLS certificates are not the orderer's", i)
		}
	}
}

// describe is the configuration as text, in a stable order, with
// certificates by subject CN.
func describe(t *testing.T, tx *configtx.ConfigTx) string {
	t.Helper()
	cfg, err := tx.Channel().Configuration()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	p := func(indent int, format string, args ...any) {
		fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", indent), fmt.Sprintf(format, args...))
	}
	cns := func(certs []*x509.Certificate) string {
		var s []string
		for _, c := range certs {
			s = append(s, c.Subject.CommonName)
		}
		return strings.Join(s, ", ")
	}
	policies := func(indent int, ps map[string]configtx.Policy) {
		p(indent, "policies:")
		for _, name := range sortedKeys(ps) {
			pol := ps[name]
			p(indent+1, "%s: %s %s (mod policy %s)", name, pol.Type, pol.Rule, pol.ModPolicy)
		}
	}
	orgs := func(indent int, os []configtx.Organization) {
		sort.Slice(os, func(i, j int) bool { return os[i].Name < os[j].Name })
		for _, o := range os {
			p(indent, "organisation %s:", o.Name)
			m := o.MSP
			p(indent+1, "MSP ID: %s", m.Name)
			p(indent+1, "root CAs: %s", cns(m.RootCerts))
			p(indent+1, "TLS root CAs: %s", cns(m.TLSRootCerts))
			p(indent+1, "crypto: %s, %s", m.CryptoConfig.SignatureHashFamily, m.CryptoConfig.IdentityIdentifierHashFunction)
			ous := m.NodeOUs
			p(indent+1, "node OUs enabled: %v", ous.Enable)
			for _, ou := range []struct {
				name string
				id   *x509.Certificate
				ou   string
			}{{"client", ous.ClientOUIdentifier.Certificate, ous.ClientOUIdentifier.OrganizationalUnitIdentifier},
				{"peer", ous.PeerOUIdentifier.Certificate, ous.PeerOUIdentifier.OrganizationalUnitIdentifier},
				{"admin", ous.AdminOUIdentifier.Certificate, ous.AdminOUIdentifier.OrganizationalUnitIdentifier},
				{"orderer", ous.OrdererOUIdentifier.Certificate, ous.OrdererOUIdentifier.OrganizationalUnitIdentifier}} {
				p(indent+2, "%s: OU %s of %s", ou.name, ou.ou, cns([]*x509.Certificate{ou.id}))
			}
			if len(o.OrdererEndpoints) > 0 {
				p(indent+1, "orderer endpoints: %s", strings.Join(o.OrdererEndpoints, ", "))
			}
			var anchors []string
			for _, a := range o.AnchorPeers {
				anchors = append(anchors, fmt.Sprintf("%s:%d", a.Host, a.Port))
			}
			if len(anchors) > 0 {
				p(indent+1, "anchor peers: %s", strings.Join(anchors, ", "))
			}
			policies(indent+1, o.Policies)
		}
	}
	p(0, "capabilities: %s", strings.Join(cfg.Capabilities, ", "))
	policies(0, cfg.Policies)
	p(0, "application:")
	p(1, "capabilities: %s", strings.Join(cfg.Application.Capabilities, ", "))
	p(1, "ACLs: %d", len(cfg.Application.ACLs))
	policies(1, cfg.Application.Policies)
	orgs(1, cfg.Application.Organizations)
	o := cfg.Orderer
	p(0, "orderer:")
	p(1, "type: %s, state %s", o.OrdererType, o.State)
	p(1, "capabilities: %s", strings.Join(o.Capabilities, ", "))
	p(1, "batch: timeout %s, max messages %d, absolute max bytes %d, preferred max bytes %d",
		o.BatchTimeout, o.BatchSize.MaxMessageCount, o.BatchSize.AbsoluteMaxBytes, o.BatchSize.PreferredMaxBytes)
	r := o.EtcdRaft.Options
	p(1, "raft options: tick %s, election tick %d, heartbeat tick %d, max inflight blocks %d, snapshot interval %d bytes",
		r.TickInterval, r.ElectionTick, r.HeartbeatTick, r.MaxInflightBlocks, r.SnapshotIntervalSize)
	p(1, "consenters:")
	for _, c := range o.EtcdRaft.Consenters {
		p(2, "%s:%d client TLS %s (issuer %s), server TLS %s (issuer %s)", c.Address.Host, c.Address.Port,
			c.ClientTLSCert.Subject.CommonName, c.ClientTLSCert.Issuer.CommonName,
			c.ServerTLSCert.Subject.CommonName, c.ServerTLSCert.Issuer.CommonName)
	}
	p(1, "max channels: %d", o.MaxChannels)
	policies(1, o.Policies)
	orgs(1, o.Organizations)
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestSpecValidation(t *testing.T) {
	n := newNetwork(t)
	other := newTestOrg(t, "other.example.com", "OtherMSP")
	leaf, err := n.org1.cas.MSP.IssueMSP(pki.Request{Name: "peer0", Role: pki.RolePeer})
	if err != nil {
		t.Fatal(err)
	}
	foreignTLS, err := other.cas.TLS.IssueTLS(pki.Request{Name: "orderer9", Hosts: []string{"orderer9"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(s *Spec)
		is     error
		says   []string
	}{
		{"upper-case channel name", func(s *Spec) { s.Name = "MyChannel" }, ErrChannelName,
			[]string{`name: invalid channel name "MyChannel": a channel name starts with a lower-case letter`}},
		{"channel name with an underscore", func(s *Spec) { s.Name = "my_channel" }, ErrChannelName, []string{`"my_channel"`}},
		{"channel name starting with a digit", func(s *Spec) { s.Name = "1channel" }, ErrChannelName, []string{`"1channel"`}},
		{"empty channel name", func(s *Spec) { s.Name = "" }, ErrChannelName, []string{"name: invalid channel name: empty"}},
		{"long channel name", func(s *Spec) { s.Name = strings.Repeat("a", 250) }, ErrChannelName, []string{"250 characters, more than 249"}},
		{"no peer organisation", func(s *Spec) { s.PeerOrgs = nil }, ErrNoOrganization, []string{"peerOrgs: no organisation"}},
		{"no orderer organisation", func(s *Spec) { s.OrdererOrgs = nil }, ErrNoOrganization, []string{"ordererOrgs: no organisation"}},
		{"no consenter", func(s *Spec) { s.Consenters = nil }, ErrNoConsenter, []string{"consenters: no consenter"}},
		{"duplicate MSP ID", func(s *Spec) { s.PeerOrgs[1].MSPID = "Org1MSP" }, ErrDuplicateMSPID, []string{"peerOrgs[1]: duplicate MSP ID Org1MSP"}},
		{"one MSP ID, two definitions", func(s *Spec) { s.OrdererOrgs[0].MSPID = "Org1MSP" }, ErrDuplicateMSPID, []string{"ordererOrgs[0]: duplicate MSP ID Org1MSP"}},
		{"invalid MSP ID", func(s *Spec) { s.PeerOrgs[0].MSPID = "Org 1" }, ErrMSPID, []string{`peerOrgs[0].mspID: invalid MSP ID "Org 1"`}},
		{"missing CA", func(s *Spec) { s.PeerOrgs[1].CACert = nil }, ErrMissingCA, []string{"peerOrgs[1].caCert: missing CA certificate"}},
		{"missing TLS CA", func(s *Spec) { s.OrdererOrgs[0].TLSCACert = nil }, ErrMissingCA, []string{"ordererOrgs[0].tlsCACert: missing CA certificate"}},
		{"leaf as CA", func(s *Spec) { s.PeerOrgs[0].CACert = leaf.Cert }, ErrNotCA, []string{"peerOrgs[0].caCert: not a CA certificate: peer0"}},
		{"orderer organisation without endpoints", func(s *Spec) { s.OrdererOrgs[0].OrdererEndpoints = nil }, ErrOrdererEndpoint, []string{"ordererOrgs[0].ordererEndpoints"}},
		{"bad orderer endpoint", func(s *Spec) { s.OrdererOrgs[0].OrdererEndpoints[1] = "orderer1" }, ErrOrdererEndpoint, []string{`ordererOrgs[0].ordererEndpoints[1]: invalid orderer endpoint: "orderer1" is not host:port`}},
		{"consenter without host and port", func(s *Spec) { s.Consenters[2].Host, s.Consenters[2].Port = "", 0 }, ErrConsenter, []string{"consenters[2].host", "consenters[2].port"}},
		{"consenter twice", func(s *Spec) { s.Consenters[1] = s.Consenters[0] }, ErrConsenter, []string{"consenters[1]: invalid consenter: orderer0.example.com:7050 is listed twice"}},
		{"consenter without certificate", func(s *Spec) { s.Consenters[0].ServerTLSCert = nil }, ErrConsenter, []string{"consenters[0].serverTLSCert: invalid consenter: none"}},
		{"consenter certificate from another CA", func(s *Spec) { s.Consenters[1].ClientTLSCert = foreignTLS.Cert }, ErrConsenter,
			[]string{"consenters[1].clientTLSCert: invalid consenter: not signed by the TLS CA of an orderer organisation"}},
		{"preferred above absolute max bytes", func(s *Spec) { s.Batch.PreferredMaxBytes = 20 << 20 }, ErrBatch, []string{"batch.preferredMaxBytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newNetwork(t).spec
			s.PeerOrgs[0], s.PeerOrgs[1], s.OrdererOrgs[0] = n.org1.org(), n.org2.org(), n.spec.OrdererOrgs[0]
			s.OrdererOrgs[0].OrdererEndpoints = slices.Clone(n.spec.OrdererOrgs[0].OrdererEndpoints)
			s.Consenters = slices.Clone(n.spec.Consenters)
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

	// Every problem at once.
	s := n.spec
	s.Name, s.PeerOrgs, s.Consenters = "Bad", nil, nil
	err = s.Validate()
	for _, want := range []error{ErrChannelName, ErrNoOrganization, ErrNoConsenter} {
		if !errors.Is(err, want) {
			t.Errorf("%v does not list %v", err, want)
		}
	}

	// One organisation running peers and orderers, with one definition.
	s = n.spec
	s.OrdererOrgs = []Organization{n.org1.org("orderer0.org1.example.com:7050")}
	s.Consenters = nil
	tls, err := n.org1.cas.TLS.IssueTLS(pki.Request{Name: "orderer0.org1.example.com", Hosts: []string{"orderer0.org1.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	s.Consenters = []Consenter{{Host: "orderer0.org1.example.com", Port: 7050, ClientTLSCert: tls.Cert, ServerTLSCert: tls.Cert}}
	if _, err := GenesisBlock(s); err != nil {
		t.Errorf("an organisation in both groups: %v", err)
	}
}
