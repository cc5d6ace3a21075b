package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
)

// TestAddChannel: a channel is appended to a running Fabric network's
// spec.fabric.channels, checked as at creation (the errors naming the
// request's fields), once the network runs and each member has a peer
// running; while it is being made, the network's peers are not changed.
func TestAddChannel(t *testing.T) {
	tn := newTenants(t, apis.ChainFabric)
	a1 := tn.callers["a1"]
	n := &apis.Network{
		APIVersion: "chaindock/v1", Kind: apis.KindNetwork,
		Metadata: apis.ObjectMeta{Name: "fab", Owner: "org1"},
		Spec: apis.NetworkSpec{Chain: apis.ChainFabric, Runtime: "process",
			Organizations: []apis.OrganizationNodes{{Name: "org1", Peers: 1}, {Name: "org2", Peers: 1}, {Name: "org3", Peers: 1}},
			Fabric:        &apis.FabricSpec{Orderers: 1, Channels: []apis.FabricChannel{{Name: "pair", Organizations: []string{"org1", "org2"}}}}},
	}
	tn.storeFabric(n)

	const path = "/api/v1/networks/fab/channels"
	tn.must(a1, "POST", path, `{"name":"late","organizations":["org1","org3"]}`, 409) // not running yet

	// Running, every node of the spec up but org3's peer.
	tn.runFabric("fab", "org3")

	for _, tc := range []struct {
		body  string
		code  int
		field string
	}{
		{`{"name":"Late","organizations":["org1"]}`, 422, "name"},
		{`{"organizations":["org1"]}`, 422, "name"},
		{`{"name":"late","organizations":["org1","org4"]}`, 422, "organizations[1]"},
		{`{"name":"late","organizations":["org1","org1"]}`, 422, "organizations[1]"},
		{`{"name":"late"}`, 422, "organizations"},
		{`{"name":"pair","organizations":["org1"]}`, 409, "name"},
		{`{"name":"fab","organizations":["org1"]}`, 409, "name"},
		{`{"name":"late","organizations":["org1","org3"]}`, 409, "spec.fabric.channels[1].organizations[1]"},
	} {
		b := tn.must(a1, "POST", path, tc.body, tc.code)
		var p struct {
			Errors []apis.FieldError `json:"errors"`
		}
		if err := json.Unmarshal(b, &p); err != nil || len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: %s; want %q named first", tc.body, b, tc.field)
		}
	}

	b := tn.must(a1, "POST", path, `{"name":"late","organizations":["org1","org2"]}`, 202)
	var got apis.Network
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if cs := got.Spec.Fabric.Channels; len(cs) != 2 || cs[1].Name != "late" || strings.Join(cs[1].Organizations, ",") != "org1,org2" {
		t.Errorf("spec.fabric.channels after the request: %+v; want pair, then late of org1 and org2", cs)
	}
	b = tn.must(a1, "PUT", "/api/v1/networks/fab/scale", `{"organization":"org1","peers":2}`, 409)
	if !strings.Contains(string(b), "channel late: making it") {
		t.Errorf("scaled while channel late is made: %s; want it named", b)
	}
}
