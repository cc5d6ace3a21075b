package fabric

import (
	"crypto/ecdsa"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

// running is n with every planned node running, as the controller
// reports it.
func running(n *apis.Network, plan *chain.Plan) *apis.Network {
	out := *n
	out.Status.Nodes = nil
	for _, pn := range plan.Nodes {
		out.Status.Nodes = append(out.Status.Nodes, apis.NodeStatus{Name: pn.Name, Role: pn.Role, Phase: apis.NodeRunning})
	}
	return &out
}

// bootstrapped is plan with its nodes members of the network, as after the
// network bootstrapped.
func bootstrapped(plan *chain.Plan) *chain.Plan {
	for i := range plan.Nodes {
		plan.Nodes[i].Joining = false
	}
	return plan
}

func TestCertificatesDue(t *testing.T) {
	n := decode(t, "two-orgs.good.yaml")
	plan := bootstrapped(planNetwork(t, n))
	now := time.Now()
	certs, err := Certificates(&n.Spec, plan, now)
	if err != nil {
		t.Fatal(err)
	}
	nodes := 0
	for _, pn := range plan.Nodes {
		if pn.Role != apis.RoleChaincode {
			nodes++
		}
	}
	// Two a node; an admin's two and a peer organisation's application
	// identity for each organisation.
	if want := 2*nodes + 2 + 3*len(n.Spec.Organizations); len(certs) != want {
		t.Fatalf("%d certificates, want %d", len(certs), want)
	}
	for _, c := range certs {
		if c.Due != "" {
			t.Errorf("%s %s of a new plan is due: %s", c.Owner, c.Kind, c.Due)
		}
		life := c.NotAfter.Sub(c.NotBefore)
		if got := c.RenewAt.Sub(c.NotBefore); got < life*2/3-time.Second || got > life*2/3+time.Second {
			t.Errorf("%s %s renewed %s after its start, want two thirds of %s", c.Owner, c.Kind, got, life)
		}
	}
	if got := renewing(&n.Spec, plan, now); got != "" {
		t.Errorf("a new plan is renewing: %s", got)
	}

	// Eight months and a day on, every certificate is due.
	later := now.Add(244 * 24 * time.Hour)
	certs, err = Certificates(&n.Spec, plan, later)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if !strings.HasPrefix(c.Due, "it expires at ") {
			t.Errorf("%s %s is not due eight months on: %q", c.Owner, c.Kind, c.Due)
		}
	}
	// A renewal asked for: due once its time has come.
	at := now.Add(time.Hour)
	n.Spec.Fabric.RenewCertificates = &at
	if got := renewing(&n.Spec, plan, now); got != "" {
		t.Errorf("renewing before the time asked for: %s", got)
	}
	got := renewing(&n.Spec, plan, at)
	for _, want := range []string{"the identities of orderer", "the identities of org1", "orderer-0", "org2-peer-0"} {
		if !strings.Contains(got, want) {
			t.Errorf("renewing %q, want %s in it", got, want)
		}
	}
}

// TestRenewCertificatesSteps renews a plan's certificates asked for as
// the controller would, up to the first node, which waits for every node
// to run: the organisations' identities all at once, in the plan.
func TestRenewCertificatesSteps(t *testing.T) {
	n := decode(t, "two-orgs.good.yaml")
	plan := bootstrapped(planNetwork(t, n))
	at := time.Now().Add(time.Second)
	n.Spec.Fabric.RenewCertificates = &at
	time.Sleep(time.Until(at))
	d := New()
	before, err := Certificates(&n.Spec, plan, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Reconfigure(t.Context(), n, plan)
	if err != nil || res.Plan == nil || !strings.Contains(res.Done, "renewed the certificates orgs/orderer/admin/msp") {
		t.Fatalf("first step: %+v, %v; want the organisations' identities renewed", res, err)
	}
	after, err := Certificates(&n.Spec, res.Plan, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	byKey := func(cs []chain.Certificate) map[string]chain.Certificate {
		m := map[string]chain.Certificate{}
		for _, c := range cs {
			m[c.Owner+" "+c.Kind] = c
		}
		return m
	}
	was := byKey(before)
	for key, c := range byKey(after) {
		node := strings.Contains(key, "-")
		if renewed := c.Serial != was[key].Serial; renewed == node {
			t.Errorf("%s renewed: %v, want %v", key, renewed, !node)
		}
	}
	// The keys stay: the admin signs with its key and its new certificate.
	a, err := loadAdmin(res.Plan, "org1")
	if err != nil {
		t.Fatal(err)
	}
	old, err := loadAdmin(plan, "org1")
	if err != nil {
		t.Fatal(err)
	}
	if a.signer.Certificate.Equal(old.signer.Certificate) || !a.signer.Certificate.PublicKey.(*ecdsa.PublicKey).Equal(old.signer.Certificate.PublicKey) {
		t.Error("the admin's certificate was not renewed for its key")
	}

	// Then the nodes, one at a time, while every node runs.
	st := running(n, res.Plan)
	st.Status.Nodes[len(st.Status.Nodes)-2].Phase = apis.NodeStarting
	waiting := st.Status.Nodes[len(st.Status.Nodes)-2].Name
	res, err = d.Reconfigure(t.Context(), st, res.Plan)
	if err != nil || res.Plan != nil || !strings.Contains(res.Pending, "renewing the certificates of orderer-0 (renewal asked for at") || !strings.HasSuffix(res.Pending, "waiting for "+waiting+" to run") {
		t.Errorf("a node down: %+v, %v; want orderer-0 waiting for %s", res, err, waiting)
	}
	if got := d.Reconfiguring(&n.Spec, plan); !strings.Contains(got, "renewing the certificates of the identities of orderer") {
		t.Errorf("reconfiguring %q, want the renewal", got)
	}
}

// TestBFTOrderersNotRenewed: of a BFT network the peers' and the
// organisations' certificates are renewed, not the orderers'.
func TestBFTOrderersNotRenewed(t *testing.T) {
	n := decode(t, "bft.good.yaml")
	plan := bootstrapped(planNetwork(t, n))
	at := time.Now().Add(time.Hour)
	n.Spec.Fabric.RenewCertificates = &at
	certs, err := Certificates(&n.Spec, plan, at)
	if err != nil {
		t.Fatal(err)
	}
	orderers := 0
	for _, c := range certs {
		orderer := strings.HasPrefix(c.Owner, "orderer-")
		if orderer {
			orderers++
		}
		if due := c.Due != "" && !c.RenewAt.IsZero(); due == orderer {
			t.Errorf("%s %s: due %q, renewed at %s", c.Owner, c.Kind, c.Due, c.RenewAt)
		}
	}
	if orderers == 0 {
		t.Fatal("no orderer certificates")
	}
	if got := renewing(&n.Spec, plan, at); strings.Contains(got, "orderer-") || !strings.Contains(got, "-peer-") {
		t.Errorf("renewing %q, want the peers and not the orderers", got)
	}
}
