package fabric

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/runtime"
)

// blockConfig is the configuration of the genesis block of channel ch
// among plan's artifacts.
func blockConfig(t *testing.T, plan *chain.Plan, ch string) *cb.Config {
	t.Helper()
	raw := plan.Artifact(BlockPath(ch))
	if raw == nil {
		t.Fatalf("the plan has no genesis block of %s", ch)
	}
	var b cb.Block
	if err := proto.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	cfg, err := channel.ConfigFromBlock(&b)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestValidateNewChannel(t *testing.T) {
	n, _ := pairNetwork(t)
	many := slices.Clone(n.Spec.Fabric.Channels)
	for i := len(many); i < maxChannels; i++ {
		many = append(many, apis.FabricChannel{Name: fmt.Sprintf("c%d", i), Organizations: []string{"org1"}})
	}
	for _, tc := range []struct {
		name string
		c    apis.FabricChannel
		spec func(s *apis.NetworkSpec)
		want []string
	}{
		{name: "good", c: apis.FabricChannel{Name: "late", Organizations: []string{"org1", "org3"}}},
		{name: "no name", c: apis.FabricChannel{Organizations: []string{"org1"}}, want: []string{"name"}},
		{name: "upper case", c: apis.FabricChannel{Name: "Late", Organizations: []string{"org1"}}, want: []string{"name"}},
		{name: "named twice", c: apis.FabricChannel{Name: "pair", Organizations: []string{"org1"}}, want: []string{"name"}},
		{name: "no members", c: apis.FabricChannel{Name: "late"}, want: []string{"organizations"}},
		{name: "unknown and twice", c: apis.FabricChannel{Name: "late", Organizations: []string{"org1", "org9", "org1"}}, want: []string{"organizations[1]", "organizations[2]"}},
		{name: "too many", c: apis.FabricChannel{Name: "late", Organizations: []string{"org1"}}, spec: func(s *apis.NetworkSpec) {
			s.Fabric.Channels = many
		}, want: []string{"spec.fabric.channels"}},
		{name: "BFT", c: apis.FabricChannel{Name: "late", Organizations: []string{"org1"}}, spec: func(s *apis.NetworkSpec) {
			s.Fabric.Consensus = apis.FabricConsensusBFT
		}, want: []string{"spec.fabric.channels"}},
	} {
		spec := n.Spec
		f := *spec.Fabric
		spec.Fabric = &f
		if tc.spec != nil {
			tc.spec(&spec)
		}
		var got []string
		for _, e := range ValidateNewChannel(&spec, tc.c) {
			got = append(got, e.Field)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: error fields %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestReconfigureMakesChannel: a channel of the spec the plan has no
// genesis block of is made by Reconfigure as Plan makes it when the
// network is created: the same block, its members recorded, and the
// channel marked as being made until its nodes have joined, which the
// reporter says.
func TestReconfigureMakesChannel(t *testing.T) {
	n, created := pairNetwork(t)
	// The network as if pair had been added once it ran.
	plan := *created
	plan.Artifacts = slices.DeleteFunc(slices.Clone(created.Artifacts), func(f runtime.File) bool {
		return f.Path == BlockPath("pair") || f.Path == membersPath("pair")
	})
	for i := range plan.Nodes {
		plan.Nodes[i].Joining = false
	}
	d := New()
	if got := d.Reconfiguring(&n.Spec, &plan); !strings.Contains(got, "channel pair: making it") {
		t.Errorf("before: %q under way, want channel pair being made", got)
	}
	// The first call records the block, and joins nothing: a block made
	// again would differ, so no node may have one the plan lacks.
	res, err := d.Reconfigure(t.Context(), n, &plan)
	if err != nil {
		t.Fatalf("recording the block: %v", err)
	}
	if !strings.Contains(res.Pending, "channel pair: making it") {
		t.Errorf("pending %q, want channel pair being made", res.Pending)
	}
	if res.Plan == nil {
		t.Fatal("the plan with the new channel is not returned to be stored")
	}
	// The same configuration; the block's header has the time it was
	// made.
	if got, want := blockConfig(t, res.Plan, "pair"), blockConfig(t, created, "pair"); !proto.Equal(got, want) {
		t.Errorf("genesis block of pair: configuration %v, not the one Plan makes, %v", got, want)
	}
	if rec := res.Plan.Artifact(membersPath("pair")); string(rec) != `["org1","org2"]` {
		t.Errorf("members recorded: %q, want org1 and org2", rec)
	}
	if res.Plan.Artifact(creatingPath("pair")) == nil {
		t.Error("the channel is not marked as being made")
	}
	if got := d.Reconfiguring(&n.Spec, res.Plan); !strings.Contains(got, "channel pair: making it") {
		t.Errorf("block recorded: %q under way, want channel pair being made", got)
	}
	// Until its nodes have joined it, the channel is not open to readers
	// of the explorer, calls nor contracts; the index follows it already,
	// to have its blocks once they are.
	if !slices.Contains(d.Channels(res.Plan), "pair") {
		t.Error("the explorer does not follow a channel being made")
	}
	if _, err := ChannelMembers(res.Plan, "pair"); err == nil || !strings.Contains(err.Error(), "being made") {
		t.Errorf("members of a channel being made: %v; want it refused", err)
	}
	if _, err := (&ledger{plan: res.Plan}).callChannel("pair"); err == nil || !strings.Contains(err.Error(), "being made") {
		t.Errorf("a call on a channel being made: %v; want it refused", err)
	}
	if _, err := deployChannel(n, res.Plan, "pair"); !errors.Is(err, chain.ErrContractRefused) {
		t.Errorf("a contract on a channel being made: %v; want it refused", err)
	}
	// The next call makes no other block: the one recorded is joined,
	// and as nothing runs, the orderer's participation API does not
	// answer.
	again, err := d.Reconfigure(t.Context(), n, res.Plan)
	if err == nil || !strings.Contains(err.Error(), "orderer-0") {
		t.Fatalf("nothing running: %v; want an error naming orderer-0", err)
	}
	if again.Plan != nil {
		t.Error("a second call changed the plan while the orderers cannot be reached")
	}
	// Once made, nothing more is to do.
	done := *res.Plan
	done.Artifacts = slices.DeleteFunc(slices.Clone(res.Plan.Artifacts), func(f runtime.File) bool { return f.Path == creatingPath("pair") })
	if got := d.Reconfiguring(&n.Spec, &done); got != "" {
		t.Errorf("made: %q under way, want nothing", got)
	}
	if _, err := deployChannel(n, &done, "pair"); err != nil || !slices.Contains(d.Channels(&done), "pair") {
		t.Errorf("a channel made: contracts %v, explorer's channels %v; want it open", err, d.Channels(&done))
	}
	if res, err := d.Reconfigure(t.Context(), n, &done); err != nil || res.Plan != nil || res.Pending != "" {
		t.Errorf("made: %+v, %v; want nothing to do", res, err)
	}
}

// TestNewChannelConsenters: the new channel's consenters are the orderers
// of the plan, not those being added.
func TestNewChannelConsenters(t *testing.T) {
	n, plan := pairNetwork(t)
	var orderers []chain.PlannedNode
	for _, pn := range plan.Nodes {
		if pn.Role == apis.RoleValidator {
			orderers = append(orderers, pn)
		}
	}
	if len(orderers) == 0 {
		t.Fatal("no orderer planned")
	}
	p := *plan
	p.Nodes = slices.Clone(plan.Nodes)
	for i := range p.Nodes {
		p.Nodes[i].Joining = p.Nodes[i].Role == apis.RoleValidator
	}
	if _, err := channelGenesis(n, &p, fabricChannel{name: "late", orgs: []string{"org1"}}); err == nil || !strings.Contains(err.Error(), "no orderer") {
		t.Errorf("every orderer joining: %v; want no orderer to order the channel", err)
	}
}
