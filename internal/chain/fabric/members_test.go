package fabric

import (
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/runtime"
)

// pairNetwork is a network of three organisations, org3 of the shared
// channel alone, with channel pair of org1 and org2, and its plan.
func pairNetwork(t *testing.T) (*apis.Network, *chain.Plan) {
	t.Helper()
	n := decode(t, "two-orgs.good.yaml")
	n.Spec.Organizations = append(n.Spec.Organizations, apis.OrganizationNodes{Name: "org3", Peers: 1})
	n.Spec.Fabric.Channels = []apis.FabricChannel{{Name: "pair", Organizations: []string{"org1", "org2"}}}
	if errs := New().Validate(&n.Spec); len(errs) > 0 {
		t.Fatal(errs)
	}
	return n, planNetwork(t, n)
}

func TestValidateChannelChange(t *testing.T) {
	n, _ := pairNetwork(t)
	base := n.Spec
	clone := func(s apis.NetworkSpec) apis.NetworkSpec {
		s.Organizations = slices.Clone(s.Organizations)
		f := *s.Fabric
		f.Channels = slices.Clone(f.Channels)
		for i := range f.Channels {
			f.Channels[i].Organizations = slices.Clone(f.Channels[i].Organizations)
		}
		s.Fabric = &f
		return s
	}
	down := func(st *apis.NetworkStatus, match func(apis.NodeStatus) bool) {
		for i := range st.Nodes {
			if match(st.Nodes[i]) {
				st.Nodes[i].Phase = apis.NodeCrashed
			}
		}
	}
	for _, tc := range []struct {
		name   string
		change func(s *apis.NetworkSpec, st *apis.NetworkStatus)
		want   []string
	}{
		{name: "org3 added", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Fabric.Channels[0].Organizations = []string{"org1", "org2", "org3"}
		}},
		{name: "org2 taken out", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Fabric.Channels[0].Organizations = []string{"org1"}
		}},
		{name: "org3 for org1, org2 down", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Fabric.Channels[0].Organizations = []string{"org2", "org3"}
			down(st, func(ns apis.NodeStatus) bool { return ns.Organization == "org2" })
		}},
		{name: "org3 added, its peer down", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Fabric.Channels[0].Organizations = []string{"org1", "org2", "org3"}
			down(st, func(ns apis.NodeStatus) bool { return ns.Organization == "org3" })
		}, want: []string{"spec.fabric.channels[0].organizations[2]"}},
		{name: "org3 added, no member's peer running", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Fabric.Channels[0].Organizations = []string{"org1", "org2", "org3"}
			down(st, func(ns apis.NodeStatus) bool { return ns.Organization == "org1" || ns.Organization == "org2" })
		}, want: []string{"spec.fabric.channels[0].organizations"}},
		{name: "org2 taken out, no orderer running", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Fabric.Channels[0].Organizations = []string{"org1"}
			down(st, func(ns apis.NodeStatus) bool { return ns.Role == apis.RoleValidator })
		}, want: []string{"spec.fabric.channels[0].organizations"}},
		{name: "a channel renamed", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Fabric.Channels[0].Name = "other"
		}, want: []string{"spec.fabric.channels"}},
		{name: "a channel added", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Fabric.Channels = append(s.Fabric.Channels, apis.FabricChannel{Name: "solo", Organizations: []string{"org3"}})
		}},
		{name: "a channel added, a member's peer down", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Fabric.Channels = append(s.Fabric.Channels, apis.FabricChannel{Name: "duo", Organizations: []string{"org1", "org3"}})
			down(st, func(ns apis.NodeStatus) bool { return ns.Organization == "org3" })
		}, want: []string{"spec.fabric.channels[1].organizations[1]"}},
		{name: "a channel added, no orderer running", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Fabric.Channels = append(s.Fabric.Channels, apis.FabricChannel{Name: "solo", Organizations: []string{"org3"}})
			down(st, func(ns apis.NodeStatus) bool { return ns.Role == apis.RoleValidator })
		}, want: []string{"spec.fabric.channels[1]"}},
		// Every peer of a member and every orderer joins a new channel:
		// one down, while others run, holds it up.
		{name: "a channel added, one of a member's peers down", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Fabric.Channels = append(s.Fabric.Channels, apis.FabricChannel{Name: "duo", Organizations: []string{"org1", "org3"}})
			st.Nodes = append(st.Nodes, apis.NodeStatus{Name: "org1-peer-1", Role: apis.RoleFull, Organization: "org1", Phase: apis.NodeCrashed})
		}, want: []string{"spec.fabric.channels[1].organizations[0]"}},
		{name: "a channel added, one orderer down", change: func(s *apis.NetworkSpec, st *apis.NetworkStatus) {
			s.Fabric.Channels = append(s.Fabric.Channels, apis.FabricChannel{Name: "solo", Organizations: []string{"org3"}})
			st.Nodes = append(st.Nodes, apis.NodeStatus{Name: "orderer-1", Role: apis.RoleValidator, Phase: apis.NodeCrashed})
		}, want: []string{"spec.fabric.channels[1]"}},
		{name: "a channel added before the others", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Fabric.Channels = append([]apis.FabricChannel{{Name: "solo", Organizations: []string{"org3"}}}, s.Fabric.Channels...)
		}, want: []string{"spec.fabric.channels"}},
		{name: "a channel removed", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Fabric.Channels = nil
		}, want: []string{"spec.fabric.channels"}},
		{name: "org2 leaves the network, named in the channel still", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Organizations = slices.Delete(s.Organizations, 1, 2)
		}, want: []string{"spec.fabric.channels[0].organizations[1]"}},
		{name: "org2 leaves the network and the channel", change: func(s *apis.NetworkSpec, _ *apis.NetworkStatus) {
			s.Organizations = slices.Delete(s.Organizations, 1, 2)
			s.Fabric.Channels[0].Organizations = []string{"org1"}
		}},
	} {
		old := clone(base)
		spec := clone(base)
		st := runningStatus(&old)
		tc.change(&spec, st)
		var got []string
		for _, e := range New().ValidateScale(&old, &spec, st) {
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

// decodedUpdate is a signed config update as an orderer receives it: its
// channel, the organisations of its Application group as it writes them,
// and who signed it.
type decodedUpdate struct {
	channel   string
	writes    []string
	signers   []string
	submitter string
}

func decodeConfigUpdate(t *testing.T, env *cb.Envelope) decodedUpdate {
	t.Helper()
	raw, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	var e cb.Envelope
	var payload cb.Payload
	var cue cb.ConfigUpdateEnvelope
	var cu cb.ConfigUpdate
	var shdr cb.SignatureHeader
	var submitter mb.SerializedIdentity
	for _, step := range []struct {
		b []byte
		m proto.Message
	}{{raw, &e}, {nil, &payload}, {nil, &shdr}, {nil, &submitter}, {nil, &cue}, {nil, &cu}} {
		switch step.m {
		case &payload:
			step.b = e.Payload
		case &shdr:
			step.b = payload.GetHeader().GetSignatureHeader()
		case &submitter:
			step.b = shdr.Creator
		case &cue:
			step.b = payload.Data
		case &cu:
			step.b = cue.ConfigUpdate
		}
		if err := proto.Unmarshal(step.b, step.m); err != nil {
			t.Fatalf("decode %T: %v", step.m, err)
		}
	}
	d := decodedUpdate{channel: cu.ChannelId, submitter: submitter.Mspid}
	d.writes = sortedKeys(cu.GetWriteSet().GetGroups()[configtx.ApplicationGroupKey].GetGroups())
	for i, sig := range cue.Signatures {
		var hdr cb.SignatureHeader
		var id mb.SerializedIdentity
		if err := proto.Unmarshal(sig.SignatureHeader, &hdr); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(hdr.Creator, &id); err != nil {
			t.Fatal(err)
		}
		if len(sig.Signature) == 0 {
			t.Errorf("signature %d by %s is empty", i, id.Mspid)
		}
		d.signers = append(d.signers, id.Mspid)
	}
	slices.Sort(d.signers)
	return d
}

// TestMemberUpdates: adding org3 to the pair's channel writes the three
// organisations into its Application group, signed by the admins of its
// current members, org1 and org2 (MAJORITY Admins of two); taking org2
// out leaves org1 alone, signed alike.
func TestMemberUpdates(t *testing.T) {
	_, plan := pairNetwork(t)
	var b cb.Block
	if err := proto.Unmarshal(plan.Artifact(BlockPath("pair")), &b); err != nil {
		t.Fatal(err)
	}
	cfg, err := channel.ConfigFromBlock(&b)
	if err != nil {
		t.Fatal(err)
	}
	env, submitter, err := addOrgUpdate(plan, "pair", cfg, "org3")
	if err != nil {
		t.Fatal(err)
	}
	got := decodeConfigUpdate(t, env)
	want := decodedUpdate{channel: "pair", writes: []string{"Org1MSP", "Org2MSP", "Org3MSP"}, signers: []string{"Org1MSP", "Org2MSP"}, submitter: submitter.signer.MSPID}
	if !slices.Equal(got.writes, want.writes) || !slices.Equal(got.signers, want.signers) || got.channel != want.channel || got.submitter != want.submitter {
		t.Errorf("adding org3: %+v, want %+v", got, want)
	}
	if submitter.signer.MSPID == "Org3MSP" {
		t.Errorf("the update adding org3 is submitted by org3, no member yet")
	}

	env, _, err = removeOrgUpdate(plan, "pair", cfg, "org2")
	if err != nil {
		t.Fatal(err)
	}
	got = decodeConfigUpdate(t, env)
	if !slices.Equal(got.writes, []string{"Org1MSP"}) || !slices.Equal(got.signers, []string{"Org1MSP", "Org2MSP"}) || got.channel != "pair" {
		t.Errorf("taking org2 out: %+v, want Org1MSP alone written, signed by Org1MSP and Org2MSP", got)
	}

	// Neither is made for what the channel is already.
	if _, _, err := addOrgUpdate(plan, "pair", cfg, "org2"); err == nil {
		t.Error("adding org2, a member: no error")
	}
	if _, _, err := removeOrgUpdate(plan, "pair", cfg, "org3"); err == nil {
		t.Error("taking out org3, no member: no error")
	}
}

// TestPlanChannelMembers: the members the plan records replace those of
// the genesis block; an organisation whose last peer goes is no member
// any more, so that it would come back a member of the shared channel
// alone.
func TestPlanChannelMembers(t *testing.T) {
	_, plan := pairNetwork(t)
	members := func(p *chain.Plan) []string {
		c, ok := planChannel(p, "pair")
		if !ok {
			t.Fatal("no channel pair")
		}
		return c.orgs
	}
	if got := members(plan); !slices.Equal(got, []string{"org1", "org2"}) {
		t.Fatalf("members from the genesis block: %v", got)
	}
	rec, err := withMembers(plan, "pair", []string{"org3", "org1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := members(rec); !slices.Equal(got, []string{"org1", "org3"}) {
		t.Errorf("members recorded: %v, want org1 and org3 in plan order", got)
	}
	if got := members(plan); !slices.Equal(got, []string{"org1", "org2"}) {
		t.Errorf("the plan recorded from changed: %v", got)
	}
	if got := planChannelNames(rec); !slices.Equal(got, []string{"pair"}) {
		t.Errorf("channels of the plan: %v, want pair alone", got)
	}

	// org3's only peer goes: the record forgets it; org1's second peer
	// goes and org1 stays.
	next, err := removeNodes(rec, []string{"org3-peer-0", "org1-peer-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := members(next); !slices.Equal(got, []string{"org1"}) {
		t.Errorf("members after org3 left: %v, want org1", got)
	}
	back := *next
	back.Nodes = append(slices.Clone(next.Nodes), planned(t, plan, "org3-peer-0"))
	if got := members(&back); !slices.Equal(got, []string{"org1"}) {
		t.Errorf("members once org3 is back: %v, want org1 alone", got)
	}
}

// TestReconfigureAsPlanned: nothing to do when the plan's members are the
// spec's, whatever runs; a change with no peer running names the channel.
func TestReconfigureAsPlanned(t *testing.T) {
	n, plan := pairNetwork(t)
	res, err := New().Reconfigure(t.Context(), n, plan)
	if err != nil || res.Plan != nil || res.Done != "" || res.Pending != "" {
		t.Fatalf("as planned: %+v, %v; want nothing", res, err)
	}
	n.Spec.Fabric.Channels[0].Organizations = []string{"org1", "org2", "org3"}
	res, err = New().Reconfigure(t.Context(), n, plan)
	if err == nil || !strings.Contains(err.Error(), "channel pair") || !strings.Contains(res.Pending, "adding org3") {
		t.Fatalf("org3 added, nothing running: %+v, %v; want an error naming channel pair", res, err)
	}
	// What is under way is recorded first, so that a spec changed back
	// meanwhile still takes org3 out if it got in.
	if res.Plan == nil || res.Plan.Artifact(changingPath("pair")) == nil {
		t.Fatalf("org3 added: the plan records no change under way")
	}
	n.Spec.Fabric.Channels[0].Organizations = []string{"org1", "org2"}
	res, err = New().Reconfigure(t.Context(), n, res.Plan)
	if err == nil || !strings.Contains(res.Pending, "removing org3") {
		t.Fatalf("org3 added then not: %+v, %v; want org3 taken out", res, err)
	}
}

// TestPlanRecordsMembers: a plan records the members of each channel of
// spec.fabric.channels as it is made, so that reading them takes no
// genesis block apart; a plan made before has them from the block.
func TestPlanRecordsMembers(t *testing.T) {
	_, plan := pairNetwork(t)
	rec := plan.Artifact(membersPath("pair"))
	if string(rec) != `["org1","org2"]` {
		t.Fatalf("members recorded by the plan: %q, want org1 and org2", rec)
	}
	old := *plan
	old.Artifacts = slices.DeleteFunc(slices.Clone(plan.Artifacts), func(f runtime.File) bool { return f.Path == membersPath("pair") })
	for name, p := range map[string]*chain.Plan{"new": plan, "old": &old} {
		c, ok := planChannel(p, "pair")
		if !ok || !slices.Equal(c.orgs, []string{"org1", "org2"}) {
			t.Errorf("%s plan: channel pair %v, %v; want org1 and org2", name, c.orgs, ok)
		}
	}
}

// TestMembersUnderWay: a peer added to an organisation joins the
// channels the plan records it a member of, not those the spec has just
// given it; and a change of members the plan has yet to carry out is
// reported, so that no peers are added or removed meanwhile.
func TestMembersUnderWay(t *testing.T) {
	n, plan := pairNetwork(t)
	d := New()
	if got := d.Reconfiguring(&n.Spec, plan); got != "" {
		t.Errorf("as planned: %q under way, want nothing", got)
	}
	n.Spec.Fabric.Channels[0].Organizations = []string{"org1", "org2", "org3"}
	names := func(cs []fabricChannel) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.name)
		}
		return out
	}
	if got := names(planChannelsOfOrg(plan, "org3")); !slices.Equal(got, []string{plan.ChainID}) {
		t.Errorf("org3's channels as planned: %v, want the shared one alone", got)
	}
	if got := names(planChannelsOfOrg(plan, "org1")); !slices.Equal(got, []string{plan.ChainID, "pair"}) {
		t.Errorf("org1's channels as planned: %v, want the shared one and pair", got)
	}
	if got := d.Reconfiguring(&n.Spec, plan); !strings.Contains(got, "channel pair: adding org3") {
		t.Errorf("org3 added to pair: %q under way, want channel pair named", got)
	}
	// Once done, with the record of what was under way not yet dropped.
	done, err := withMembers(plan, "pair", []string{"org1", "org2", "org3"})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Reconfiguring(&n.Spec, done); got != "" {
		t.Errorf("org3 a member: %q under way, want nothing", got)
	}
	if got := names(planChannelsOfOrg(done, "org3")); !slices.Equal(got, []string{plan.ChainID, "pair"}) {
		t.Errorf("org3's channels once a member: %v, want the shared one and pair", got)
	}
	changing, err := withArtifact(done, changingPath("pair"), []string{"org3"})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Reconfiguring(&n.Spec, changing); !strings.Contains(got, "channel pair") {
		t.Errorf("change recorded as under way: %q, want channel pair named", got)
	}
}
