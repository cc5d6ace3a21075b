package fabric

import (
	"slices"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

func TestValidateChannels(t *testing.T) {
	spec := func(chs ...apis.FabricChannel) *apis.NetworkSpec {
		return &apis.NetworkSpec{
			Organizations: []apis.OrganizationNodes{{Name: "org1", Peers: 1}, {Name: "org2", Peers: 1}},
			Fabric:        &apis.FabricSpec{Channel: "shared", Channels: chs},
		}
	}
	for _, tc := range []struct {
		name string
		spec *apis.NetworkSpec
		want []string
	}{
		{"none", spec(), nil},
		{"one of one organisation", spec(apis.FabricChannel{Name: "solo", Organizations: []string{"org2"}}), nil},
		{"with BFT", func() *apis.NetworkSpec {
			s := spec(apis.FabricChannel{Name: "solo", Organizations: []string{"org2"}})
			s.Fabric.Consensus = apis.FabricConsensusBFT
			return s
		}(), []string{"spec.fabric.channels"}},
		{"every problem", spec(
			apis.FabricChannel{Name: "Bad_Name", Organizations: []string{"org1"}},
			apis.FabricChannel{Name: "shared", Organizations: []string{"org1", "org9", "org1"}},
			apis.FabricChannel{Name: "empty"},
			apis.FabricChannel{Organizations: []string{"org2"}},
		), []string{
			"spec.fabric.channels[0].name",
			"spec.fabric.channels[1].name", "spec.fabric.channels[1].organizations[1]", "spec.fabric.channels[1].organizations[2]",
			"spec.fabric.channels[2].organizations",
			"spec.fabric.channels[3].name",
		}},
	} {
		var got []string
		for _, e := range validateChannels(tc.spec) {
			got = append(got, e.Field)
			if e.Detail == "" {
				t.Errorf("%s: %s has no detail", tc.name, e.Field)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: error fields %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestPlanChannels: a second channel's genesis block is among the plan's
// artifacts with its member organisations alone and every orderer as a
// consenter; no node keeps it, so a node's channel is the shared one.
func TestPlanChannels(t *testing.T) {
	n := decode(t, "two-orgs.good.yaml")
	n.Spec.Fabric.Channels = []apis.FabricChannel{{Name: "solo", Organizations: []string{"org2"}}}
	plan := planNetwork(t, n)
	cfg := blockConfig(t, plan, "solo")
	if hasOrg(cfg, MSPID("org1")) || !hasOrg(cfg, MSPID("org2")) {
		t.Errorf("channel solo: org1 a member %v, org2 %v; want org2 alone", hasOrg(cfg, MSPID("org1")), hasOrg(cfg, MSPID("org2")))
	}
	if cons, err := channel.Consenters(cfg); err != nil || len(cons) != 3 {
		t.Errorf("channel solo: consenters %v (%v), want the 3 orderers", cons, err)
	}
	for _, pn := range plan.Nodes {
		if got := channelOf(pn.Spec); got != plan.ChainID {
			t.Errorf("%s keeps the genesis block of %q, want the shared channel %s", pn.Name, got, plan.ChainID)
		}
	}
	var names []string
	for _, c := range channelsOfOrg(n, "org2") {
		names = append(names, c.name)
	}
	if !slices.Equal(names, []string{plan.ChainID, "solo"}) {
		t.Errorf("channels of org2: %v", names)
	}
	if got := channelsOfOrg(n, "org1"); len(got) != 1 {
		t.Errorf("channels of org1: %v, want the shared one", got)
	}
}

// TestMemberOfAChannelStays: an organisation that leaves the network
// leaves its other channels too: a spec that names it in one still is
// refused.
func TestMemberOfAChannelStays(t *testing.T) {
	old := decode(t, "two-orgs.good.yaml").Spec
	old.Fabric.Channels = []apis.FabricChannel{{Name: "solo", Organizations: []string{"org2"}}}
	spec := old
	spec.Organizations = old.Organizations[:1]
	errs := New().ValidateScale(&old, &spec, runningStatus(&old))
	if len(errs) != 1 || errs[0].Field != "spec.fabric.channels[0].organizations[0]" {
		t.Errorf("org2 leaving: %v, want one error on spec.fabric.channels[0].organizations[0]", errs)
	}
	spec.Organizations = old.Organizations[1:]
	if errs := New().ValidateScale(&old, &spec, runningStatus(&old)); len(errs) != 0 {
		t.Errorf("org1 leaving: %v, want none", errs)
	}
}
