package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
)

// TestRenewCertificates: a Fabric network's certificates are listed with
// when each is renewed, and a renewal asked for is recorded in its spec,
// once per time, and refused for a network that is not Fabric; while it
// is due, the network's nodes are not changed.
func TestRenewCertificates(t *testing.T) {
	tn := newTenants(t, apis.ChainFabric)
	a1, m2, au1 := tn.callers["a1"], tn.callers["m2"], tn.callers["au1"]
	n := &apis.Network{
		APIVersion: "chaindock/v1", Kind: apis.KindNetwork,
		Metadata: apis.ObjectMeta{Name: "fab", Owner: "org1"},
		Spec: apis.NetworkSpec{Chain: apis.ChainFabric, Runtime: "process",
			Organizations: []apis.OrganizationNodes{{Name: "org1", Peers: 1}},
			Fabric:        &apis.FabricSpec{Orderers: 1}},
	}
	tn.storeFabric(n)
	tn.runFabric("fab", "")

	var list api.CertificateList
	tn.decode(tn.must(au1, "GET", "/api/v1/networks/fab/certificates", "", 200), &list)
	// An orderer and a peer, two each; two admins, two each; org1's
	// application identity.
	if len(list.Items) != 9 {
		t.Fatalf("%d certificates, want 9: %+v", len(list.Items), list.Items)
	}
	for _, c := range list.Items {
		if c.Due != "" || !c.RenewAt.After(time.Now()) || c.Serial == "" || (c.Kind != "tls" && c.Kind != "enrolment") {
			t.Errorf("certificate of a new network: %+v", c)
		}
	}
	tn.must(m2, "GET", "/api/v1/networks/fab/certificates", "", 404)
	tn.must(a1, "GET", "/api/v1/networks/net1/certificates", "", 400)

	const path = "/api/v1/networks/fab/certificates/renew"
	tn.must(au1, "POST", path, "", 403)
	tn.must(a1, "POST", path, `{"when":"now"}`, 400)
	tn.must(a1, "POST", path, `{"at":"yesterday"}`, 400)
	tn.must(a1, "POST", "/api/v1/networks/net1/certificates/renew", "", 409)
	// A second after the plan was made: its certificates, which keep
	// whole seconds, were issued before.
	time.Sleep(1100 * time.Millisecond)
	at := time.Now().UTC().Truncate(time.Second)
	body, _ := json.Marshal(api.RenewCertificatesRequest{At: &at})
	var got apis.Network
	tn.decode(tn.must(a1, "POST", path, string(body), 202), &got)
	if r := got.Spec.Fabric.RenewCertificates; r == nil || !r.Equal(at) {
		t.Fatalf("spec.fabric.renewCertificates %v, want %s", r, at)
	}
	tn.must(a1, "POST", path, string(body), 200)

	tn.decode(tn.must(au1, "GET", "/api/v1/networks/fab/certificates", "", 200), &list)
	for _, c := range list.Items {
		if !strings.HasPrefix(c.Due, "renewal asked for at ") {
			t.Errorf("%s %s after a renewal was asked for: due %q", c.Owner, c.Kind, c.Due)
		}
	}
	b := tn.must(a1, "PUT", "/api/v1/networks/fab/scale", `{"organization":"org1","peers":2}`, 409)
	if !strings.Contains(string(b), "renewing the certificates of") {
		t.Errorf("scaled while the certificates are due: %s", b)
	}

	// With no body: now, a second later.
	time.Sleep(time.Second)
	before := time.Now().UTC().Truncate(time.Second)
	tn.decode(tn.must(a1, "POST", path, "", 202), &got)
	if r := got.Spec.Fabric.RenewCertificates; r == nil || r.Before(before) || r.After(time.Now()) {
		t.Errorf("spec.fabric.renewCertificates %v, want now", r)
	}
}
