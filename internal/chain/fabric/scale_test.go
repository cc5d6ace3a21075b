package fabric

import (
	"crypto/x509"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	"github.com/chaindock/chaindock/internal/runtime"
)

// runningStatus is the status of a network whose every node of spec runs
// and has joined.
func runningStatus(spec *apis.NetworkSpec) *apis.NetworkStatus {
	st := &apis.NetworkStatus{Phase: apis.PhaseRunning}
	for _, ns := range spec.Nodes() {
		st.Nodes = append(st.Nodes, apis.NodeStatus{Name: ns.Name, Role: ns.Role, Organization: ns.Organization, Phase: apis.NodeRunning})
	}
	return st
}

func TestValidateScale(t *testing.T) {
	base := decode(t, "two-orgs.good.yaml").Spec
	clone := func(s apis.NetworkSpec) apis.NetworkSpec {
		s.Organizations = slices.Clone(s.Organizations)
		f := *s.Fabric
		s.Fabric = &f
		return s
	}
	for _, tc := range []struct {
		name   string
		change func(s *apis.NetworkSpec, st *apis.NetworkStatus)
		want   []string // the fields of the errors, in order
	}{
		{name: "a peer for org1", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) { s.Organizations[0].Peers = 3 }},
		{name: "a new organisation", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Organizations = append(s.Organizations, apis.OrganizationNodes{Name: "org3", Peers: 1})
		}},
		{name: "both", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Organizations[1].Peers = 4
			s.Organizations = append(s.Organizations, apis.OrganizationNodes{Name: "org3", Peers: 2}, apis.OrganizationNodes{Name: "org4", Peers: 1})
		}},
		{name: "an organisation removed", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Organizations = s.Organizations[1:]
		}},
		{name: "every organisation removed", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Organizations = nil
		}, want: []string{"spec.organizations"}},
		{name: "an organisation removed, no orderer running", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Organizations = s.Organizations[:1]
			for i := range st.Nodes {
				if st.Nodes[i].Role == apis.RoleValidator {
					st.Nodes[i].Phase = apis.NodeCrashed
				}
			}
		}, want: []string{"spec.organizations"}},
		{name: "organisations reordered", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Organizations[0], s.Organizations[1] = s.Organizations[1], s.Organizations[0]
		}, want: []string{"spec.organizations[1].name"}},
		{name: "a new organisation before an old one", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Organizations = []apis.OrganizationNodes{s.Organizations[0], {Name: "org3", Peers: 1}, s.Organizations[1]}
		}, want: []string{"spec.organizations[2].name"}},
		{name: "fewer peers, and more orderers", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Organizations[0].Peers = 1
			s.Fabric.Orderers = 5
		}},
		{name: "an even number of orderers", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) { s.Fabric.Orderers = 4 }, want: []string{"spec.fabric.orderers"}},
		{name: "orderers, one down", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Fabric.Orderers = 5
			st.Nodes[1].Phase = apis.NodeCrashed
		}, want: []string{"spec.fabric.orderers"}},
		{name: "an anchor peer removed, no peer running", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Organizations[0].Peers = 1
			for i := range st.Nodes {
				if st.Nodes[i].Role == apis.RoleFull {
					st.Nodes[i].Phase = apis.NodeCrashed
				}
			}
		}, want: []string{"spec.organizations"}},
		{name: "orderers removed", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) { s.Fabric.Orderers = 1 }},
		{name: "what is fixed at creation", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Fabric.Channel, s.Fabric.Version, s.Fabric.Templates, s.Fabric.OrdererOrganization = "other", "2.5", true, "ord"
			s.Organizations[1].Resources.CPU = "2"
		}, want: []string{"spec.fabric.ordererOrganization", "spec.fabric.channel", "spec.fabric.version", "spec.fabric.templates", "spec.organizations[1].resources"}},
		{name: "a new organisation, no peer running", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Organizations = append(s.Organizations, apis.OrganizationNodes{Name: "org3", Peers: 1})
			for i := range st.Nodes {
				if st.Nodes[i].Role == apis.RoleFull {
					st.Nodes[i].Phase = apis.NodeCrashed
				}
			}
		}, want: []string{"spec.organizations"}},
		{name: "a peer for org1, no peer running", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Organizations[0].Peers = 3
			for i := range st.Nodes {
				st.Nodes[i].Phase = apis.NodeCrashed
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, spec := clone(base), clone(base)
			st := runningStatus(&old)
			tc.change(&spec, st)
			errs := New().ValidateScale(&old, &spec, st)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
				if e.Detail == "" {
					t.Errorf("%s: no detail", e.Field)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("error fields %q, want %q (%v)", got, tc.want, errs)
			}
		})
	}
	// An even count says why it is refused.
	old, spec := clone(base), clone(base)
	spec.Fabric.Orderers = 4
	errs := New().ValidateScale(&old, &spec, runningStatus(&old))
	if len(errs) != 1 || !strings.Contains(errs[0].Detail, "majority") {
		t.Errorf("orderers 3 to 4: %v, want one error about Raft's majority", errs)
	}
}

// reshapeFor reshapes the two-orgs plan to spec with org1's third peer
// and org3 with two peers, with ports from 41000 up.
func reshapeFor(t *testing.T) (*apis.Network, *chain.Plan, *chain.Plan) {
	t.Helper()
	n, plan := planFor(t, "two-orgs.good.yaml")
	d := New()
	grown := *n
	grown.Spec.Organizations = append(slices.Clone(n.Spec.Organizations), apis.OrganizationNodes{Name: "org3", Peers: 2})
	grown.Spec.Organizations[0].Peers = 3
	var add []apis.NodeSpec
	ports := map[string]map[string]int{}
	next := 41000
	for _, ns := range grown.Spec.Nodes() {
		if slices.ContainsFunc(plan.Nodes, func(pn chain.PlannedNode) bool { return pn.Name == ns.Name }) {
			continue
		}
		add = append(add, ns)
		ports[ns.Name] = map[string]int{}
		for _, p := range d.PortNames(&grown.Spec, ns.Role) {
			ports[ns.Name][p] = next
			next++
		}
	}
	next2, err := d.Reshape(t.Context(), chain.ReshapeRequest{
		Network: &grown, Plan: plan, Add: add, Ports: ports, Host: "127.0.0.1",
		Now: time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &grown, plan, next2
}

func TestReshape(t *testing.T) {
	_, plan, next := reshapeFor(t)

	var names []string
	for _, pn := range next.Nodes {
		names = append(names, fmt.Sprintf("%s/%v", pn.Name, pn.Joining))
	}
	want := "orderer-0/true orderer-1/true orderer-2/true org1-peer-0/true org1-peer-1/true org2-peer-0/true org2-peer-1/true " +
		"org1-peer-2/true org3-peer-0/true org3-peer-1/true"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("nodes\n got: %s\nwant: %s", got, want)
	}
	// The nodes that stay are as they were (planFor's nodes are all
	// Joining: they have not been bootstrapped).
	for i, pn := range plan.Nodes {
		if !reflect.DeepEqual(pn, next.Nodes[i]) {
			t.Errorf("%s changed", pn.Name)
		}
	}
	if next.ChainID != plan.ChainID || !slices.EqualFunc(plan.Artifacts, next.Artifacts[:len(plan.Artifacts)], func(a, b runtime.File) bool {
		return a.Path == b.Path && string(a.Data) == string(b.Data)
	}) {
		t.Error("the plan's artifacts changed")
	}

	ca := func(org, dir string) *x509.Certificate {
		t.Helper()
		c, err := pki.ParseCertPEM(next.Artifact(orgPath(org, dir+"/cert.pem")))
		if err != nil {
			t.Fatalf("%s %s: %v", org, dir, err)
		}
		return c
	}
	// org3 has CAs of its own and an admin the driver can sign with.
	for _, dir := range []string{artCA, artTLSCA} {
		if ca("org3", dir).Equal(ca("org1", dir)) || ca("org3", dir).Equal(ca("org2", dir)) {
			t.Errorf("org3's %s is another organisation's", dir)
		}
	}
	a, err := loadAdmin(next, "org3")
	if err != nil {
		t.Fatal(err)
	}
	if a.signer.MSPID != "Org3MSP" {
		t.Errorf("org3's admin signs as %s", a.signer.MSPID)
	}
	if _, err := a.signer.Certificate.Verify(x509.VerifyOptions{Roots: pool(ca("org3", artCA)), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("org3's admin: %v", err)
	}
	if !slices.Contains(a.signer.Certificate.Subject.OrganizationalUnit, "admin") {
		t.Errorf("org3's admin has OUs %v", a.signer.Certificate.Subject.OrganizationalUnit)
	}

	// Each new peer's certificates are its own organisation's, and it
	// gossips first with its organisation's other peers.
	for _, tc := range []struct {
		node, org string
		mates     []string
	}{
		{"org1-peer-2", "org1", []string{"org1-peer-0", "org1-peer-1"}},
		{"org3-peer-0", "org3", []string{"org3-peer-1"}},
		{"org3-peer-1", "org3", []string{"org3-peer-0"}},
	} {
		pn := planned(t, next, tc.node)
		if pn.Organization != tc.org || pn.Role != apis.RoleFull || pn.NodeID != MSPID(tc.org)+"/"+tc.node+"."+tc.org+".fab" {
			t.Errorf("%s: organization %s, role %s, node ID %s", tc.node, pn.Organization, pn.Role, pn.NodeID)
		}
		for _, f := range []struct{ path, dir string }{{"msp/signcerts/cert.pem", artCA}, {"tls/server.crt", artTLSCA}} {
			c, err := pki.ParseCertPEM(chain.FileData(pn.Spec, f.path))
			if err != nil {
				t.Fatalf("%s: %s: %v", tc.node, f.path, err)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca(tc.org, f.dir)), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("%s: %s not issued by %s's %s: %v", tc.node, f.path, tc.org, f.dir, err)
			}
		}
		if b := chain.FileData(pn.Spec, BlockPath(next.ChainID)); string(b) != string(plan.Artifact(BlockPath(plan.ChainID))) {
			t.Errorf("%s: not the channel's genesis block", tc.node)
		}
		var cfg map[string]any
		if err := yaml.Unmarshal(chain.FileData(pn.Spec, fileCoreYAML), &cfg); err != nil {
			t.Fatalf("%s: core.yaml: %v", tc.node, err)
		}
		var boot []any
		for _, m := range tc.mates {
			boot = append(boot, fmt.Sprintf("127.0.0.1:%d", planned(t, next, m).Spec.Ports[PortListen]))
		}
		checkKey(t, tc.node, cfg, "peer.gossip.bootstrap", boot)
		checkKey(t, tc.node, cfg, "peer.localMspId", MSPID(tc.org))
	}
}

func TestReshapeRefusals(t *testing.T) {
	n, plan := planFor(t, "two-orgs.good.yaml")
	d := New()
	if _, err := d.Reshape(t.Context(), chain.ReshapeRequest{Network: n, Plan: plan, Remove: []string{"org2-peer-9"}, Host: "127.0.0.1"}); err == nil {
		t.Error("a peer the plan lacks removed: no error")
	}
	add := []apis.NodeSpec{{Name: "org1-validator-0", Role: apis.RoleValidator, Organization: "org1"}}
	ports := map[string]map[string]int{"org1-validator-0": {PortListen: 1, PortAdmin: 2, PortOperations: 3}}
	if _, err := d.Reshape(t.Context(), chain.ReshapeRequest{Network: n, Plan: plan, Add: add, Ports: ports, Host: "127.0.0.1"}); err == nil || !strings.Contains(err.Error(), "only peers and orderers") {
		t.Errorf("a validator of a peer organisation added: %v", err)
	}
	// Orderers come and go through the channel's configuration, which a
	// running member peer has: with none, nothing is changed.
	if _, err := d.Retire(t.Context(), n, plan, plan.Nodes[0]); err == nil || !strings.Contains(err.Error(), "no peer of channel") {
		t.Errorf("an orderer retired with no peer running: %v", err)
	}
}

// TestReshapeAddsOrderer: a new orderer of the ordering organisation gets
// an enrolment certificate with the orderer OU and a TLS certificate of
// that organisation's CAs, its orderer.yaml, and is Joining.
func TestReshapeAddsOrderer(t *testing.T) {
	n, plan := planFor(t, "two-orgs.good.yaml")
	n.Spec.Fabric.Orderers = 5
	add := []apis.NodeSpec{{Name: "orderer-3", Role: apis.RoleValidator, Organization: "orderer"}}
	ports := map[string]map[string]int{"orderer-3": {PortListen: 41001, PortAdmin: 41002, PortOperations: 41003}}
	next, err := New().Reshape(t.Context(), chain.ReshapeRequest{Network: n, Plan: plan, Add: add, Ports: ports, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pn := planned(t, next, "orderer-3")
	if !pn.Joining || pn.Role != apis.RoleValidator || chain.FileData(pn.Spec, fileOrdererYAML) == nil {
		t.Errorf("orderer-3: joining %v, role %s, orderer.yaml %v; want a joining validator with its orderer.yaml", pn.Joining, pn.Role, chain.FileData(pn.Spec, fileOrdererYAML) != nil)
	}
	c, err := consenterOf(next, pn)
	if err != nil {
		t.Fatal(err)
	}
	o, err := loadOrg(next, "orderer", "fab")
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "127.0.0.1" || c.Port != 41001 || c.MSPID != "OrdererMSP" {
		t.Errorf("consenter %+v, want 127.0.0.1:41001 of OrdererMSP", c)
	}
	if _, err := c.ServerTLSCert.Verify(x509.VerifyOptions{Roots: pool(o.cas.TLS.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("orderer-3's TLS certificate: %v", err)
	}
	msp := mustCert(t, chain.FileData(pn.Spec, dirMSP+"/"+pki.MSPSignCert))
	if !slices.Equal(msp.Subject.OrganizationalUnit, []string{"orderer"}) {
		t.Errorf("orderer-3's enrolment certificate has OUs %q, want orderer", msp.Subject.OrganizationalUnit)
	}
	if _, err := msp.Verify(x509.VerifyOptions{Roots: pool(o.cas.MSP.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("orderer-3's enrolment certificate: %v", err)
	}
}

// TestReshapeRemoves: a removed peer leaves the plan; the others and every
// artifact (its organisation's CAs among them) stay.
func TestReshapeRemoves(t *testing.T) {
	n, plan := planFor(t, "two-orgs.good.yaml")
	next, err := New().Reshape(t.Context(), chain.ReshapeRequest{Network: n, Plan: plan, Remove: []string{"org2-peer-1"}, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Nodes) != len(plan.Nodes)-1 || slices.ContainsFunc(next.Nodes, func(pn chain.PlannedNode) bool { return pn.Name == "org2-peer-1" }) {
		t.Errorf("nodes after removing org2-peer-1: %d of %d, want it alone gone", len(next.Nodes), len(plan.Nodes))
	}
	if len(next.Artifacts) != len(plan.Artifacts) || next.ChainID != plan.ChainID {
		t.Errorf("artifacts %d, channel %s; want %d and %s", len(next.Artifacts), next.ChainID, len(plan.Artifacts), plan.ChainID)
	}
	if len(plan.Nodes) != 7 {
		t.Errorf("the plan reshaped lost nodes: %d", len(plan.Nodes))
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
