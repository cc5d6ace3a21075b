package lifecycle

import (
	"bytes"
	"errors"
	"testing"
	"time"

	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	lb "github.com/hyperledger/fabric-protos-go-apiv2/peer/lifecycle"
	"google.golang.org/protobuf/proto"
)

var testDef = Definition{Name: "notary", Version: "1.0", Sequence: 1, PackageID: "notary_1.0:" + string(bytes.Repeat([]byte("ab"), 32))}

func TestProposalAsPeerReadsIt(t *testing.T) {
	org := newTestOrg(t, "org1.example.com", "Org1MSP")
	id, err := newIdentity(org.admin)
	if err != nil {
		t.Fatal(err)
	}
	approve, err := approveArgs(testDef)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := commitArgs(testDef)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, channel, fn string
		arg, decoded      proto.Message
	}{
		{"install", "", fnInstall, &lb.InstallChaincodeArgs{ChaincodeInstallPackage: []byte("package")}, &lb.InstallChaincodeArgs{}},
		{"query installed", "", fnQueryInstalled, &lb.QueryInstalledChaincodesArgs{}, &lb.QueryInstalledChaincodesArgs{}},
		{"approve", "mychannel", fnApprove, approve, &lb.ApproveChaincodeDefinitionForMyOrgArgs{}},
		{"commit", "mychannel", fnCommit, commit, &lb.CommitChaincodeDefinitionArgs{}},
		{"query definition", "mychannel", fnQueryDefinition, &lb.QueryChaincodeDefinitionArgs{Name: "notary"}, &lb.QueryChaincodeDefinitionArgs{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newProposal(id, tt.channel, tt.fn, tt.arg)
			if err != nil {
				t.Fatal(err)
			}
			d, err := decodeProposal(p.signed)
			if err != nil {
				t.Fatal(err)
			}
			if d.chdr.GetChannelId() != tt.channel || d.chdr.GetTxId() != p.txID {
				t.Errorf("channel %q, tx %s; want %q, %s", d.chdr.GetChannelId(), d.chdr.GetTxId(), tt.channel, p.txID)
			}
			if ts := d.chdr.GetTimestamp().AsTime(); time.Since(ts).Abs() > time.Minute {
				t.Errorf("timestamp %v is not now", ts)
			}
			if d.creator.GetMspid() != "Org1MSP" || !d.cert.Equal(org.admin.Cert) {
				t.Errorf("creator %s %s; want Org1MSP's admin", d.creator.GetMspid(), d.cert.Subject)
			}
			if d.chaincode != SystemChaincode || d.fn != tt.fn {
				t.Errorf("calls %s.%s; want %s.%s", d.chaincode, d.fn, SystemChaincode, tt.fn)
			}
			if err := proto.Unmarshal(d.arg, tt.decoded); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(tt.decoded, tt.arg) {
				t.Errorf("argument %v; want %v", tt.decoded, tt.arg)
			}

			tampered := proto.Clone(p.signed).(*pb.SignedProposal)
			tampered.ProposalBytes = append(bytes.Clone(tampered.ProposalBytes), 0)
			if _, err := decodeProposal(tampered); err == nil {
				t.Error("a changed proposal still verifies")
			}
		})
	}

	a, _ := newProposal(id, "mychannel", fnApprove, approve)
	b, _ := newProposal(id, "mychannel", fnApprove, approve)
	if a.txID == b.txID {
		t.Error("two proposals have the same transaction ID")
	}
}

func TestApproveArguments(t *testing.T) {
	args, err := approveArgs(testDef)
	if err != nil {
		t.Fatal(err)
	}
	// Fabric's lifecycle.DefaultEndorsementPolicyBytes: what the peer
	// stores for a definition that names no policy, so an approval made
	// by the peer CLI and one made here agree.
	fabricDefault := append([]byte{0x12, 32}, "/Channel/Application/Endorsement"...)
	if !bytes.Equal(args.GetValidationParameter(), fabricDefault) {
		t.Errorf("validation parameter %x; want Fabric's default %x", args.GetValidationParameter(), fabricDefault)
	}
	if args.GetEndorsementPlugin() != "escc" || args.GetValidationPlugin() != "vscc" || args.GetInitRequired() {
		t.Errorf("plugins %s/%s, init required %v; want escc/vscc and false", args.GetEndorsementPlugin(), args.GetValidationPlugin(), args.GetInitRequired())
	}
	if got := args.GetSource().GetLocalPackage().GetPackageId(); got != testDef.PackageID {
		t.Errorf("source package %q; want %q", got, testDef.PackageID)
	}
	noPkg := testDef
	noPkg.PackageID = ""
	args, err = approveArgs(noPkg)
	if err != nil {
		t.Fatal(err)
	}
	if args.GetSource().GetUnavailable() == nil {
		t.Errorf("source %v; want unavailable for a definition without a package", args.GetSource())
	}

	other := testDef
	other.EndorsementPolicy = "/Channel/Application/Writers"
	args, err = approveArgs(other)
	if err != nil {
		t.Fatal(err)
	}
	var ap pb.ApplicationPolicy
	if err := proto.Unmarshal(args.GetValidationParameter(), &ap); err != nil || ap.GetChannelConfigPolicyReference() != other.EndorsementPolicy {
		t.Errorf("validation parameter names %q (%v); want %s", ap.GetChannelConfigPolicyReference(), err, other.EndorsementPolicy)
	}
}

func TestTransactionAsCommitterReadsIt(t *testing.T) {
	org1 := newTestOrg(t, "org1.example.com", "Org1MSP")
	org2 := newTestOrg(t, "org2.example.com", "Org2MSP")
	id, err := newIdentity(org1.admin)
	if err != nil {
		t.Fatal(err)
	}
	args, err := commitArgs(testDef)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProposal(id, "mychannel", fnCommit, args)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeProposal(p.signed)
	if err != nil {
		t.Fatal(err)
	}
	var responses []*pb.ProposalResponse
	for _, org := range []*testOrg{org1, org2} {
		r, err := endorseAs(org.peer, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		responses = append(responses, r)
	}

	env, err := p.transaction(responses)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := decodeTransaction(env)
	if err != nil {
		t.Fatal(err)
	}
	if tx.chdr.GetTxId() != p.txID || tx.chdr.GetChannelId() != "mychannel" || tx.creator.GetMspid() != "Org1MSP" {
		t.Errorf("tx %s on %q by %s; want %s on mychannel by Org1MSP", tx.chdr.GetTxId(), tx.chdr.GetChannelId(), tx.creator.GetMspid(), p.txID)
	}
	if tx.fn != fnCommit {
		t.Errorf("transaction calls %s; want %s", tx.fn, fnCommit)
	}
	var got lb.CommitChaincodeDefinitionArgs
	if err := proto.Unmarshal(tx.arg, &got); err != nil || !proto.Equal(&got, args) {
		t.Errorf("transaction argument %v (%v); want %v", &got, err, args)
	}
	if len(tx.endorsers) != 2 || tx.endorsers[0] != "Org1MSP" || tx.endorsers[1] != "Org2MSP" {
		t.Errorf("endorsed by %v; want Org1MSP and Org2MSP", tx.endorsers)
	}

	t.Run("refuses", func(t *testing.T) {
		differ, err := endorseAs(org2.peer, d, []byte("another result"))
		if err != nil {
			t.Fatal(err)
		}
		failed := proto.Clone(responses[1]).(*pb.ProposalResponse)
		failed.Response = &pb.Response{Status: 500, Message: "chaincode definition not agreed to by this org (Org2MSP)"}
		unendorsed := proto.Clone(responses[1]).(*pb.ProposalResponse)
		unendorsed.Endorsement = nil
		tests := []struct {
			name      string
			responses []*pb.ProposalResponse
			say       string
		}{
			{"none", nil, "no endorsements"},
			{"disagreeing peers", []*pb.ProposalResponse{responses[0], differ}, "response 1 differs from response 0: the peers do not agree on the result (0: Org1MSP, 1: Org2MSP)"},
			{"failed endorsement", []*pb.ProposalResponse{responses[0], failed}, "response 1: CommitChaincodeDefinition: status 500: chaincode definition not agreed to by this org (Org2MSP)"},
			{"no endorsement", []*pb.ProposalResponse{unendorsed}, "response 0 has no endorsement"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := p.transaction(tt.responses)
				wantErr(t, err, nil, tt.say)
			})
		}
		_, err = p.transaction([]*pb.ProposalResponse{failed})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 500 {
			t.Errorf("error %v; want a *StatusError with status 500", err)
		}
	})
}

func TestIdentityRefusesIncomplete(t *testing.T) {
	org := newTestOrg(t, "org1.example.com", "Org1MSP")
	s := org.admin
	s.MSPID, s.Key = "", nil
	_, err := newIdentity(s)
	wantErr(t, err, nil, "no MSP ID", "no private key")
}

func TestDefinitionValidate(t *testing.T) {
	if err := testDef.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		def  Definition
		say  []string
	}{
		{"empty", Definition{}, []string{`name: ""`, `version: ""`, "sequence: 0"}},
		{"bad name", Definition{Name: "no.dots", Version: "1", Sequence: 1}, []string{`name: "no.dots": letters and digits, joined by single '-' or '_'`}},
		{"double dash", Definition{Name: "a--b", Version: "1", Sequence: 1}, []string{"name:"}},
		{"system", Definition{Name: "lscc", Version: "1", Sequence: 1}, []string{`"lscc" is the name of a system chaincode`}},
		{"bad version", Definition{Name: "notary", Version: "1 0", Sequence: 1}, []string{`version: "1 0"`}},
		{"bad package", Definition{Name: "notary", Version: "1", Sequence: 1, PackageID: "notary"}, []string{`packageID: "notary" is not LABEL:SHA256`}},
		{"bad policy", Definition{Name: "notary", Version: "1", Sequence: 1, EndorsementPolicy: "OR('Org1MSP.peer')"}, []string{"endorsementPolicy:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.def.Validate(), ErrDefinition, tt.say...)
		})
	}
}
