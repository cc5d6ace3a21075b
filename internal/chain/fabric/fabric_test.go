package fabric

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var registries = apis.Registries{Chains: []string{Name, "cometbft"}, Runtimes: []string{"process"}}

// TestSpecFixtures checks that every testdata/specs/*.good.yaml validates,
// with the driver's checks as the server runs them, and that every
// *.bad.yaml fails with exactly the errors its "# want:" lines list.
func TestSpecFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/specs/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	d := New()
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want, got []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			if _, err := apis.DecodeAndValidate(data, registries, d.Validate); err != nil {
				var list apis.ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("want an ErrorList, got %T %v", err, err)
				}
				for _, e := range list {
					got = append(got, e.Error())
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if strings.HasSuffix(path, ".good.yaml") && len(got) > 0 {
				t.Fatalf("a good spec has errors: %q", got)
			}
			if strings.HasSuffix(path, ".bad.yaml") && len(want) == 0 {
				t.Fatal("a bad fixture must list its errors in # want: lines")
			}
			if !slices.Equal(got, want) {
				t.Fatalf("errors differ\n got: %q\nwant: %q", got, want)
			}
		})
	}
}

func TestValidateRuntime(t *testing.T) {
	spec := decode(t, "two-orgs.good.yaml").Spec
	spec.Runtime, spec.Cluster = apis.RuntimeKubernetes, "lab"
	if errs := New().Validate(&spec); len(errs) != 0 {
		t.Fatalf("a Fabric 3.1 network on Kubernetes: %v", errs)
	}
	// Its pods run the 3.1 images.
	spec.Fabric.Version = "2.5"
	if errs := New().Validate(&spec); len(errs) != 1 || errs[0].Field != "spec.fabric.version" {
		t.Fatalf("a Fabric 2.5 network on Kubernetes: %v", errs)
	}
}

func TestNodes(t *testing.T) {
	n := decode(t, "two-orgs.good.yaml")
	var names []string
	for _, ns := range n.Spec.Nodes() {
		names = append(names, ns.Name+"/"+ns.Role+"/"+ns.Organization)
	}
	want := "orderer-0/validator/orderer orderer-1/validator/orderer orderer-2/validator/orderer " +
		"org1-peer-0/full/org1 org1-peer-1/full/org1 org2-peer-0/full/org2 org2-peer-1/full/org2"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("nodes\n got: %s\nwant: %s", got, want)
	}
	if c := ChannelName("fab", nil); c != "fab" {
		t.Errorf("default channel of fab: %q", c)
	}
	if c := ChannelName("1fab", nil); c != "ch-1fab" || checkChannel(c) != "" {
		t.Errorf("default channel of 1fab: %q, a valid name", c)
	}
	if n.Spec.Consensus.CreateEmptyBlocks == nil || *n.Spec.Consensus.CreateEmptyBlocks {
		t.Error("a Fabric network's default makes empty blocks")
	}
}

func decode(t *testing.T, fixture string) *apis.Network {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata/specs", fixture))
	if err != nil {
		t.Fatal(err)
	}
	n, err := apis.DecodeAndValidate(data, registries, New().Validate)
	if err != nil {
		t.Fatal(err)
	}
	apis.SetDefaults(n)
	return n
}

// planFor plans a fixture with ports from 40000 up, three per node.
func planFor(t *testing.T, fixture string) (*apis.Network, *chain.Plan) {
	t.Helper()
	n := decode(t, fixture)
	return n, planNetwork(t, n)
}

// planNetwork plans network n with ports from 40000 up.
func planNetwork(t *testing.T, n *apis.Network) *chain.Plan {
	t.Helper()
	plan, err := New().Plan(t.Context(), chain.PlanRequest{
		Network: n, Ports: testPorts(n.Spec.Nodes(), &n.Spec, 40000), Host: "127.0.0.1",
		// Now, not a fixed day: the certificates of a plan made a year
		// before would be due for renewal (see renew.go).
		Now: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// testPorts gives nodes of spec the ports their roles have, from from up.
func testPorts(nodes []apis.NodeSpec, spec *apis.NetworkSpec, from int) map[string]map[string]int {
	d := New()
	ports := map[string]map[string]int{}
	for _, ns := range nodes {
		ports[ns.Name] = map[string]int{}
		for _, p := range d.PortNames(spec, ns.Role) {
			ports[ns.Name][p] = from
			from++
		}
	}
	return ports
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file; run with -update if the change is intended\n--- got ---\n%s", path, got)
	}
}

// describe renders a plan without its key material, which is new on
// every run: nodes, roles, programs, arguments, environment, ports,
// endpoints and files (with the content of the config files, which holds
// no key).
func describe(plan *chain.Plan) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "chainID: %s\n", plan.ChainID)
	for _, pn := range plan.Nodes {
		fmt.Fprintf(&b, "\nnode %s role=%s organization=%s joining=%v\n", pn.Name, pn.Role, pn.Organization, pn.Joining)
		fmt.Fprintf(&b, "  nodeID: %s\n", pn.NodeID)
		fmt.Fprintf(&b, "  program: %s %s (image %s)\n", pn.Spec.Program, strings.Join(pn.Spec.Args, " "), pn.Spec.Image)
		for _, k := range sortedKeys(pn.Spec.Env) {
			fmt.Fprintf(&b, "  env %s=%s\n", k, pn.Spec.Env[k])
		}
		for _, k := range sortedKeys(pn.Spec.Ports) {
			fmt.Fprintf(&b, "  port %s=%d\n", k, pn.Spec.Ports[k])
		}
		for _, k := range sortedKeys(pn.Endpoints) {
			fmt.Fprintf(&b, "  endpoint %s=%s\n", k, pn.Endpoints[k])
		}
		for _, f := range pn.Spec.Files {
			fmt.Fprintf(&b, "  file %s mode=%o secret=%v\n", f.Path, f.Mode, f.Secret)
		}
	}
	b.WriteString("\nartifacts:\n")
	for _, f := range plan.Artifacts {
		fmt.Fprintf(&b, "  %s mode=%o secret=%v\n", f.Path, f.Mode, f.Secret)
	}
	return []byte(b.String())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestPlanGolden(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	golden(t, "two-orgs.plan", describe(plan))
	golden(t, "two-orgs.org1-peer-0.core.yaml", chain.FileData(plan.Nodes[3].Spec, fileCoreYAML))
	golden(t, "two-orgs.orderer-0.orderer.yaml", chain.FileData(plan.Nodes[0].Spec, fileOrdererYAML))
}

// TestPlanConfigs reads every node's config file back as YAML and checks
// the keys a peer or orderer of this design needs.
func TestPlanConfigs(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	for _, pn := range plan.Nodes {
		if pn.Role == apis.RoleValidator {
			var cfg map[string]any
			if err := yaml.Unmarshal(chain.FileData(pn.Spec, fileOrdererYAML), &cfg); err != nil {
				t.Fatalf("%s: orderer.yaml: %v", pn.Name, err)
			}
			for key, want := range map[string]any{
				"General.ListenPort":                      float64(pn.Spec.Ports[PortListen]),
				"General.BootstrapMethod":                 "none",
				"General.LocalMSPID":                      "OrdererMSP",
				"General.TLS.Enabled":                     true,
				"General.Cluster.ClientCertificate":       "tls/server.crt",
				"Admin.ListenAddress":                     fmt.Sprintf("127.0.0.1:%d", pn.Spec.Ports[PortAdmin]),
				"Admin.TLS.ClientAuthRequired":            true,
				"Admin.TLS.ClientRootCAs":                 []any{"tls/ca.crt"},
				"ChannelParticipation.Enabled":            true,
				"Operations.ListenAddress":                fmt.Sprintf("127.0.0.1:%d", pn.Spec.Ports[PortOperations]),
				"Metrics.Provider":                        "prometheus",
				"FileLedger.Location":                     "data/ledger",
				"Consensus.WALDir":                        "data/etcdraft/wal",
				"Operations.TLS.Enabled":                  false,
				"General.TLS.RootCAs":                     []any{"tls/ca.crt"},
				"General.Cluster.ClientPrivateKey":        "tls/server.key",
				"Admin.TLS.Certificate":                   "tls/server.crt",
				"ChannelParticipation.MaxRequestBodySize": "1 MB",
			} {
				checkKey(t, pn.Name, cfg, key, want)
			}
			continue
		}
		var cfg map[string]any
		if err := yaml.Unmarshal(chain.FileData(pn.Spec, fileCoreYAML), &cfg); err != nil {
			t.Fatalf("%s: core.yaml: %v", pn.Name, err)
		}
		mate := "org1-peer-1"
		switch pn.Name {
		case "org1-peer-1":
			mate = "org1-peer-0"
		case "org2-peer-0":
			mate = "org2-peer-1"
		case "org2-peer-1":
			mate = "org2-peer-0"
		}
		for key, want := range map[string]any{
			"peer.id":                                 pn.Name,
			"peer.localMspId":                         MSPID(pn.Organization),
			"peer.listenAddress":                      fmt.Sprintf("127.0.0.1:%d", pn.Spec.Ports[PortListen]),
			"peer.chaincodeListenAddress":             fmt.Sprintf("127.0.0.1:%d", pn.Spec.Ports[PortChaincode]),
			"peer.fileSystemPath":                     "data",
			"peer.tls.enabled":                        true,
			"peer.gossip.bootstrap":                   []any{fmt.Sprintf("127.0.0.1:%d", planned(t, plan, mate).Spec.Ports[PortListen])},
			"vm.endpoint":                             "",
			"chaincode.externalBuilders":              []any{map[string]any{"name": "chaindock-ccaas", "path": "builders/chaindock-ccaas"}},
			"ledger.state.stateDatabase":              "goleveldb",
			"operations.listenAddress":                fmt.Sprintf("127.0.0.1:%d", pn.Spec.Ports[PortOperations]),
			"metrics.provider":                        "prometheus",
			"peer.deliveryclient.blockGossipEnabled":  false,
			"peer.gossip.externalEndpoint":            fmt.Sprintf("127.0.0.1:%d", pn.Spec.Ports[PortListen]),
			"peer.limits.concurrency.endorserService": float64(2500),
			"peer.gossip.pvtData.pushAckTimeout":      "3s",
			"chaincode.system.cscc":                   "enable",
			"peer.tls.rootcert.file":                  "tls/ca.crt",
			"peer.mspConfigPath":                      "msp",
			"peer.gateway.enabled":                    true,
			"ledger.history.enableHistoryDatabase":    true,
			"peer.discovery.enabled":                  true,
			"peer.keepalive.deliveryClient.interval":  "60s",
			"peer.gossip.useLeaderElection":           false,
			"peer.gossip.orgLeader":                   true,
			"peer.addressAutoDetect":                  false,
			"peer.chaincodeAddress":                   fmt.Sprintf("127.0.0.1:%d", pn.Spec.Ports[PortChaincode]),
			"peer.address":                            fmt.Sprintf("127.0.0.1:%d", pn.Spec.Ports[PortListen]),
			"peer.networkId":                          "fab",
			"peer.gossip.endpoint":                    fmt.Sprintf("127.0.0.1:%d", pn.Spec.Ports[PortListen]),
		} {
			checkKey(t, pn.Name, cfg, key, want)
		}
		if _, ok := lookup(cfg, "ledger.snapshots.rootDir"); ok {
			t.Errorf("%s: ledger.snapshots.rootDir is set; the peer wants it absolute", pn.Name)
		}
	}
}

func planned(t *testing.T, plan *chain.Plan, name string) chain.PlannedNode {
	t.Helper()
	for _, pn := range plan.Nodes {
		if pn.Name == name {
			return pn
		}
	}
	t.Fatalf("no node %s", name)
	return chain.PlannedNode{}
}

func lookup(cfg map[string]any, key string) (any, bool) {
	var v any = cfg
	for _, k := range strings.Split(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func checkKey(t *testing.T, node string, cfg map[string]any, key string, want any) {
	t.Helper()
	got, ok := lookup(cfg, key)
	if !ok {
		t.Errorf("%s: %s is not set", node, key)
		return
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: %s = %v, want %v", node, key, got, want)
	}
}

// TestPlanIdentities checks the identities and the genesis block: each
// node's enrolment certificate is its organisation's, with its node OU;
// its TLS certificate is good for the address it is reached at; the
// channel has the peer organisations as members and every orderer as a
// Raft consenter at its listen port.
func TestPlanIdentities(t *testing.T) {
	n, plan := planFor(t, "two-orgs.good.yaml")
	for _, pn := range plan.Nodes {
		ca := mustCert(t, chain.FileData(pn.Spec, "msp/"+pki.MSPCACert))
		cert := mustCert(t, chain.FileData(pn.Spec, "msp/"+pki.MSPSignCert))
		if err := cert.CheckSignatureFrom(ca); err != nil {
			t.Errorf("%s: enrolment certificate not signed by its CA: %v", pn.Name, err)
		}
		wantOU := "peer"
		if pn.Role == apis.RoleValidator {
			wantOU = "orderer"
		}
		if !slices.Equal(cert.Subject.OrganizationalUnit, []string{wantOU}) {
			t.Errorf("%s: OU %v, want %s", pn.Name, cert.Subject.OrganizationalUnit, wantOU)
		}
		tlsCert := mustCert(t, chain.FileData(pn.Spec, "tls/"+pki.TLSCert))
		if err := tlsCert.VerifyHostname("127.0.0.1"); err != nil {
			t.Errorf("%s: TLS certificate: %v", pn.Name, err)
		}
		for _, f := range pn.Spec.Files {
			if strings.HasSuffix(f.Path, "priv_sk") || strings.HasSuffix(f.Path, ".key") {
				if !f.Secret || f.Mode != 0o600 {
					t.Errorf("%s: key %s is not a secret of mode 0600", pn.Name, f.Path)
				}
			}
		}
		if !strings.HasPrefix(pn.NodeID, MSPID(pn.Organization)+"/"+pn.Name+".") {
			t.Errorf("%s: node ID %q", pn.Name, pn.NodeID)
		}
	}
	for _, f := range plan.Artifacts {
		if strings.Contains(f.Path, "key") || strings.HasSuffix(f.Path, "priv_sk") {
			if !f.Secret {
				t.Errorf("artifact %s is a key and no secret", f.Path)
			}
		}
	}

	var block cb.Block
	if err := proto.Unmarshal(plan.Artifact(BlockPath("trade")), &block); err != nil {
		t.Fatal(err)
	}
	for _, pn := range plan.Nodes {
		if !slices.Equal(chain.FileData(pn.Spec, BlockPath("trade")), plan.Artifact(BlockPath("trade"))) {
			t.Errorf("%s does not keep the channel's genesis block", pn.Name)
		}
		if channelOf(pn.Spec) != "trade" {
			t.Errorf("%s: channel %q", pn.Name, channelOf(pn.Spec))
		}
	}
	if id, err := channel.ChannelID(&block); err != nil || id != "trade" {
		t.Fatalf("genesis block of channel %q (%v), want trade", id, err)
	}
	cfg, err := channel.ConfigFromBlock(&block)
	if err != nil {
		t.Fatal(err)
	}
	tx := configtx.New(cfg)
	app, err := tx.Application().Configuration()
	if err != nil {
		t.Fatal(err)
	}
	var mspIDs []string
	for _, o := range app.Organizations {
		mspIDs = append(mspIDs, o.Name)
	}
	slices.Sort(mspIDs)
	if !slices.Equal(mspIDs, []string{"Org1MSP", "Org2MSP"}) {
		t.Errorf("application organisations %v", mspIDs)
	}
	ord, err := tx.Orderer().Configuration()
	if err != nil {
		t.Fatal(err)
	}
	var consenters []string
	for _, c := range ord.EtcdRaft.Consenters {
		consenters = append(consenters, fmt.Sprintf("%s:%d", c.Address.Host, c.Address.Port))
	}
	var want []string
	for _, pn := range plan.Nodes[:n.Spec.Fabric.OrdererCount()] {
		want = append(want, fmt.Sprintf("127.0.0.1:%d", pn.Spec.Ports[PortListen]))
	}
	if !slices.Equal(consenters, want) {
		t.Errorf("consenters %v, want %v", consenters, want)
	}
}

func mustCert(t *testing.T, pemData []byte) *x509.Certificate {
	t.Helper()
	c, err := pki.ParseCertPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCSCCProposal checks a JoinChain proposal is signed by the
// organisation's admin as a peer verifies it.
func TestCSCCProposal(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	a, err := loadAdmin(plan, "org1")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := proposal(a, "cscc", "JoinChain", []byte("block"))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(sp.ProposalBytes)
	if !ecdsa.VerifyASN1(a.signer.Certificate.PublicKey.(*ecdsa.PublicKey), digest[:], sp.Signature) {
		t.Error("the proposal's signature does not verify")
	}
	var prop pb.Proposal
	var hdr cb.Header
	var shdr cb.SignatureHeader
	var chdr cb.ChannelHeader
	var payload pb.ChaincodeProposalPayload
	var cis pb.ChaincodeInvocationSpec
	// Each step reads what the one before it decoded.
	for _, step := range []struct {
		b func() []byte
		m proto.Message
	}{
		{func() []byte { return sp.ProposalBytes }, &prop},
		{func() []byte { return prop.Header }, &hdr},
		{func() []byte { return hdr.SignatureHeader }, &shdr},
		{func() []byte { return hdr.ChannelHeader }, &chdr},
		{func() []byte { return prop.Payload }, &payload},
		{func() []byte { return payload.Input }, &cis},
	} {
		if err := proto.Unmarshal(step.b(), step.m); err != nil {
			t.Fatal(err)
		}
	}
	id, cert, err := channel.Creator(shdr.Creator)
	if err != nil {
		t.Fatal(err)
	}
	if id.Mspid != "Org1MSP" || !slices.Equal(cert.Subject.OrganizationalUnit, []string{"admin"}) {
		t.Errorf("signed by %s %v, want Org1MSP's admin", id.Mspid, cert.Subject.OrganizationalUnit)
	}
	args := cis.GetChaincodeSpec().GetInput().GetArgs()
	if cb.HeaderType(chdr.Type) != cb.HeaderType_ENDORSER_TRANSACTION || chdr.ChannelId != "" ||
		cis.GetChaincodeSpec().GetChaincodeId().GetName() != "cscc" || len(args) != 2 || string(args[0]) != "JoinChain" || string(args[1]) != "block" {
		t.Errorf("proposal: header %v, invocation %v", &chdr, &cis)
	}
}

// TestExampleIsValid keeps examples/fabric-2orgs.yaml, which the docs
// show, a spec the server takes.
func TestExampleIsValid(t *testing.T) {
	b, err := os.ReadFile("../../../examples/fabric-2orgs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n, err := apis.DecodeAndValidate(b, registries, New().Validate)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(n.Spec.Nodes()); got != 7 {
		t.Errorf("the example has %d nodes, want 7", got)
	}
}
