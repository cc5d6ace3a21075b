package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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
	apis.SetDefaults(n)
	o, err := store.NetworkToObject(n)
	if err != nil {
		t.Fatal(err)
	}
	if o, err = tn.store.Create(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	n.Metadata.UID = o.UID
	plan := tn.planNetwork(n)

	// Running, every node of the spec up.
	now := time.Now().UTC()
	n, _ = store.ObjectToNetwork(o)
	n.Status.Phase, n.Status.RunningSince = apis.PhaseRunning, &now
	for _, ns := range n.Spec.Nodes() {
		n.Status.Nodes = append(n.Status.Nodes, apis.NodeStatus{Name: ns.Name, Role: ns.Role, Organization: ns.Organization, Phase: apis.NodeRunning})
	}
	if o, err = store.NetworkToObject(n); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.store.UpdateStatus(t.Context(), o); err != nil {
		t.Fatal(err)
	}

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
