package lifecycle_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/chain/fabric/builder"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/fabrictest"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

// TestMain lets the test binary stand in for chaindock as the peers'
// external builder: the driver's builder scripts run this executable's
// fabric-builder command.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == builder.Command {
		os.Exit(builder.Main(os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

// TestLifecycleOnFabric runs the whole lifecycle against real Fabric
// nodes: two organisations of one peer each and one Raft orderer, planned
// by the Fabric driver and joined to their channel by it, each node a
// process of the user's Fabric binaries (FABRIC_BIN or PATH). Both
// organisations install a package and approve it, one admin commits it,
// then the chaincode is upgraded to a new package at sequence 2. Every
// step is repeated to show it is idempotent.
func TestLifecycleOnFabric(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Fabric nodes: not in -short mode")
	}
	bin := fabricBin(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	nw := startNetwork(ctx, t, bin)
	org1, org2 := nw.org(t, "org1"), nw.org(t, "org2")
	orderer := nw.dial(t, nw.node(t, apis.RoleValidator, "orderer"), nw.org(t, "orderer"), org1)
	peer1 := nw.dial(t, nw.node(t, apis.RoleFull, "org1"), org1, org1)
	peer2 := nw.dial(t, nw.node(t, apis.RoleFull, "org2"), org2, org2)
	ch := nw.plan.ChainID

	deploy := func(t *testing.T, def lifecycle.Definition, address string) {
		t.Helper()
		label := fmt.Sprintf("%s_%s", def.Name, def.Version)
		pkg, err := lifecycle.Package(label, lifecycle.Connection{Address: address, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range []struct {
			admin channel.Signer
			peer  grpc.ClientConnInterface
		}{{org1.admin, peer1}, {org2.admin, peer2}} {
			for range 2 {
				id, err := lifecycle.Install(ctx, o.peer, o.admin, pkg)
				if err != nil {
					t.Fatal(err)
				}
				if want := lifecycle.PackageID(label, pkg); id != want {
					t.Fatalf("installed as %s, want %s", id, want)
				}
			}
			pkgs, err := lifecycle.Installed(ctx, o.peer, o.admin)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(pkgs, func(p lifecycle.InstalledPackage) bool { return p.PackageID == lifecycle.PackageID(label, pkg) }) {
				t.Fatalf("%s: installed %v, want %s among them", o.admin.MSPID, pkgs, label)
			}
		}
		def.PackageID = lifecycle.PackageID(label, pkg)

		// One approval of two is not a majority.
		if _, err := lifecycle.Approve(ctx, peer1, orderer, org1.admin, ch, def); err != nil {
			t.Fatal(err)
		}
		fabrictest.WaitUntil(ctx, t, "Org1MSP's approval", func() (bool, error) {
			a, err := lifecycle.CheckCommitReadiness(ctx, peer1, org1.admin, ch, def)
			return a["Org1MSP"] && !a["Org2MSP"], err
		})
		txID, err := lifecycle.Approve(ctx, peer1, orderer, org1.admin, ch, def)
		if err != nil || txID != "" {
			t.Fatalf("approving again sent %q (%v); want nothing sent", txID, err)
		}
		_, err = lifecycle.Commit(ctx, []grpc.ClientConnInterface{peer1, peer2}, orderer, org1.admin, ch, def)
		var nr *lifecycle.NotReadyError
		if !errors.As(err, &nr) || !errors.Is(err, lifecycle.ErrNotReady) {
			t.Fatalf("commit with one approval: %v; want a *NotReadyError", err)
		}
		t.Logf("as expected: %v", err)

		if _, err := lifecycle.Approve(ctx, peer2, orderer, org2.admin, ch, def); err != nil {
			t.Fatal(err)
		}
		// Each peer must see both approvals before it endorses the commit.
		for _, p := range []grpc.ClientConnInterface{peer1, peer2} {
			fabrictest.WaitUntil(ctx, t, "both approvals", func() (bool, error) {
				a, err := lifecycle.CheckCommitReadiness(ctx, p, org2.admin, ch, def)
				return a["Org1MSP"] && a["Org2MSP"], err
			})
		}
		txID, err = lifecycle.Commit(ctx, []grpc.ClientConnInterface{peer2, peer1}, orderer, org2.admin, ch, def)
		if err != nil || txID == "" {
			t.Fatalf("commit: %q, %v", txID, err)
		}
		var got *lifecycle.CommittedDefinition
		for _, p := range []grpc.ClientConnInterface{peer1, peer2} {
			fabrictest.WaitUntil(ctx, t, "the commit", func() (bool, error) {
				got, err = lifecycle.Committed(ctx, p, org1.admin, ch, def.Name)
				if errors.Is(err, lifecycle.ErrNotCommitted) {
					return false, nil
				}
				return err == nil && got.Sequence == def.Sequence, err
			})
		}
		if got.Version != def.Version || got.EndorsementPolicy != lifecycle.DefaultEndorsementPolicy || got.InitRequired ||
			!got.Approvals["Org1MSP"] || !got.Approvals["Org2MSP"] {
			t.Errorf("committed %+v; want version %s, the default policy, no init and both approvals", got, def.Version)
		}
		txID, err = lifecycle.Commit(ctx, []grpc.ClientConnInterface{peer1, peer2}, orderer, org1.admin, ch, def)
		if err != nil || txID != "" {
			t.Fatalf("committing again sent %q (%v); want nothing sent", txID, err)
		}
		// The peer now runs the package for the definition.
		fabrictest.WaitUntil(ctx, t, "the package to serve the definition", func() (bool, error) {
			pkgs, err := lifecycle.Installed(ctx, peer2, org2.admin)
			for _, p := range pkgs {
				if p.PackageID == def.PackageID {
					return slices.Contains(p.References[ch], def.Name+"@"+def.Version), err
				}
			}
			return false, err
		})

		// What a peer that joins later reads to catch up: the committed
		// definitions, an organisation's approval with its package, and
		// the package's bytes.
		defs, err := lifecycle.Definitions(ctx, peer1, org1.admin, ch)
		if err != nil || len(defs) != 1 || defs[0].Name != def.Name || defs[0].Version != def.Version ||
			defs[0].Sequence != def.Sequence || defs[0].EndorsementPolicy != lifecycle.DefaultEndorsementPolicy {
			t.Fatalf("definitions: %+v, %v; want %s version %s sequence %d with the default policy", defs, err, def.Name, def.Version, def.Sequence)
		}
		approval, err := lifecycle.Approved(ctx, peer2, org2.admin, ch, def.Name, def.Sequence)
		if err != nil || approval.PackageID != def.PackageID || approval.Version != def.Version || approval.EndorsementPolicy != lifecycle.DefaultEndorsementPolicy {
			t.Fatalf("Org2MSP's approval: %+v, %v; want version %s, package %s, the default policy", approval, err, def.Version, def.PackageID)
		}
		b, err := lifecycle.InstalledPackageBytes(ctx, peer2, org2.admin, def.PackageID)
		if err != nil || !bytes.Equal(b, pkg) {
			t.Fatalf("the installed package: %d bytes, %v; want the %d installed", len(b), err, len(pkg))
		}
	}

	if _, err := lifecycle.Committed(ctx, peer1, org1.admin, ch, "notary"); !errors.Is(err, lifecycle.ErrNotCommitted) {
		t.Fatalf("before any commit: %v; want ErrNotCommitted", err)
	}
	start := time.Now()
	deploy(t, lifecycle.Definition{Name: "notary", Version: "1.0", Sequence: 1}, "127.0.0.1:39999")
	t.Logf("sequence 1 committed in %.1fs", time.Since(start).Seconds())
	start = time.Now()
	deploy(t, lifecycle.Definition{Name: "notary", Version: "1.1", Sequence: 2}, "127.0.0.1:39998")
	t.Logf("upgrade to sequence 2 committed in %.1fs", time.Since(start).Seconds())

	_, err := lifecycle.Commit(ctx, []grpc.ClientConnInterface{peer1}, orderer, org1.admin, ch, lifecycle.Definition{Name: "notary", Version: "1.0", Sequence: 1})
	if !errors.Is(err, lifecycle.ErrSuperseded) {
		t.Errorf("committing sequence 1 after 2: %v; want ErrSuperseded", err)
	}
}

func fabricBin(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("FABRIC_BIN"); d != "" {
		return d
	}
	p, err := exec.LookPath(fabric.PeerProgram)
	if err != nil {
		t.Skip("no Fabric binaries: set FABRIC_BIN to the directory of Fabric's peer and orderer, or put them on PATH")
	}
	return filepath.Dir(p)
}

type testNetwork struct {
	plan *chain.Plan
}

type testOrg struct {
	admin     channel.Signer
	adminTLS  tls.Certificate
	tlsCACert []byte
}

func (n *testNetwork) artifact(t *testing.T, org, p string) []byte {
	t.Helper()
	b := n.plan.Artifact(filepath.Join("orgs", org, p))
	if b == nil {
		t.Fatalf("the plan has no artifact orgs/%s/%s", org, p)
	}
	return b
}

func (n *testNetwork) org(t *testing.T, name string) testOrg {
	t.Helper()
	cert, err := pki.ParseCertPEM(n.artifact(t, name, "admin/msp/"+pki.MSPSignCert))
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ParseKeyPEM(n.artifact(t, name, "admin/msp/"+pki.MSPKey))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(n.artifact(t, name, "admin/tls/"+pki.TLSCert), n.artifact(t, name, "admin/tls/"+pki.TLSKey))
	if err != nil {
		t.Fatal(err)
	}
	return testOrg{
		admin:     channel.Signer{MSPID: fabric.MSPID(name), Cert: cert, Key: key},
		adminTLS:  pair,
		tlsCACert: n.artifact(t, name, "admin/tls/"+pki.TLSCACert),
	}
}

func (n *testNetwork) node(t *testing.T, role, org string) chain.PlannedNode {
	t.Helper()
	for _, nd := range n.plan.Nodes {
		if nd.Role == role && nd.Organization == org {
			return nd
		}
	}
	t.Fatalf("no %s node of %s", role, org)
	return chain.PlannedNode{}
}

// dial connects to a node's gRPC service, verifying it with its
// organisation's TLS CA, as client's admin.
func (n *testNetwork) dial(t *testing.T, nd chain.PlannedNode, owner, client testOrg) *grpc.ClientConn {
	t.Helper()
	u, err := url.Parse(nd.Endpoints[fabric.PortListen])
	if err != nil || u.Host == "" {
		t.Fatalf("%s: no listen endpoint in %v", nd.Name, nd.Endpoints)
	}
	conn, err := lifecycle.Dial(lifecycle.Endpoint{Address: u.Host, RootCAs: owner.tlsCACert, Client: &client.adminTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// startNetwork plans a network with the Fabric driver, runs each node as
// a process in a directory of its own, and joins them all to the
// channel with the driver's Bootstrap.
func startNetwork(ctx context.Context, t *testing.T, bin string) *testNetwork {
	t.Helper()
	spec := []byte(`apiVersion: chaindock/v1
kind: Network
metadata: {name: lc}
spec:
  chain: fabric
  runtime: process
  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric:
    orderers: 1
    channel: lifecycle
`)
	d := fabric.New()
	nw, err := apis.DecodeAndValidate(spec, apis.Registries{Chains: []string{fabric.Name}, Runtimes: []string{"process"}}, d.Validate)
	if err != nil {
		t.Fatal(err)
	}
	apis.SetDefaults(nw)
	ports := map[string]map[string]int{}
	for _, ns := range nw.Spec.Nodes() {
		ports[ns.Name] = map[string]int{}
		for _, p := range d.PortNames(&nw.Spec, ns.Role) {
			ports[ns.Name][p] = fabrictest.FreePort(t)
		}
	}
	plan, err := d.Plan(ctx, chain.PlanRequest{Network: nw, Ports: ports, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, nd := range plan.Nodes {
		fabrictest.RunNode(t, filepath.Join(bin, nd.Spec.Program), filepath.Join(root, nd.Name), nd)
	}
	// Orderers first: a peer joins with the block and then pulls the
	// channel from them.
	fabrictest.JoinAll(ctx, t, d, nw, plan)
	return &testNetwork{plan: plan}
}
