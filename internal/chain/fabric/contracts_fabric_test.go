package fabric

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/builder"
	"github.com/chaindock/chaindock/internal/chain/fabric/fabrictest"
)

// TestMain lets the test binary stand in for chaindock as the peers'
// external builder, which runs the server's own binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == builder.Command {
		os.Exit(builder.Main(os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

// TestTemplatesOnFabric runs a planned network with its chaincode host on
// real Fabric nodes (the user's binaries, FABRIC_BIN or PATH), deploys
// both templates with DeployContract, and has each organisation's peer
// endorse a call of each: the peer dials the chaincode host at the
// address of the planned package, and the server registers under the
// package ID the plan gave it, or the peer would refuse it.
func TestTemplatesOnFabric(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Fabric nodes: not in -short mode")
	}
	fabBin := os.Getenv("FABRIC_BIN")
	if fabBin == "" {
		p, err := exec.LookPath(PeerProgram)
		if err != nil {
			t.Skip("no Fabric binaries: set FABRIC_BIN to the directory of Fabric's peer and orderer, or put them on PATH")
		}
		fabBin = filepath.Dir(p)
	}
	ccBin := chaincodeBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	n := decode(t, "two-orgs.good.yaml")
	n.Spec.Organizations[0].Peers, n.Spec.Organizations[1].Peers = 1, 1
	n.Spec.Fabric.Orderers, n.Spec.Fabric.Templates = 1, true
	d := New()
	ports := map[string]map[string]int{}
	for _, ns := range n.Spec.Nodes() {
		ports[ns.Name] = map[string]int{}
		for _, p := range d.PortNames(&n.Spec, ns.Role) {
			ports[ns.Name][p] = fabrictest.FreePort(t)
		}
	}
	plan, err := d.Plan(ctx, chain.PlanRequest{Network: n, Ports: ports, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, nd := range plan.Nodes {
		program := filepath.Join(fabBin, nd.Spec.Program)
		if nd.Role == apis.RoleChaincode {
			program = ccBin
		}
		fabrictest.RunNode(t, program, filepath.Join(root, nd.Name), nd)
	}
	fabrictest.JoinAll(ctx, t, d, n, plan)
	fabrictest.WaitUntil(ctx, t, "the chaincode host", func() (bool, error) {
		_, err := d.Probe(ctx, plan.Nodes[len(plan.Nodes)-1])
		return err == nil, err
	})

	// A call of each template, by a client of org.
	calls := map[string]func(org string) []string{
		"notary": func(string) []string { return []string{"Notarize", hex.EncodeToString(make([]byte, 32)), "first"} },
		"asset":  func(org string) []string { return []string{"Create", "a1", MSPID(org), "5"} },
	}
	for _, tmpl := range d.Templates() {
		name := tmpl.Name[len("fabric-"):]
		start := time.Now()
		res, err := d.DeployContract(ctx, n, chain.DeployRequest{Name: name, Package: &tmpl, Plan: plan})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: committed on both organisations' peers %.1fs after the request (block %d)", tmpl.Ref(), time.Since(start).Seconds(), res.Height)
		if res.Ref != name || res.TxHash == "" || res.Height < 2 {
			t.Errorf("%s deployed as %+v", tmpl.Ref(), res)
		}
		// Deploying it again finds it committed and sends nothing.
		again, err := d.DeployContract(ctx, n, chain.DeployRequest{Name: name, Package: &tmpl, Plan: plan})
		if err != nil || again.TxHash != "" {
			t.Errorf("deploying %s again: %+v, %v; want nothing sent", tmpl.Ref(), again, err)
		}
		for _, nd := range plan.Nodes {
			if nd.Role != apis.RoleFull {
				continue
			}
			a, err := loadAdmin(plan, nd.Organization)
			if err != nil {
				t.Fatal(err)
			}
			call := calls[name](nd.Organization)
			resp := endorse(ctx, t, nd, a, plan.ChainID, name, call...)
			var out map[string]any
			if err := json.Unmarshal(resp.GetResponse().GetPayload(), &out); err != nil {
				t.Fatalf("%s on %s: %v in %q", name, nd.Name, err, resp.GetResponse().GetPayload())
			}
			t.Logf("%s endorsed by %s: %s", call[0], nd.Name, resp.GetResponse().GetPayload())
		}
	}
}

// chaincodeBinary is chaindock-chaincode: from $CHAINDOCK_BIN_DIR, or
// built for the test.
func chaincodeBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("CHAINDOCK_BIN_DIR"); dir != "" {
		if p := filepath.Join(dir, ChaincodeProgram); fileExists(p) {
			return p
		}
	}
	p := filepath.Join(t.TempDir(), ChaincodeProgram)
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", p, "github.com/chaindock/chaindock/cmd/chaindock-chaincode")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", ChaincodeProgram, err, out)
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// endorse has peer node endorse a call of chaincode cc on channel ch, as
// admin a, and returns the peer's answer, which must be a success.
func endorse(ctx context.Context, t *testing.T, node chain.PlannedNode, a *admin, ch, cc string, args ...string) *pb.ProposalResponse {
	t.Helper()
	creator, err := proto.Marshal(&mb.SerializedIdentity{Mspid: a.signer.MSPID, IdBytes: a.certPEM})
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 24)
	_, _ = rand.Read(nonce)
	txID := sha256.Sum256(append(append([]byte{}, nonce...), creator...))
	ext, _ := proto.Marshal(&pb.ChaincodeHeaderExtension{ChaincodeId: &pb.ChaincodeID{Name: cc}})
	chdr, _ := proto.Marshal(&cb.ChannelHeader{
		Type: int32(cb.HeaderType_ENDORSER_TRANSACTION), ChannelId: ch, TxId: hex.EncodeToString(txID[:]),
		Timestamp: timestamppb.Now(), Extension: ext,
	})
	shdr, _ := proto.Marshal(&cb.SignatureHeader{Creator: creator, Nonce: nonce})
	hdr, _ := proto.Marshal(&cb.Header{ChannelHeader: chdr, SignatureHeader: shdr})
	var in [][]byte
	for _, s := range args {
		in = append(in, []byte(s))
	}
	input, _ := proto.Marshal(&pb.ChaincodeInvocationSpec{ChaincodeSpec: &pb.ChaincodeSpec{
		Type: pb.ChaincodeSpec_GOLANG, ChaincodeId: &pb.ChaincodeID{Name: cc}, Input: &pb.ChaincodeInput{Args: in},
	}})
	payload, _ := proto.Marshal(&pb.ChaincodeProposalPayload{Input: input})
	prop, err := proto.Marshal(&pb.Proposal{Header: hdr, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := a.signer.Sign(rand.Reader, prop, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := dialPeer(node, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := pb.NewEndorserClient(conn).ProcessProposal(ctx, &pb.SignedProposal{ProposalBytes: prop, Signature: sig})
	if err != nil {
		t.Fatalf("%s: %s %v: %v", node.Name, cc, args, err)
	}
	if s := resp.GetResponse().GetStatus(); s != 200 {
		t.Fatalf("%s: %s %v: status %d: %s", node.Name, cc, args, s, resp.GetResponse().GetMessage())
	}
	return resp
}
