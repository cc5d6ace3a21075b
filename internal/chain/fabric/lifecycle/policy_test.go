package lifecycle

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	lb "github.com/hyperledger/fabric-protos-go-apiv2/peer/lifecycle"
	"google.golang.org/protobuf/proto"
)

// satisfied evaluates env as a validator would for endorsements signed
// by one identity of each principal in signers ("Org1MSP.peer"), each
// signature counted once.
func satisfied(t *testing.T, env *cb.SignaturePolicyEnvelope, signers ...string) bool {
	t.Helper()
	var ids []string
	for _, id := range env.GetIdentities() {
		if id.GetPrincipalClassification() != mb.MSPPrincipal_ROLE {
			t.Fatalf("principal classification %v; want ROLE", id.GetPrincipalClassification())
		}
		var role mb.MSPRole
		if err := proto.Unmarshal(id.GetPrincipal(), &role); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, role.GetMspIdentifier()+"."+strings.ToLower(role.GetRole().String()))
	}
	used := make([]bool, len(signers))
	var eval func(r *cb.SignaturePolicy) bool
	eval = func(r *cb.SignaturePolicy) bool {
		switch r.GetType().(type) {
		case *cb.SignaturePolicy_SignedBy:
			want := ids[r.GetSignedBy()]
			for i, s := range signers {
				if !used[i] && s == want {
					used[i] = true
					return true
				}
			}
			return false
		case *cb.SignaturePolicy_NOutOf_:
			n := 0
			for _, sub := range r.GetNOutOf().GetRules() {
				if eval(sub) {
					n++
				}
			}
			return n >= int(r.GetNOutOf().GetN())
		}
		t.Fatalf("rule %v of no known type", r)
		return false
	}
	return eval(env.GetRule())
}

func TestParseSignaturePolicy(t *testing.T) {
	tests := []struct {
		expr       string
		principals []string
		yes, no    [][]string
	}{
		{
			expr:       "OR('Org1MSP.peer', AND('Org2MSP.peer','Org3MSP.peer'))",
			principals: []string{"Org1MSP.peer", "Org2MSP.peer", "Org3MSP.peer"},
			yes:        [][]string{{"Org1MSP.peer"}, {"Org2MSP.peer", "Org3MSP.peer"}},
			no:         [][]string{{"Org2MSP.peer"}, {"Org3MSP.peer"}, {"Org1MSP.admin"}, nil},
		},
		{
			expr:       "OutOf(2, 'Org1MSP.peer', 'Org2MSP.peer', 'Org3MSP.peer')",
			principals: []string{"Org1MSP.peer", "Org2MSP.peer", "Org3MSP.peer"},
			yes:        [][]string{{"Org1MSP.peer", "Org3MSP.peer"}, {"Org1MSP.peer", "Org2MSP.peer", "Org3MSP.peer"}},
			no:         [][]string{{"Org1MSP.peer"}, {"Org2MSP.peer", "Org2MSP.member"}},
		},
		{
			expr:       ` and( "Org1MSP.member" , 'org-2.example.admin' ) `,
			principals: []string{"Org1MSP.member", "org-2.example.admin"},
			yes:        [][]string{{"org-2.example.admin", "Org1MSP.member"}},
			no:         [][]string{{"Org1MSP.member"}},
		},
		{
			expr:       "'Org1MSP.client'",
			principals: []string{"Org1MSP.client"},
			yes:        [][]string{{"Org1MSP.client"}},
			no:         [][]string{{"Org1MSP.peer"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			env, principals, err := ParseSignaturePolicy(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range principals {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.principals) {
				t.Errorf("principals %v; want %v", got, tt.principals)
			}
			for _, s := range tt.yes {
				if !satisfied(t, env, s...) {
					t.Errorf("endorsed by %v: not satisfied; want satisfied", s)
				}
			}
			for _, s := range tt.no {
				if satisfied(t, env, s...) {
					t.Errorf("endorsed by %v: satisfied; want not", s)
				}
			}
		})
	}
}

func TestParseSignaturePolicyErrors(t *testing.T) {
	tests := []struct {
		expr string
		pos  int
		want string
	}{
		{"", 1, "found the end"},
		{"OR('Org1MSP.peer'", 18, `expected ")"`},
		{"OR('Org1MSP.peer' 'Org2MSP.peer')", 19, `expected ")"`},
		{"XOR('Org1MSP.peer')", 1, `unknown gate "XOR"`},
		{"OR('Org1MSP.peer', 'Org2MSP.orderer')", 20, `role "orderer"`},
		{"OR('Org1MSP.peer', 'Org2MSP')", 20, "not 'MSPID.role'"},
		{"OR('Org1 MSP.peer')", 4, "letters, digits"},
		{"OR('Org1MSP.peer)", 4, "not closed"},
		{"OutOf(3, 'Org1MSP.peer', 'Org2MSP.peer')", 7, "must be 1 to 2"},
		{"OutOf(0, 'Org1MSP.peer')", 7, "must be 1 to 1"},
		{"OutOf('Org1MSP.peer')", 7, "expected the number"},
		{"OR()", 4, "expected a principal"},
		{"OR('Org1MSP.peer'),", 19, "after the end"},
		{"Org1MSP.peer", 1, `unknown gate "Org1MSP"`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, _, err := ParseSignaturePolicy(tt.expr)
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v; want a PolicyError", err)
			}
			if pe.Pos != tt.pos || !strings.Contains(pe.Msg, tt.want) {
				t.Errorf("error %v; want at position %d, saying %q", err, tt.pos, tt.want)
			}
		})
	}
}

func TestRulePolicy(t *testing.T) {
	orgs := []string{"Org3MSP", "Org1MSP", "Org2MSP"}
	tests := []struct {
		rule    string
		yes, no []string
	}{
		{PolicyAny, []string{"Org2MSP.peer"}, []string{"Org2MSP.member"}},
		{PolicyMajority, []string{"Org2MSP.peer", "Org3MSP.peer"}, []string{"Org3MSP.peer"}},
		{PolicyAll, []string{"Org1MSP.peer", "Org2MSP.peer", "Org3MSP.peer"}, []string{"Org1MSP.peer", "Org2MSP.peer"}},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			expr, err := RulePolicy(tt.rule, orgs)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := RulePolicy(tt.rule, []string{"Org2MSP", "Org1MSP", "Org3MSP", "Org1MSP"})
			if again != expr {
				t.Errorf("%q, then %q for the same organisations in another order", expr, again)
			}
			env, _, err := ParseSignaturePolicy(expr)
			if err != nil {
				t.Fatalf("%s: %v", expr, err)
			}
			if !satisfied(t, env, tt.yes...) || satisfied(t, env, tt.no...) {
				t.Errorf("%s: want satisfied by %v and not by %v", expr, tt.yes, tt.no)
			}
		})
	}
	if _, err := RulePolicy("SOME", orgs); err == nil {
		t.Error("rule SOME accepted")
	}
	if _, err := RulePolicy(PolicyAll, nil); err == nil {
		t.Error("a rule over no organisation accepted")
	}
}

// The approvals of every organisation and the commit carry the same
// policy bytes, as a peer decodes them from the signed proposals.
func TestApproveAndCommitCarrySignaturePolicy(t *testing.T) {
	env, _, err := ParseSignaturePolicy("OR('Org1MSP.peer', 'Org2MSP.peer')")
	if err != nil {
		t.Fatal(err)
	}
	vp, err := SignatureValidationParameter(env)
	if err != nil {
		t.Fatal(err)
	}
	def := testDef
	def.ValidationParameter = vp
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	var seen [][]byte
	for _, o := range []struct{ domain, msp string }{{"org1.example.com", "Org1MSP"}, {"org2.example.com", "Org2MSP"}} {
		org := newTestOrg(t, o.domain, o.msp)
		id, err := newIdentity(org.admin)
		if err != nil {
			t.Fatal(err)
		}
		approve, err := approveArgs(def)
		if err != nil {
			t.Fatal(err)
		}
		commit, err := commitArgs(def)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			fn      string
			arg     proto.Message
			decoded interface {
				proto.Message
				GetValidationParameter() []byte
			}
		}{
			{fnApprove, approve, &lb.ApproveChaincodeDefinitionForMyOrgArgs{}},
			{fnCommit, commit, &lb.CommitChaincodeDefinitionArgs{}},
		} {
			p, err := newProposal(id, "mychannel", c.fn, c.arg)
			if err != nil {
				t.Fatal(err)
			}
			d, err := decodeProposal(p.signed)
			if err != nil {
				t.Fatal(err)
			}
			if err := proto.Unmarshal(d.arg, c.decoded); err != nil {
				t.Fatal(err)
			}
			var ap pb.ApplicationPolicy
			if err := proto.Unmarshal(c.decoded.GetValidationParameter(), &ap); err != nil {
				t.Fatal(err)
			}
			got := ap.GetSignaturePolicy()
			if got == nil {
				t.Fatalf("%s of %s: validation parameter %v; want a signature policy", c.fn, o.msp, &ap)
			}
			if !satisfied(t, got, "Org2MSP.peer") || satisfied(t, got, "Org2MSP.admin") {
				t.Errorf("%s of %s: policy %v; want OR of the two organisations' peers", c.fn, o.msp, got)
			}
			seen = append(seen, c.decoded.GetValidationParameter())
		}
	}
	for i, b := range seen {
		if !bytes.Equal(b, seen[0]) {
			t.Errorf("proposal %d carries policy bytes %x; proposal 0 %x", i, b, seen[0])
		}
	}

	both := def
	both.EndorsementPolicy = DefaultEndorsementPolicy
	if err := both.Validate(); !errors.Is(err, ErrDefinition) || !strings.Contains(err.Error(), "validationParameter") {
		t.Errorf("a definition with both a channel policy and a validation parameter: %v; want refused naming validationParameter", err)
	}
	junk := testDef
	junk.ValidationParameter = []byte{0xff, 0x01}
	if err := junk.Validate(); !errors.Is(err, ErrDefinition) {
		t.Errorf("a definition whose validation parameter is no policy: %v; want refused", err)
	}

	cur := &CommittedDefinition{Version: def.Version, EndorsementPlugin: endorsementPlugin, ValidationPlugin: validationPlugin, ValidationParameter: vp}
	if !cur.Runs(def) {
		t.Error("a committed definition with the same policy does not run it")
	}
	if cur.Runs(testDef) {
		t.Error("a committed definition with a signature policy runs the same version with the channel's default")
	}
}
