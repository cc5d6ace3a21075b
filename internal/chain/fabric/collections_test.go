package fabric

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

func collectionsPlan() (*chain.Plan, fabricChannel) {
	plan := &chain.Plan{Nodes: []chain.PlannedNode{
		{Name: "orderer-0", Role: apis.RoleValidator, Organization: "ord"},
		{Name: "org1-peer-0", Role: apis.RoleFull, Organization: "org1"},
		{Name: "org2-peer-0", Role: apis.RoleFull, Organization: "org2"},
		{Name: "org3-peer-0", Role: apis.RoleFull, Organization: "org3"},
	}}
	// org3 runs a peer but is no member of the channel.
	return plan, fabricChannel{name: "shared", orgs: []string{"org1", "org2"}}
}

// members decodes a collection's member policy: its MSP IDs and roles,
// and the n of its OutOf.
func members(t *testing.T, c *pb.StaticCollectionConfig) ([]string, int32) {
	t.Helper()
	env := c.GetMemberOrgsPolicy().GetSignaturePolicy()
	var out []string
	for _, id := range env.GetIdentities() {
		var role mb.MSPRole
		if err := proto.Unmarshal(id.GetPrincipal(), &role); err != nil {
			t.Fatal(err)
		}
		out = append(out, role.GetMspIdentifier()+"."+role.GetRole().String())
	}
	slices.Sort(out)
	return out, env.GetRule().GetNOutOf().GetN()
}

func TestCollectionsConfig(t *testing.T) {
	plan, ch := collectionsPlan()
	cols := []apis.Collection{
		{Name: "org1Private", Members: []string{"org1"}, MaxPeerCount: 1, BlockToLive: 100, MemberOnlyRead: true, MemberOnlyWrite: true},
		{Name: "shared_2", Members: []string{"Org2MSP", "org1"}, RequiredPeerCount: 1, MaxPeerCount: 2, EndorsementPolicy: "ALL"},
		{Name: "byPolicy", Policy: "OR('Org2MSP.member')"},
		{Name: "everyone", Members: []string{"*"}},
	}
	pkg, errs := collectionsConfig(plan, ch, cols, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	// The bytes the approvals and the commit carry, decoded.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(pkg)
	if err != nil {
		t.Fatal(err)
	}
	var got pb.CollectionConfigPackage
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.GetConfig()) != len(cols) {
		t.Fatalf("%d collections, want %d", len(got.GetConfig()), len(cols))
	}
	want := []struct {
		members     []string
		required    int32
		max         int32
		btl         uint64
		read, write bool
	}{
		{[]string{"Org1MSP.MEMBER"}, 0, 1, 100, true, true},
		{[]string{"Org1MSP.MEMBER", "Org2MSP.MEMBER"}, 1, 2, 0, false, false},
		{[]string{"Org2MSP.MEMBER"}, 0, 0, 0, false, false},
		{[]string{"Org1MSP.MEMBER", "Org2MSP.MEMBER"}, 0, 0, 0, false, false},
	}
	for i, c := range got.GetConfig() {
		sc := c.GetStaticCollectionConfig()
		if sc.GetName() != cols[i].Name {
			t.Errorf("collection %d is %q, want %q", i, sc.GetName(), cols[i].Name)
		}
		m, n := members(t, sc)
		w := want[i]
		if !slices.Equal(m, w.members) || n != 1 {
			t.Errorf("%s: members %v, OutOf(%d); want %v, OutOf(1)", sc.GetName(), m, n, w.members)
		}
		if sc.GetRequiredPeerCount() != w.required || sc.GetMaximumPeerCount() != w.max || sc.GetBlockToLive() != w.btl ||
			sc.GetMemberOnlyRead() != w.read || sc.GetMemberOnlyWrite() != w.write {
			t.Errorf("%s: %v", sc.GetName(), sc)
		}
	}
	ep := got.GetConfig()[1].GetStaticCollectionConfig().GetEndorsementPolicy().GetSignaturePolicy()
	if ep.GetRule().GetNOutOf().GetN() != 2 || len(ep.GetIdentities()) != 2 {
		t.Errorf("shared_2's endorsement policy ALL over 2 organisations is %v", ep)
	}
	if got.GetConfig()[0].GetStaticCollectionConfig().GetEndorsementPolicy() != nil {
		t.Error("org1Private has an endorsement policy it was not given")
	}
	// Every organisation's approval must carry the same bytes.
	again, _ := collectionsConfig(plan, ch, cols, nil)
	b2, _ := proto.MarshalOptions{Deterministic: true}.Marshal(again)
	if string(b) != string(b2) {
		t.Error("the bytes differ from one call to the next")
	}
}

func TestCollectionsConfigProblems(t *testing.T) {
	plan, ch := collectionsPlan()
	ok := apis.Collection{Name: "ok", Members: []string{"org1"}}
	tests := []struct {
		name    string
		cols    []apis.Collection
		current []apis.Collection
		want    map[string]string // field: part of its detail
	}{
		{"names", []apis.Collection{
			{Name: "_implicit_org_Org1MSP", Members: []string{"org1"}},
			{Name: "", Members: []string{"org1"}},
			ok, ok,
		}, nil, map[string]string{
			"collections[0].name": "not beginning with '_'",
			"collections[1].name": `"": letters`,
			"collections[3].name": `"ok" is collections[2]'s name too`,
		}},
		{"members", []apis.Collection{
			{Name: "a", Members: []string{"org3", "org1", "Org1MSP", "*"}},
			{Name: "b"},
			{Name: "c", Members: []string{"org1"}, Policy: "OR('Org1MSP.member')"},
		}, nil, map[string]string{
			"collections[0].members[0]": `"org3" is not an organisation of channel shared (its organisations: Org1MSP, Org2MSP)`,
			"collections[0].members[2]": "given twice",
			"collections[0].members[3]": "every organisation alone",
			"collections[1].members":    "is empty",
			"collections[2]":            "has members and a policy",
		}},
		{"policies", []apis.Collection{
			{Name: "a", Policy: "OR('Org3MSP.member')"},
			{Name: "b", Policy: "ANY"},
			{Name: "c", Members: []string{"org1"}, EndorsementPolicy: "OR('Org1MSP.peer',"},
		}, nil, map[string]string{
			"collections[0].policy":            "names Org3MSP, not an organisation of the channel",
			"collections[1].policy":            "is a rule for endorsement",
			"collections[2].endorsementPolicy": "at position",
		}},
		{"counts", []apis.Collection{
			{Name: "a", Members: []string{"org1"}, RequiredPeerCount: 2, MaxPeerCount: 1},
			{Name: "b", Members: []string{"org1"}, RequiredPeerCount: -1, MaxPeerCount: -1},
		}, nil, map[string]string{
			"collections[0].maxPeerCount":      "1 is below requiredPeerCount 2",
			"collections[0].requiredPeerCount": "the members have 1 peers, so an endorsing peer has 0 others",
			"collections[1].requiredPeerCount": "-1: not below 0",
		}},
		// org1 and org2 have a peer each: one other to hand the data to.
		{"member peers", []apis.Collection{
			{Name: "two", Members: []string{"org1", "org2"}, RequiredPeerCount: 2, MaxPeerCount: 2},
			{Name: "fits", Members: []string{"*"}, RequiredPeerCount: 1, MaxPeerCount: 1},
		}, nil, map[string]string{
			"collections[0].requiredPeerCount": "2: the members have 2 peers, so an endorsing peer has 1 others to hand the data to and every write would fail; at most 1",
		}},
		{"upgrade", []apis.Collection{
			{Name: "kept", Members: []string{"org1", "org2"}, BlockToLive: 5},
		}, []apis.Collection{
			{Name: "kept", Members: []string{"org1"}, BlockToLive: 10},
			{Name: "dropped", Members: []string{"org1"}},
		}, map[string]string{
			"collections[0].blockToLive": "keeps its blockToLive, 10, for good",
			"collections":                "leaves out dropped",
		}},
		{"AND of members", []apis.Collection{
			{Name: "a", Policy: "AND('Org1MSP.member', 'Org2MSP.member')"},
		}, nil, map[string]string{
			"collections": "must join its organisations with OR only",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg, errs := collectionsConfig(plan, ch, tt.cols, tt.current)
			if pkg != nil {
				t.Errorf("a configuration despite the problems")
			}
			got := map[string]string{}
			for _, e := range errs {
				got[e.Field] += e.Detail
			}
			for f, w := range tt.want {
				if !strings.Contains(got[f], w) {
					t.Errorf("%s: %q, want it to say %q", f, got[f], w)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("problems %v, want %d fields", errs, len(tt.want))
			}
		})
	}

	// An upgrade may add collections and change the others, but not
	// their blockToLive.
	if _, errs := collectionsConfig(plan, ch, []apis.Collection{
		{Name: "kept", Members: []string{"org1", "org2"}, BlockToLive: 10, MaxPeerCount: 1}, ok,
	}, []apis.Collection{{Name: "kept", Members: []string{"org1"}, BlockToLive: 10}}); len(errs) > 0 {
		t.Errorf("upgrade: %v", errs)
	}
}

// The asset template's package ships its collections; a package of
// your own may too, and one that does not parse is refused.
func TestPackageCollections(t *testing.T) {
	d := &Driver{}
	tmpl := assetTemplate(t, d)
	cols, err := packageCollections(tmpl)
	if err != nil || len(cols) != 1 || cols[0].Name != "assetCollection" || !slices.Equal(cols[0].Members, []string{"*"}) {
		t.Fatalf("asset template's collections: %+v, %v", cols, err)
	}
	plan, ch := collectionsPlan()
	pkg, errs := collectionsConfig(plan, ch, cols, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if m, _ := members(t, pkg.GetConfig()[0].GetStaticCollectionConfig()); !slices.Equal(m, []string{"Org1MSP.MEMBER", "Org2MSP.MEMBER"}) {
		t.Errorf("'*' is %v, want both organisations of the channel", m)
	}

	conn := `{"address": "cc.example.com:9999", "dial_timeout": "10s", "tls_required": false}`
	own := apis.Package{Kind: PackageKind, Name: "mine", Version: "1.0.0", Files: []apis.PackageFile{
		{Path: "connection.json", Text: conn},
		{Path: collectionsFile, Text: `[{"name": "x", "members": ["org1"], "maxPeerCount": 1}]`},
	}}
	if errs := d.ValidatePackage(&own); len(errs) > 0 {
		t.Errorf("a package with collections.json: %v", errs)
	}
	own.Files[1].Text = `[{"name": "x", "member": ["org1"]}]`
	errs = d.ValidatePackage(&own)
	if len(errs) != 1 || errs[0].Field != "files[collections.json]" || !strings.Contains(errs[0].Detail, `unknown field "member"`) {
		t.Errorf("a misspelt collections.json: %v", errs)
	}
	b, _ := json.Marshal(cols)
	if !strings.Contains(string(b), `"memberOnlyRead":true`) {
		t.Errorf("collections JSON %s", b)
	}
}

// A deployment that gives no collections takes its package's; an
// upgrade never does, whatever the package ships: it keeps the
// contract's (none here), and giving none is checked against those it
// has.
func TestContractCollections(t *testing.T) {
	d := &Driver{}
	tmpl := assetTemplate(t, d)
	cols, current, err := contractCollections(chain.DeployRequest{Package: tmpl})
	if err != nil || len(cols) != 1 || cols[0].Name != "assetCollection" || current != nil {
		t.Fatalf("a deployment giving none: %+v (has %+v), %v; want the package's", cols, current, err)
	}
	cols, _, err = contractCollections(chain.DeployRequest{Package: tmpl, Collections: []apis.Collection{}})
	if err != nil || len(cols) != 0 {
		t.Fatalf("a deployment giving [] : %+v, %v; want none", cols, err)
	}
	before := &apis.ContractRevision{Name: "asset"}
	cols, current, err = contractCollections(chain.DeployRequest{Package: tmpl, Current: before})
	if err != nil || len(cols) != 0 || len(current) != 0 {
		t.Fatalf("an upgrade of a contract without collections: %+v, has %+v, %v; want none", cols, current, err)
	}
	kept := []apis.Collection{{Name: "kept", Members: []string{"org1"}}}
	before.Collections = kept
	cols, current, _ = contractCollections(chain.DeployRequest{Package: tmpl, Current: before, Collections: []apis.Collection{}})
	plan, ch := collectionsPlan()
	if _, errs := collectionsConfig(plan, ch, cols, current); len(errs) != 1 || !strings.Contains(errs[0].Detail, "leaves out kept") {
		t.Errorf("an upgrade giving [] to a contract with collection kept: %v; want it refused", errs)
	}
	if !apis.SameCollections(nil, []apis.Collection{}) || apis.SameCollections(nil, kept) || !apis.SameCollections(kept, []apis.Collection{{Name: "kept", Members: []string{"org1"}}}) {
		t.Error("SameCollections: none and [] are the same, none and one are not, equal lists are")
	}
}

// assetTemplate is d's asset template package.
func assetTemplate(t *testing.T, d *Driver) *apis.Package {
	t.Helper()
	for _, p := range d.Templates() {
		if p.Name == templatePackage("asset") {
			return &p
		}
	}
	t.Fatal("no asset template")
	return nil
}
