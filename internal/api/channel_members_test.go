package api

import (
	"slices"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
)

func pairSpec() *apis.Network {
	return &apis.Network{
		Metadata: apis.ObjectMeta{Name: "net"},
		Spec: apis.NetworkSpec{
			Chain:         apis.ChainFabric,
			Organizations: []apis.OrganizationNodes{{Name: "org1", Peers: 1}, {Name: "org2", Peers: 1}, {Name: "org3", Peers: 1}},
			Fabric: &apis.FabricSpec{Channel: "everyone", Channels: []apis.FabricChannel{
				{Name: "pair", Organizations: []string{"org1", "org2"}},
				{Name: "solo", Organizations: []string{"org2"}},
			}},
		},
	}
}

// TestApplyChannelMembers: a channel of spec.fabric.channels gets the
// organizations asked for, in a copy of the spec's Fabric settings; what
// is wrong is named by field.
func TestApplyChannelMembers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		channel string
		orgs    []string
		index   int
		fields  []string
	}{
		{name: "org3 added", channel: "pair", orgs: []string{"org1", "org2", "org3"}, index: 0},
		{name: "org2 taken out", channel: "pair", orgs: []string{"org1"}, index: 0},
		{name: "the second channel", channel: "solo", orgs: []string{"org3"}, index: 1},
		{name: "an organization the network lacks", channel: "pair", orgs: []string{"org1", "org9"}, index: 0, fields: []string{"organizations[1]"}},
		{name: "named twice", channel: "pair", orgs: []string{"org1", "org2", "org1"}, index: 0, fields: []string{"organizations[2]"}},
		{name: "none", channel: "pair", orgs: nil, index: 0, fields: []string{"organizations"}},
		{name: "the shared channel", channel: "everyone", orgs: []string{"org1"}, index: -1, fields: []string{"channel"}},
		{name: "no such channel", channel: "nochannel", orgs: []string{"org1"}, index: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := pairSpec()
			before := n.Spec.Fabric
			i, errs := applyChannelMembers(n, tc.channel, ChannelMembersRequest{Organizations: tc.orgs})
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			if i != tc.index || !slices.Equal(fields, tc.fields) {
				t.Fatalf("index %d, error fields %q; want %d, %q (%v)", i, fields, tc.index, tc.fields, errs)
			}
			if len(errs) > 0 || i < 0 {
				if n.Spec.Fabric != before {
					t.Errorf("the spec changed though refused")
				}
				return
			}
			if got := n.Spec.Fabric.Channels[i].Organizations; !slices.Equal(got, tc.orgs) {
				t.Errorf("members %v, want %v", got, tc.orgs)
			}
			if was := pairSpec().Spec.Fabric.Channels[i].Organizations; !slices.Equal(before.Channels[i].Organizations, was) {
				t.Errorf("the spec it was copied from changed: %v, want %v", before.Channels[i].Organizations, was)
			}
		})
	}
	cb := pairSpec()
	cb.Spec.Chain = "cometbft"
	if i, errs := applyChannelMembers(cb, "pair", ChannelMembersRequest{Organizations: []string{"org1"}}); i != -1 || len(errs) > 0 {
		t.Errorf("a CometBFT network: %d, %v; want no channel", i, errs)
	}
}

// TestLeaveChannels: an organization that leaves a Fabric network leaves
// its channels, unless it is the only member of one.
func TestLeaveChannels(t *testing.T) {
	peers := 0
	n := pairSpec()
	before := n.Spec.Fabric
	if errs := applyScale(&n.Spec, ScaleRequest{Organization: "org1", Peers: &peers}); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := n.Spec.Fabric.Channels[0].Organizations; !slices.Equal(got, []string{"org2"}) {
		t.Errorf("pair after org1 left: %v, want org2", got)
	}
	if got := before.Channels[0].Organizations; !slices.Equal(got, []string{"org1", "org2"}) {
		t.Errorf("the spec it was copied from changed: %v", got)
	}
	n = pairSpec()
	errs := applyScale(&n.Spec, ScaleRequest{Organization: "org2", Peers: &peers})
	if len(errs) != 1 || errs[0].Field != "organization" {
		t.Errorf("org2, the only member of solo, leaving: %v; want one error on organization", errs)
	}
	n = pairSpec()
	if errs := applyScale(&n.Spec, ScaleRequest{Organization: "org3", Peers: &peers}); len(errs) > 0 || len(n.Spec.Fabric.Channels[0].Organizations) != 2 {
		t.Errorf("org3, of no channel, leaving: %v, channels %+v", errs, n.Spec.Fabric.Channels)
	}
}
