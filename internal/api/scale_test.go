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
		{name: "peers elsewhere", spec: apis.NetworkSpec{Chain: "cometbft", Validators: 1}, req: ScaleRequest{Peers: n(2)}, fields: []string{"peers"}},
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
