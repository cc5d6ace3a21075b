package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/store"
)

// TestScaleWhileMembersChange: a running Fabric network's peers are not
// added while the members of one of its channels are still changing (its
// plan has yet to record those of its spec), and are once they have.
func TestScaleWhileMembersChange(t *testing.T) {
	tn := newTenants(t, apis.ChainFabric)
	a1 := tn.callers["a1"]
	n := &apis.Network{
		APIVersion: "chaindock/v1", Kind: apis.KindNetwork,
		Metadata: apis.ObjectMeta{Name: "fab", Owner: "org1"},
		Spec: apis.NetworkSpec{Chain: apis.ChainFabric, Runtime: "process",
			Organizations: []apis.OrganizationNodes{{Name: "org1", Peers: 1}, {Name: "org2", Peers: 1}, {Name: "org3", Peers: 1}},
			Fabric:        &apis.FabricSpec{Orderers: 1, Channels: []apis.FabricChannel{{Name: "pair", Organizations: []string{"org1", "org2"}}}}},
	}
	plan := tn.storeFabric(n)

	// Running, every node of the spec up.
	n = tn.runFabric("fab", "")

	tn.must(a1, "PUT", "/api/v1/networks/fab/channels/pair", `{"organizations":["org1","org2","org3"]}`, 202)
	b := tn.must(a1, "PUT", "/api/v1/networks/fab/scale", `{"organization":"org3","peers":2}`, 409)
	if !strings.Contains(string(b), "channel pair: adding org3") {
		t.Errorf("scaled while org3 joins channel pair: %s; want the change under way named", b)
	}

	// The controller recorded org3 a member of pair.
	rec, err := json.Marshal([]string{"org1", "org2", "org3"})
	if err != nil {
		t.Fatal(err)
	}
	done := *plan
	done.Artifacts = nil
	for _, f := range plan.Artifacts {
		if f.Path != "channel/pair.members" {
			done.Artifacts = append(done.Artifacts, f)
		}
	}
	done.Artifacts = append(done.Artifacts, runtime.File{Path: "channel/pair.members", Data: rec})
	storePlan(t, tn, n.Metadata.UID, &done)
	tn.must(a1, "PUT", "/api/v1/networks/fab/scale", `{"organization":"org3","peers":2}`, 202)
}

func storePlan(t *testing.T, tn *tenants, uid string, plan *chain.Plan) {
	t.Helper()
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.store.PutBlob(t.Context(), uid, store.PlanBlob, b); err != nil {
		t.Fatal(err)
	}
}
