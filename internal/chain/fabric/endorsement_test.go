package fabric

import (
	"strings"
	"testing"

	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

// The organisations a policy may name are the channel's peer
// organisations; a peer still joining brings none, nor does an orderer.
func TestEndorsementParameter(t *testing.T) {
	plan := &chain.Plan{Nodes: []chain.PlannedNode{
		{Name: "orderer-0", Role: apis.RoleValidator, Organization: "ord"},
		{Name: "org1-peer-0", Role: apis.RoleFull, Organization: "org1"},
		{Name: "org1-peer-1", Role: apis.RoleFull, Organization: "org1"},
		{Name: "org2-peer-0", Role: apis.RoleFull, Organization: "org2"},
		{Name: "org3-peer-0", Role: apis.RoleFull, Organization: "org3"},
		{Name: "org4-peer-0", Role: apis.RoleFull, Organization: "org4", Joining: true},
		{Name: "org5-peer-0", Role: apis.RoleFull, Organization: "org5"},
	}}
	// org5 runs a peer but is no member of the channel.
	ch := fabricChannel{name: "shared", orgs: []string{"org1", "org2", "org3", "org4"}}
	// n of OutOf(n, ...) and the principals, for each accepted policy.
	tests := []struct {
		policy string
		n      int32
		ids    int
	}{
		{"ANY", 1, 3},
		{"MAJORITY", 2, 3},
		{"ALL", 3, 3},
		{" OR('Org1MSP.peer', AND('Org2MSP.peer','Org3MSP.member')) ", 1, 3},
		{"OutOf(2, 'Org1MSP.peer', 'Org2MSP.peer', 'Org3MSP.peer')", 2, 3},
	}
	for _, tt := range tests {
		vp, errs := endorsementParameter(plan, ch, tt.policy)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", tt.policy, errs)
		}
		var ap pb.ApplicationPolicy
		if err := proto.Unmarshal(vp, &ap); err != nil {
			t.Fatal(err)
		}
		env := ap.GetSignaturePolicy()
		if got := env.GetRule().GetNOutOf().GetN(); got != tt.n || len(env.GetIdentities()) != tt.ids {
			t.Errorf("%s: OutOf(%d) of %d identities; want OutOf(%d) of %d", tt.policy, got, len(env.GetIdentities()), tt.n, tt.ids)
		}
		again, _ := endorsementParameter(plan, ch, tt.policy)
		if string(again) != string(vp) {
			t.Errorf("%s: the bytes differ from one call to the next", tt.policy)
		}
	}

	for _, bad := range []struct{ policy, want string }{
		{"OR('Org1MSP.peer', 'Org4MSP.peer', 'OrdMSP.peer', 'Org4MSP.admin')", "names Org4MSP, OrdMSP, not an organisation of the channel (its organisations: Org1MSP, Org2MSP, Org3MSP)"},
		{"OR('Org5MSP.peer')", "names Org5MSP, not an organisation of the channel"},
		{"OR('Org1MSP.peer',, 'Org2MSP.peer')", "at position 19"},
		{"any", `unknown gate "any"`},
	} {
		_, errs := endorsementParameter(plan, ch, bad.policy)
		if len(errs) != 1 || errs[0].Field != "endorsementPolicy" || !strings.Contains(errs[0].Detail, bad.want) {
			t.Errorf("%s: %v; want one problem with endorsementPolicy saying %q", bad.policy, errs, bad.want)
		}
	}
}
