package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	"github.com/chaindock/chaindock/internal/store"
)

// fabricNetwork stores a planned Fabric network of org1 and org2 (one
// peer each) owned by org1, shared in consortium when given: a network
// whose plan holds the organisations' CAs, without running its nodes.
func (tn *tenants) fabricNetwork(name, consortium string) *chain.Plan {
	tn.t.Helper()
	n := &apis.Network{
		APIVersion: "chaindock/v1", Kind: apis.KindNetwork,
		Metadata: apis.ObjectMeta{Name: name, Owner: "org1"},
		Spec: apis.NetworkSpec{Chain: apis.ChainFabric, Runtime: "process", Consortium: consortium,
			Organizations: []apis.OrganizationNodes{{Name: "org1", Peers: 1}, {Name: "org2", Peers: 1}},
			Fabric:        &apis.FabricSpec{Orderers: 1}},
	}
	return tn.storeFabric(n)
}

// runFabric records stored network name as Running, every node of its
// spec up but those of organisation down, when given, which crashed.
func (tn *tenants) runFabric(name, down string) *apis.Network {
	tn.t.Helper()
	o, err := tn.store.Get(tn.t.Context(), apis.KindNetwork, name)
	if err != nil {
		tn.t.Fatal(err)
	}
	n, err := store.ObjectToNetwork(o)
	if err != nil {
		tn.t.Fatal(err)
	}
	now := time.Now().UTC()
	n.Status.Phase, n.Status.RunningSince = apis.PhaseRunning, &now
	for _, ns := range n.Spec.Nodes() {
		phase := apis.NodeRunning
		if ns.Organization == down {
			phase = apis.NodeCrashed
		}
		n.Status.Nodes = append(n.Status.Nodes, apis.NodeStatus{Name: ns.Name, Role: ns.Role, Organization: ns.Organization, Phase: phase})
	}
	if o, err = store.NetworkToObject(n); err != nil {
		tn.t.Fatal(err)
	}
	if _, err := tn.store.UpdateStatus(tn.t.Context(), o); err != nil {
		tn.t.Fatal(err)
	}
	return n
}

// storeFabric stores Fabric network n, with its defaults and the UID the
// store gives it, and its plan, as the controller would before starting
// its nodes.
func (tn *tenants) storeFabric(n *apis.Network) *chain.Plan {
	tn.t.Helper()
	apis.SetDefaults(n)
	o, err := store.NetworkToObject(n)
	if err != nil {
		tn.t.Fatal(err)
	}
	if o, err = tn.store.Create(tn.t.Context(), o); err != nil {
		tn.t.Fatal(err)
	}
	n.Metadata.UID = o.UID
	d := fabric.New()
	ports := map[string]map[string]int{}
	next := 41000
	for _, ns := range n.Spec.Nodes() {
		ports[ns.Name] = map[string]int{}
		for _, p := range d.PortNames(&n.Spec, ns.Role) {
			ports[ns.Name][p] = next
			next++
		}
	}
	plan, err := d.Plan(tn.t.Context(), chain.PlanRequest{Network: n, Ports: ports, Host: "127.0.0.1"})
	if err != nil {
		tn.t.Fatal(err)
	}
	b, err := json.Marshal(plan)
	if err != nil {
		tn.t.Fatal(err)
	}
	if err := tn.store.PutBlob(tn.t.Context(), n.Metadata.UID, store.PlanBlob, b); err != nil {
		tn.t.Fatal(err)
	}
	return plan
}

func newCSR(t *testing.T, curve elliptic.Curve, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestIdentities: enrolment with and without a CSR, what the answer
// carries, listing without keys, removal, the checks of every field, and
// who may do it.
func TestIdentities(t *testing.T) {
	tn := newTenants(t)
	plan := tn.fabricNetwork("fab", "")
	a1, m1, au1, a2, out := tn.callers["a1"], tn.callers["m1"], tn.callers["au1"], tn.callers["a2"], tn.callers["out"]
	base := "/api/v1/networks/fab/identities"

	var app1 api.Identity
	tn.decode(tn.must(m1, "POST", base, `{"organization":"org2","name":"app1"}`, 201), &app1)
	ca, err := pki.ParseCertPEM(plan.Artifact("orgs/org2/ca/cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM([]byte(app1.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil || cert.Subject.CommonName != "app1" || !slices.Equal(cert.Subject.OrganizationalUnit, []string{"client"}) {
		t.Fatalf("certificate %s %v (%v); want app1, OU client, signed by org2's CA", cert.Subject.CommonName, cert.Subject.OrganizationalUnit, err)
	}
	key, err := pki.ParseKeyPEM([]byte(app1.PrivateKey))
	if err != nil || !key.PublicKey.Equal(cert.PublicKey) || !app1.KeyHeld {
		t.Fatalf("private key: %v, key held %v; want the certificate's key, held", err, app1.KeyHeld)
	}
	if app1.MSPID != "Org2MSP" || len(app1.Peers) != 1 || app1.Peers[0].Name != "org2-peer-0" || app1.Peers[0].TLSHostName != "127.0.0.1" ||
		len(app1.TLSCACertificates) != 1 || app1.TLSCACertificates[0] != string(plan.Artifact("orgs/org2/tlsca/cert.pem")) || app1.CreatedBy != "user:m1" {
		t.Fatalf("enrolment: %+v", app1)
	}
	// The key is sealed in the store, with the identity, and never shown
	// again.
	objs, err := tn.store.List(t.Context(), api.KindIdentity)
	if err != nil || len(objs) != 1 || strings.Contains(string(objs[0].Spec), "PRIVATE KEY") {
		t.Fatalf("stored identities: %d (%v); want one, without its key in the spec", len(objs), err)
	}
	if k, err := tn.store.GetBlob(t.Context(), objs[0].UID, "key"); err != nil || string(k) != app1.PrivateKey {
		t.Fatalf("the stored key: %v", err)
	}
	var got api.Identity
	tn.decode(tn.must(a1, "GET", base+"/org2/app1", "", 200), &got)
	if got.PrivateKey != "" || got.Certificate != app1.Certificate || !got.KeyHeld {
		t.Fatalf("GET: %+v", got)
	}

	// With a CSR: the request's key, none returned or held.
	var app2 api.Identity
	tn.decode(tn.must(a1, "POST", base, fmt.Sprintf(`{"organization":"org1","name":"app2","csr":%q}`, newCSR(t, elliptic.P256(), "app2")), 201), &app2)
	if app2.PrivateKey != "" || app2.KeyHeld || app2.MSPID != "Org1MSP" {
		t.Fatalf("CSR enrolment: %+v", app2)
	}
	var list api.IdentityList
	tn.decode(tn.must(a1, "GET", base, "", 200), &list)
	if len(list.Items) != 2 || list.Items[0].PrivateKey != "" || list.Items[1].PrivateKey != "" {
		t.Fatalf("list: %+v", list.Items)
	}
	tn.decode(tn.must(a1, "GET", base+"?organization=org1", "", 200), &list)
	if len(list.Items) != 1 || list.Items[0].Name != "app2" {
		t.Fatalf("list of org1: %+v", list.Items)
	}

	// Every field checked, nothing stored.
	for _, c := range []struct {
		body   string
		code   int
		fields []string
		say    string
	}{
		{`{"organization":"org2","name":"app1"}`, 409, []string{"name"}, "already enrolled"},
		{`{"name":"App_1"}`, 400, []string{"organization", "name"}, "no identity name"},
		{`{"organization":"org9","name":"app3"}`, 400, []string{"organization"}, `"org9" is no peer organisation`},
		{`{"organization":"orderer","name":"app3"}`, 400, []string{"organization"}, "no peer organisation"},
		{fmt.Sprintf(`{"organization":"org1","name":"app3","csr":%q}`, newCSR(t, elliptic.P384(), "app3")), 400, []string{"csr"}, "P-384; want P-256"},
		{fmt.Sprintf(`{"organization":"org1","name":"app3","csr":%q}`, newCSR(t, elliptic.P256(), "other")), 400, []string{"csr"}, `want the identity's name "app3"`},
		{`{"organization":"org1","name":"app3","key":"x"}`, 400, nil, "unknown field"},
	} {
		code, body := tn.call(a1, "POST", base, c.body)
		var p api.Problem
		_ = json.Unmarshal(body, &p)
		var fields []string
		text := p.Detail
		for _, e := range p.Errors {
			fields = append(fields, e.Field)
			text += "; " + e.Detail
		}
		if code != c.code || !slices.Equal(fields, c.fields) || !strings.Contains(text, c.say) {
			t.Errorf("%s: %d %s; want %d with fields %v saying %q", c.body, code, body, c.code, c.fields, c.say)
		}
	}
	if objs, _ := tn.store.List(t.Context(), api.KindIdentity); len(objs) != 2 {
		t.Fatalf("%d identities stored after refusals; want 2", len(objs))
	}
	code, body := tn.call(a1, "POST", "/api/v1/networks/net1/identities", `{"organization":"org1","name":"app1"}`)
	if code != 400 || !strings.Contains(string(body), "fabric networks only") {
		t.Errorf("a CometBFT network: %d %s; want 400", code, body)
	}

	// Who may: the owner's admins and members (the owner of an unshared
	// network signs as any of its organisations), not its auditors nor
	// others, who do not see the network.
	tn.must(au1, "POST", base, `{"organization":"org1","name":"app4"}`, 403)
	tn.must(a2, "POST", base, `{"organization":"org2","name":"app4"}`, 404)
	tn.must(out, "GET", base, "", 404)
	tn.must(a2, "GET", base+"/org2/app1", "", 404)

	// Removal revokes the certificate on the channel first: with no
	// peer running that fails, and the identity is kept.
	code, body = tn.call(m1, "DELETE", base+"/org2/app1", "")
	if code != 503 || !strings.Contains(string(body), "is kept") || !strings.Contains(string(body), "revoke=false") {
		t.Fatalf("removal with revocation, the network not running: %d %s; want 503, the identity kept", code, body)
	}
	tn.must(a1, "GET", base+"/org2/app1", "", 200)
	tn.must(m1, "DELETE", base+"/org2/app1?revoke=maybe", "", 400)
	// Without revocation: gone from the platform, the name free again.
	tn.must(m1, "DELETE", base+"/org2/app1?revoke=false", "", 204)
	tn.must(a1, "GET", base+"/org2/app1", "", 404)
	tn.must(a1, "DELETE", base+"/org2/app1?revoke=false", "", 404)
	if objs, _ := tn.store.List(t.Context(), api.KindIdentity); len(objs) != 1 {
		t.Fatalf("%d identities stored after removal; want 1", len(objs))
	}
	tn.must(a1, "POST", base, `{"organization":"org2","name":"app1"}`, 201)

	// Enrolments and removals are audited.
	var audit struct {
		Items []store.AuditEntry `json:"items"`
	}
	tn.decode(tn.must(a1, "GET", "/api/v1/audit?org=org1", "", 200), &audit)
	seen := map[string]bool{}
	for _, e := range audit.Items {
		if strings.Contains(e.Action, "/identities") && e.Result == "succeeded" {
			seen[e.Action] = true
		}
	}
	if !seen["POST /api/v1/networks/{name}/identities"] || !seen["DELETE /api/v1/networks/{name}/identities/{org}/{identity}"] {
		t.Errorf("audited: %v; want the enrolments and the removal", seen)
	}
}

// TestIdentitiesShared: in a consortium's network a member organisation
// enrols, sees and removes only its own organisation's identities.
func TestIdentitiesShared(t *testing.T) {
	tn := newTenants(t)
	a1, a2 := tn.callers["a1"], tn.callers["a2"]
	tn.must(a1, "POST", "/api/v1/consortia", `{"name":"c1","owner":"org1"}`, 201)
	var inv api.Invitation
	tn.decode(tn.must(a1, "POST", "/api/v1/consortia/c1/invitations", `{"org":"org2"}`, 201), &inv)
	tn.must(a2, "POST", "/api/v1/invitations/"+inv.ID+"/accept", "", 200)
	tn.fabricNetwork("shared", "c1")
	base := "/api/v1/networks/shared/identities"

	tn.must(a2, "POST", base, `{"organization":"org2","name":"app1"}`, 201)
	tn.must(a1, "POST", base, `{"organization":"org1","name":"app1"}`, 201)
	code, body := tn.call(a2, "POST", base, `{"organization":"org1","name":"app2"}`)
	if code != 403 || !strings.Contains(string(body), "no organisation org1") {
		t.Fatalf("org2 enrolling for org1: %d %s; want 403", code, body)
	}
	tn.must(a2, "GET", base+"?organization=org1", "", 403)
	tn.must(a2, "GET", base+"/org1/app1", "", 403)
	tn.must(a2, "DELETE", base+"/org1/app1", "", 403)
	var list api.IdentityList
	tn.decode(tn.must(a2, "GET", base, "", 200), &list)
	if len(list.Items) != 1 || list.Items[0].Organization != "org2" {
		t.Fatalf("org2's list: %+v; want its own identity only", list.Items)
	}
	tn.decode(tn.must(tn.callers["root"], "GET", base, "", 200), &list)
	if len(list.Items) != 2 {
		t.Fatalf("the platform administrator's list: %+v; want both", list.Items)
	}
}

// TestRenewIdentity: a held key's identity is renewed for that key, a
// CSR's for a new request; the expiry is shown; what is refused leaves
// the identity as it was.
func TestRenewIdentity(t *testing.T) {
	tn := newTenants(t)
	plan := tn.fabricNetwork("fab", "")
	a1 := tn.callers["a1"]
	base := "/api/v1/networks/fab/identities"
	ca, err := pki.ParseCertPEM(plan.Artifact("orgs/org1/ca/cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	parse := func(id api.Identity) *x509.Certificate {
		t.Helper()
		c, err := pki.ParseCertPEM([]byte(id.Certificate))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckSignatureFrom(ca); err != nil || c.Subject.CommonName != id.Name || !slices.Equal(c.Subject.OrganizationalUnit, []string{"client"}) {
			t.Fatalf("certificate of %s: CN %s OU %v (%v); want its name, OU client, signed by org1's CA", id.Name, c.Subject.CommonName, c.Subject.OrganizationalUnit, err)
		}
		if !id.NotAfter.Equal(c.NotAfter) {
			t.Fatalf("notAfter %v; the certificate says %v", id.NotAfter, c.NotAfter)
		}
		return c
	}

	var held api.Identity
	tn.decode(tn.must(a1, "POST", base, `{"organization":"org1","name":"held"}`, 201), &held)
	before := parse(held)
	var renewed api.Identity
	tn.decode(tn.must(a1, "POST", base+"/org1/held/renew", `{}`, 200), &renewed)
	after := parse(renewed)
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 || !after.PublicKey.(*ecdsa.PublicKey).Equal(before.PublicKey) ||
		renewed.PrivateKey != "" || !renewed.KeyHeld || renewed.NotAfter.Before(held.NotAfter) {
		t.Fatalf("renewed %+v; want a new certificate for the same key, no key shown", renewed)
	}
	var got api.Identity
	tn.decode(tn.must(a1, "GET", base+"/org1/held", "", 200), &got)
	if got.Certificate != renewed.Certificate {
		t.Fatal("GET after renewal shows the previous certificate")
	}
	// The held key signs with the new certificate.
	objs, err := tn.store.List(t.Context(), api.KindIdentity)
	if err != nil || len(objs) != 1 {
		t.Fatalf("stored identities: %d (%v)", len(objs), err)
	}
	k, err := tn.store.GetBlob(t.Context(), objs[0].UID, "key")
	if err != nil {
		t.Fatal(err)
	}
	if key, err := pki.ParseKeyPEM(k); err != nil || !key.PublicKey.Equal(after.PublicKey) {
		t.Fatalf("the held key (%v) is not the renewed certificate's", err)
	}

	var csrID api.Identity
	tn.decode(tn.must(a1, "POST", base, fmt.Sprintf(`{"organization":"org1","name":"own","csr":%q}`, newCSR(t, elliptic.P256(), "own")), 201), &csrID)
	first := parse(csrID)
	tn.decode(tn.must(a1, "POST", base+"/org1/own/renew", fmt.Sprintf(`{"csr":%q}`, newCSR(t, elliptic.P256(), "own")), 200), &renewed)
	if second := parse(renewed); second.PublicKey.(*ecdsa.PublicKey).Equal(first.PublicKey) || renewed.KeyHeld {
		t.Fatalf("renewed from a new CSR: %+v; want the new request's key", renewed)
	}

	stored := func() map[string]string {
		objs, err := tn.store.List(t.Context(), api.KindIdentity)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, o := range objs {
			m[o.Name] = string(o.Spec)
		}
		return m
	}
	was := stored()
	for _, c := range []struct {
		who  string
		path string
		body string
		code int
		say  string
	}{
		{"a1", "/org1/held/renew", fmt.Sprintf(`{"csr":%q}`, newCSR(t, elliptic.P256(), "held")), 400, "held by the platform"},
		{"a1", "/org1/own/renew", `{}`, 400, "csr: is required"},
		{"a1", "/org1/own/renew", fmt.Sprintf(`{"csr":%q}`, newCSR(t, elliptic.P256(), "other")), 400, `want the identity's name "own"`},
		{"a1", "/org1/own/renew", fmt.Sprintf(`{"csr":%q}`, newCSR(t, elliptic.P384(), "own")), 400, "P-384"},
		{"a1", "/org1/own/renew", `{"key":"x"}`, 400, "unknown field"},
		{"a1", "/org1/gone/renew", `{}`, 404, "identity gone of organisation org1"},
		{"au1", "/org1/held/renew", `{}`, 403, ""},
		// Revoking the previous certificate needs a running peer: with
		// none, nothing is renewed.
		{"a1", "/org1/held/renew", `{"revokePrevious":true}`, 503, "is not renewed"},
	} {
		code, body := tn.call(tn.callers[c.who], "POST", base+c.path, c.body)
		var p api.Problem
		_ = json.Unmarshal(body, &p)
		text := p.Detail
		for _, e := range p.Errors {
			text += "; " + e.Field + ": " + e.Detail
		}
		if code != c.code || !strings.Contains(text, c.say) {
			t.Errorf("%s %s %s: %d %s; want %d saying %q", c.who, c.path, c.body, code, body, c.code, c.say)
		}
	}
	if now := stored(); !maps.Equal(now, was) {
		t.Errorf("refused renewals changed the stored identities")
	}
}
