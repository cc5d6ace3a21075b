package api

import (
	"slices"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
)

// TestApplyPeers: a Fabric network's organizations change by peers, and
// an organization it does not have is added at the end, one with peers 0
// taken out; validators and fullNodes are for the other chains.
func TestApplyPeers(t *testing.T) {
	n := func(k int) *int { return &k }
	fabric := func() apis.NetworkSpec {
		return apis.NetworkSpec{Chain: apis.ChainFabric, Organizations: []apis.OrganizationNodes{{Name: "org1", Peers: 1}, {Name: "org2", Peers: 1}}}
	}
	withOrderers := fabric()
	if errs := applyScale(&withOrderers, ScaleRequest{Orderers: n(5)}); len(errs) > 0 || withOrderers.Fabric.OrdererCount() != 5 || len(withOrderers.Organizations) != 2 {
		t.Errorf("orderers 5: %v, fabric %+v", errs, withOrderers.Fabric)
	}
	shared := fabric()
	shared.Fabric = &apis.FabricSpec{Orderers: 3}
	before := shared.Fabric
	if errs := applyScale(&shared, ScaleRequest{Orderers: n(1)}); len(errs) > 0 || before.Orderers != 3 || shared.Fabric.Orderers != 1 {
		t.Errorf("orderers 1: %v; the spec it was copied from has %d orderers, want 3 (a copy changed)", errs, before.Orderers)
	}
	for _, tc := range []struct {
		name   string
		spec   apis.NetworkSpec
		req    ScaleRequest
		want   []apis.OrganizationNodes
		fields []string
	}{
		{name: "a peer", spec: fabric(), req: ScaleRequest{Organization: "org2", Peers: n(3)},
			want: []apis.OrganizationNodes{{Name: "org1", Peers: 1}, {Name: "org2", Peers: 3}}},
		{name: "an organization", spec: fabric(), req: ScaleRequest{Organization: "org3", Peers: n(1)},
			want: []apis.OrganizationNodes{{Name: "org1", Peers: 1}, {Name: "org2", Peers: 1}, {Name: "org3", Peers: 1}}},
		{name: "an organization out", spec: fabric(), req: ScaleRequest{Organization: "org1", Peers: n(0)},
			want: []apis.OrganizationNodes{{Name: "org2", Peers: 1}}},
		{name: "out, of none", spec: fabric(), req: ScaleRequest{Organization: "org9", Peers: n(0)}, fields: []string{"organization"}},
		{name: "no organization", spec: fabric(), req: ScaleRequest{Peers: n(1)}, fields: []string{"organization"}},
		{name: "no peers", spec: fabric(), req: ScaleRequest{Organization: "org1", FullNodes: n(2)}, fields: []string{"", "peers"}},
		{name: "peers elsewhere", spec: apis.NetworkSpec{Chain: "cometbft", Validators: 1}, req: ScaleRequest{Peers: n(2)}, fields: []string{""}},
		{name: "orderers elsewhere", spec: apis.NetworkSpec{Chain: "cometbft", Validators: 1}, req: ScaleRequest{Orderers: n(3)}, fields: []string{""}},
		{name: "orderers and peers at once", spec: fabric(), req: ScaleRequest{Organization: "org1", Peers: n(2), Orderers: n(5)}, fields: []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			errs := applyScale(&spec, tc.req)
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			if !slices.Equal(fields, tc.fields) {
				t.Fatalf("error fields %q, want %q (%v)", fields, tc.fields, errs)
			}
			if tc.want != nil && !slices.Equal(spec.Organizations, tc.want) {
				t.Errorf("organizations %+v, want %+v", spec.Organizations, tc.want)
			}
		})
	}
}
