package lifecycle

import (
	"bytes"
	"strings"
	"testing"

	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	lb "github.com/hyperledger/fabric-protos-go-apiv2/peer/lifecycle"
	"google.golang.org/protobuf/proto"
)

// The approvals and the commit carry the same collections, byte for
// byte, and a definition with other collections is another definition.
func TestDefinitionCollections(t *testing.T) {
	cols, err := CollectionPackage([]Collection{
		{Name: "org1Private", MemberPolicy: "OR('Org1MSP.member')", MaximumPeerCount: 1, BlockToLive: 3, MemberOnlyRead: true},
		{Name: "shared", MemberPolicy: "OR('Org1MSP.member', 'Org2MSP.member')", RequiredPeerCount: 1, MaximumPeerCount: 1,
			EndorsementPolicy: "AND('Org1MSP.peer', 'Org2MSP.peer')"},
	})
	if err != nil {
		t.Fatal(err)
	}
	def := testDef
	def.Collections = cols
	approve, err := approveArgs(def)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := commitArgs(def)
	if err != nil {
		t.Fatal(err)
	}
	det := proto.MarshalOptions{Deterministic: true}
	a, _ := det.Marshal(approve.GetCollections())
	c, _ := det.Marshal(commit.GetCollections())
	if len(a) == 0 || !bytes.Equal(a, c) {
		t.Fatalf("approval collections %x, commit %x; want the same, not empty", a, c)
	}
	var back pb.CollectionConfigPackage
	if err := proto.Unmarshal(a, &back); err != nil {
		t.Fatal(err)
	}
	if got := CollectionNames(&back); strings.Join(got, ",") != "org1Private,shared" {
		t.Errorf("collections %v", got)
	}
	sc := back.GetConfig()[1].GetStaticCollectionConfig()
	if sc.GetEndorsementPolicy().GetSignaturePolicy().GetRule().GetNOutOf().GetN() != 2 || sc.GetRequiredPeerCount() != 1 {
		t.Errorf("shared is %v", sc)
	}

	// What the peer answers for the approval it stored is the same
	// approval; without the collections, or with others, it is not.
	prev := &lb.QueryApprovedChaincodeDefinitionResult{
		Sequence: approve.GetSequence(), Version: approve.GetVersion(), EndorsementPlugin: approve.GetEndorsementPlugin(),
		ValidationPlugin: approve.GetValidationPlugin(), ValidationParameter: approve.GetValidationParameter(),
		Collections: &back, Source: approve.GetSource(),
	}
	if !sameApproval(prev, approve) {
		t.Error("the stored approval is not seen as the same")
	}
	prev.Collections = nil
	if sameApproval(prev, approve) {
		t.Error("an approval without collections is seen as the same")
	}
	committed := &CommittedDefinition{Version: def.Version, EndorsementPlugin: endorsementPlugin, ValidationPlugin: validationPlugin,
		ValidationParameter: commit.GetValidationParameter(), Collections: &back}
	if !committed.Runs(def) {
		t.Error("the committed definition does not run def")
	}
	other := def
	other.Collections = nil
	if committed.Runs(other) {
		t.Error("a definition without the collections runs as def")
	}

	for _, bad := range []struct {
		cols []Collection
		want string
	}{
		{[]Collection{{Name: "_x", MemberPolicy: "OR('A.member')"}}, "not beginning with '_'"},
		{[]Collection{{Name: "a", MemberPolicy: "OR('A.member')"}, {Name: "a", MemberPolicy: "OR('A.member')"}}, "given twice"},
		{[]Collection{{Name: "a", MemberPolicy: "AND('A.member', 'B.member')"}}, "OR only"},
		{[]Collection{{Name: "a", MemberPolicy: "OR('A.member')", RequiredPeerCount: 2, MaximumPeerCount: 1}}, "required <= maximum"},
		{[]Collection{{Name: "a", MemberPolicy: ""}}, "member policy"},
	} {
		if _, err := CollectionPackage(bad.cols); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want %q", bad.cols, err, bad.want)
		}
	}
}

// The transient map is in the proposal the peers endorse, and neither in
// the transaction the channel records nor in its ID.
func TestInvocationTransient(t *testing.T) {
	org1 := newTestOrg(t, "org1.example.com", "Org1MSP")
	secret := []byte("appraised-by-smith-5000")
	nonce := bytes.Repeat([]byte{9}, 32)
	inv, err := NewPrivateInvocation(org1.admin, "mychannel", "asset", "CreatePrivateAsset", [][]byte{[]byte("org1Private")},
		map[string][]byte{"asset": secret}, nonce)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := NewInvocation(org1.admin, "mychannel", "asset", "CreatePrivateAsset", [][]byte{[]byte("org1Private")}, nonce)
	if inv.TxID() != plain.TxID() {
		t.Error("the transient map changed the transaction ID")
	}
	var prop pb.Proposal
	if err := proto.Unmarshal(inv.Signed().GetProposalBytes(), &prop); err != nil {
		t.Fatal(err)
	}
	var payload pb.ChaincodeProposalPayload
	if err := proto.Unmarshal(prop.GetPayload(), &payload); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payload.GetTransientMap()["asset"], secret) {
		t.Fatalf("the proposal's transient map is %q", payload.GetTransientMap())
	}
	d, err := decodeProposal(inv.Signed())
	if err != nil {
		t.Fatal(err)
	}
	r, err := endorseAs(org1.peer, d, []byte("ok"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := inv.Transaction([]*pb.ProposalResponse{r})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, secret) {
		t.Error("the transaction carries the transient data")
	}
}
