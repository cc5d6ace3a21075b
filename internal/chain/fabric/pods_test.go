package fabric

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/builder"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/version"
)

// servicePlacement places nodes as the Kubernetes runtime does: each in a
// pod of the network's namespace, reached at its headless Service.
type servicePlacement struct{ namespace string }

func (p servicePlacement) ListenHost() string          { return "0.0.0.0" }
func (p servicePlacement) NodeHost(node string) string { return node + "." + p.namespace + ".svc" }
func (p servicePlacement) LocalHost() string           { return "127.0.0.1" }

const onKubernetes = `
apiVersion: chaindock/v1
kind: Network
metadata: {name: fab}
spec:
  chain: fabric
  runtime: kubernetes
  cluster: lab
  organizations:
    - {name: org1, peers: 2}
    - {name: org2, peers: 1}
  fabric: {orderers: 3, channel: trade}
`

var podRegistries = apis.Registries{Chains: []string{Name}, Runtimes: []string{"process", apis.RuntimeKubernetes}}

// planInPods plans specYAML for pods of namespace "fab", with ports from
// 40000 up.
func planInPods(t *testing.T, specYAML string) (*apis.Network, *chain.Plan) {
	t.Helper()
	return planSpec(t, specYAML, servicePlacement{"fab"})
}

// planSpec plans specYAML with placement (none: the server's host), with
// ports from 40000 up.
func planSpec(t *testing.T, specYAML string, placement chain.Placement) (*apis.Network, *chain.Plan) {
	t.Helper()
	d := New()
	n, err := apis.DecodeAndValidate([]byte(specYAML), podRegistries, d.Validate)
	if err != nil {
		t.Fatal(err)
	}
	apis.SetDefaults(n)
	plan, err := d.Plan(t.Context(), chain.PlanRequest{
		Network: n, Ports: testPorts(n.Spec.Nodes(), &n.Spec, 40000), Host: "127.0.0.1", Placement: placement,
		Rand: rand.NewChaCha8([32]byte{7}), Now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, plan
}

func wantValues(t *testing.T, node string, data []byte, want map[string]any) {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	for key, w := range want {
		got, ok := lookup(cfg, key)
		if !ok {
			t.Errorf("%s: no %s", node, key)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: %s = %v, want %v", node, key, got, w)
		}
	}
}

func fileOf(spec runtime.NodeSpec, path string) (runtime.File, bool) {
	for _, f := range spec.Files {
		if f.Path == path {
			return f, true
		}
	}
	return runtime.File{}, false
}

// TestPlanInPods: in pods, nodes run the official images, listen on all
// their addresses, are reached at their Services (endpoints, gossip,
// orderer endpoints and Raft consenters in the genesis block), and carry
// the Services' names in their TLS certificates. A peer keeps its state in
// CouchDB, a sidecar reached on loopback, whose credentials are only in
// Secret files, and builds chaincode with Fabric's ccaas builder from its
// image.
func TestPlanInPods(t *testing.T) {
	if PeerImage != "hyperledger/fabric-peer:3.1.5" || OrdererImage != "hyperledger/fabric-orderer:3.1.5" || CouchDBImage != "couchdb:3.3.3" {
		t.Fatalf("images %s, %s, %s", PeerImage, OrdererImage, CouchDBImage)
	}
	_, plan := planInPods(t, onKubernetes)
	service := func(node string) string { return node + ".fab.svc" }
	if len(plan.Nodes) != 6 {
		t.Fatalf("%d nodes", len(plan.Nodes))
	}
	for _, pn := range plan.Nodes {
		spec := pn.Spec
		host := service(pn.Name)
		at := func(port string) string { return fmt.Sprintf("%s:%d", host, spec.Ports[port]) }
		any0 := func(port string) string { return fmt.Sprintf("0.0.0.0:%d", spec.Ports[port]) }

		// Its TLS certificate names its Service, short and long.
		crt, ok := fileOf(spec, "tls/server.crt")
		if !ok {
			t.Fatalf("%s has no TLS certificate", pn.Name)
		}
		block, _ := pem.Decode(crt.Data)
		if block == nil {
			t.Fatalf("%s: TLS certificate is not PEM", pn.Name)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{host, pn.Name + ".fab", pn.Name} {
			if err := cert.VerifyHostname(name); err != nil {
				t.Errorf("%s: TLS certificate (%v) does not name %s: %v", pn.Name, cert.DNSNames, name, err)
			}
		}

		if pn.Endpoints[PortListen] != "grpcs://"+at(PortListen) || pn.Endpoints[PortOperations] != "http://"+at(PortOperations) {
			t.Errorf("%s endpoints %v", pn.Name, pn.Endpoints)
		}
		if spec.Env["FABRIC_CFG_PATH"] != "." {
			t.Errorf("%s: FABRIC_CFG_PATH=%q", pn.Name, spec.Env["FABRIC_CFG_PATH"])
		}

		if pn.Role == apis.RoleValidator {
			if spec.Image != OrdererImage || spec.Program != OrdererProgram || len(spec.Sidecars) > 0 || len(spec.Init) > 0 {
				t.Errorf("%s runs %s (%s), sidecars %v, init %v", pn.Name, spec.Image, spec.Program, spec.Sidecars, spec.Init)
			}
			if pn.Endpoints[PortAdmin] != "https://"+at(PortAdmin) {
				t.Errorf("%s admin endpoint %s", pn.Name, pn.Endpoints[PortAdmin])
			}
			wantValues(t, pn.Name, chain.FileData(spec, fileOrdererYAML), map[string]any{
				"General.ListenAddress":    "0.0.0.0",
				"General.ListenPort":       spec.Ports[PortListen],
				"Admin.ListenAddress":      any0(PortAdmin),
				"Operations.ListenAddress": any0(PortOperations),
			})
			for _, f := range spec.Files {
				if strings.HasPrefix(f.Path, dirCouchDB+"/") {
					t.Errorf("%s has CouchDB file %s", pn.Name, f.Path)
				}
			}
			continue
		}

		if spec.Image != PeerImage || spec.Program != PeerProgram || !slices.Equal(spec.Args, []string{"node", "start"}) {
			t.Errorf("%s runs %s (%s %v)", pn.Name, spec.Image, spec.Program, spec.Args)
		}
		if pn.Endpoints[PortChaincode] != "tcp://"+at(PortChaincode) {
			t.Errorf("%s chaincode endpoint %s", pn.Name, pn.Endpoints[PortChaincode])
		}
		var mates []any
		for _, o := range plan.Nodes {
			if o.Organization == pn.Organization && o.Name != pn.Name {
				mates = append(mates, fmt.Sprintf("%s:%d", service(o.Name), o.Spec.Ports[PortListen]))
			}
		}
		if mates == nil {
			mates = []any{}
		}
		core := chain.FileData(spec, fileCoreYAML)
		wantValues(t, pn.Name, core, map[string]any{
			"peer.listenAddress":                        any0(PortListen),
			"peer.chaincodeListenAddress":               any0(PortChaincode),
			"operations.listenAddress":                  any0(PortOperations),
			"peer.address":                              at(PortListen),
			"peer.chaincodeAddress":                     at(PortChaincode),
			"peer.gossip.endpoint":                      at(PortListen),
			"peer.gossip.externalEndpoint":              at(PortListen),
			"peer.gossip.bootstrap":                     mates,
			"ledger.state.stateDatabase":                "CouchDB",
			"ledger.state.couchDBConfig.couchDBAddress": "127.0.0.1:5984",
			"ledger.state.couchDBConfig.username":       placeholderUser,
			"ledger.state.couchDBConfig.password":       placeholderPassword,
			"chaincode.externalBuilders": []any{map[string]any{
				"name": "ccaas_builder", "path": "/opt/hyperledger/ccaas_builder",
				"propagateEnvironment": []any{"CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"},
			}},
		})
		for _, f := range spec.Files {
			if strings.HasPrefix(f.Path, dirBuilders+"/") {
				t.Errorf("%s has ChainDock's builder %s, which runs a binary its image lacks", pn.Name, f.Path)
			}
		}

		// CouchDB beside it, ready on loopback, its credentials in the
		// Secret files only.
		if len(spec.Sidecars) != 1 {
			t.Fatalf("%s sidecars %+v", pn.Name, spec.Sidecars)
		}
		sc := spec.Sidecars[0]
		if sc.Name != "couchdb" || sc.Image != CouchDBImage || sc.Program != "" || sc.ReadyAddress != "127.0.0.1:5984" || len(sc.Env) > 0 {
			t.Errorf("%s CouchDB sidecar %+v", pn.Name, sc)
		}
		if len(sc.Args) != 3 || sc.Args[0] != "sh" || sc.Args[1] != "-c" ||
			!strings.Contains(sc.Args[2], "COUCHDB_PASSWORD=$(cat couchdb/password)") ||
			!strings.Contains(sc.Args[2], "exec /docker-entrypoint.sh /opt/couchdb/bin/couchdb") {
			t.Errorf("%s CouchDB sidecar runs %q", pn.Name, sc.Args)
		}
		user, okU := fileOf(spec, fileCouchDBUser)
		pw, okP := fileOf(spec, fileCouchDBPassword)
		if !okU || !okP || !user.Secret || !pw.Secret || string(user.Data) != "admin" || !regexp.MustCompile(`^[0-9a-f]{32}$`).Match(pw.Data) {
			t.Fatalf("%s CouchDB credentials: user %q (secret %v), password %q (secret %v)", pn.Name, user.Data, user.Secret, pw.Data, pw.Secret)
		}
		for _, f := range spec.Files {
			if !f.Secret && bytes.Contains(f.Data, pw.Data) {
				t.Errorf("%s: %s, not a Secret, holds the CouchDB password", pn.Name, f.Path)
			}
		}
		var clear []string
		clear = append(clear, spec.Args...)
		for k, v := range spec.Env {
			clear = append(clear, k+"="+v)
		}
		for _, s := range append(slices.Clone(spec.Sidecars), sc) {
			clear = append(clear, s.Args...)
			for k, v := range s.Env {
				clear = append(clear, k+"="+v)
			}
		}
		for _, st := range spec.Init {
			clear = append(clear, st.Args...)
			for k, v := range st.Env {
				clear = append(clear, k+"="+v)
			}
		}
		if strings.Contains(strings.Join(clear, " "), string(pw.Data)) {
			t.Errorf("%s: the CouchDB password is in an argument or variable of the pod", pn.Name)
		}

		// Every Secret file is a key or a CouchDB credential.
		for _, f := range spec.Files {
			key := strings.HasSuffix(f.Path, "/keystore/priv_sk") || f.Path == "tls/server.key" || strings.HasPrefix(f.Path, dirCouchDB+"/")
			if f.Secret != key {
				t.Errorf("%s: %s secret %v", pn.Name, f.Path, f.Secret)
			}
		}

		// The credentials step, before the sidecar and the peer, in the
		// peer's own image.
		if len(spec.Init) != 1 || spec.Init[0].Name != stepCredentials || spec.Init[0].Program != "sh" || spec.Init[0].Image != "" {
			t.Errorf("%s init steps %+v", pn.Name, spec.Init)
		}
	}

	// The genesis block names the orderers by their Services.
	var block cb.Block
	if err := proto.Unmarshal(plan.Artifact(BlockPath("trade")), &block); err != nil {
		t.Fatal(err)
	}
	cfg, err := channel.ConfigFromBlock(&block)
	if err != nil {
		t.Fatal(err)
	}
	tx := configtx.New(cfg)
	ord, err := tx.Orderer().Configuration()
	if err != nil {
		t.Fatal(err)
	}
	var consenters, want []string
	for _, c := range ord.EtcdRaft.Consenters {
		consenters = append(consenters, fmt.Sprintf("%s:%d", c.Address.Host, c.Address.Port))
	}
	for _, pn := range plan.Nodes {
		if pn.Role == apis.RoleValidator {
			want = append(want, fmt.Sprintf("%s:%d", service(pn.Name), pn.Spec.Ports[PortListen]))
		}
	}
	if !slices.Equal(consenters, want) {
		t.Errorf("consenters %v, want %v", consenters, want)
	}
	if len(ord.Organizations) != 1 || !slices.Equal(ord.Organizations[0].OrdererEndpoints, want) {
		t.Errorf("orderer organisations %+v, want endpoints %v", ord.Organizations, want)
	}
}

// TestCouchDBCredentialsStep runs the credentials step as a pod would,
// after the runtime copied the files: core.yaml then holds the
// credentials of the Secret files, and nothing else changed.
func TestCouchDBCredentialsStep(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	_, plan := planInPods(t, onKubernetes)
	pn := plan.Nodes[3]
	home := t.TempDir()
	for _, f := range pn.Spec.Files {
		p := filepath.Join(home, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	step := pn.Spec.Init[0]
	for range 2 { // it may run again, at the next start
		cmd := exec.CommandContext(t.Context(), sh, step.Args...)
		cmd.Dir = home
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", step.Name, err, out)
		}
	}
	got, err := os.ReadFile(filepath.Join(home, fileCoreYAML))
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := fileOf(pn.Spec, fileCouchDBPassword)
	wantValues(t, pn.Name, got, map[string]any{
		"ledger.state.couchDBConfig.username": "admin",
		"ledger.state.couchDBConfig.password": string(pw.Data),
	})
	orig := chain.FileData(pn.Spec, fileCoreYAML)
	restored := strings.NewReplacer("admin", placeholderUser, string(pw.Data), placeholderPassword).Replace(string(got))
	if restored != string(orig) {
		t.Errorf("the step changed more than the credentials:\n%s", got)
	}
}

// TestValidateOnKubernetes: a Fabric network may run on Kubernetes, from
// the official 3.1 images; another version is refused there, with its
// field.
func TestValidateOnKubernetes(t *testing.T) {
	d := New()
	for _, tc := range []struct {
		version string
		want    []string
	}{
		{"", nil},
		{"3.1", nil},
		{"2.5", []string{`spec.fabric.version: must be 3.1 or left out on runtime kubernetes, not "2.5": its pods run hyperledger/fabric-peer:3.1.5 and hyperledger/fabric-orderer:3.1.5`}},
	} {
		spec := strings.Replace(onKubernetes, "channel: trade}", fmt.Sprintf("channel: trade, version: %q}", tc.version), 1)
		_, err := apis.DecodeAndValidate([]byte(spec), podRegistries, d.Validate)
		var got []string
		var list apis.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				got = append(got, e.Error())
			}
		} else if err != nil {
			t.Fatalf("version %q: %v", tc.version, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("version %q: errors %q, want %q", tc.version, got, tc.want)
		}
	}
}

// TestPlanOnOneHostKeepsProcesses: on the server's host a peer keeps
// LevelDB and ChainDock's builder, with no sidecar, init step or CouchDB
// file.
func TestPlanOnOneHostKeepsProcesses(t *testing.T) {
	spec := strings.NewReplacer("runtime: kubernetes", "runtime: process", "  cluster: lab\n", "").Replace(onKubernetes)
	_, plan := planSpec(t, spec, nil)
	for _, pn := range plan.Nodes {
		if pn.Role != apis.RoleValidator {
			wantValues(t, pn.Name, chain.FileData(pn.Spec, fileCoreYAML), map[string]any{
				"ledger.state.stateDatabase": "goleveldb",
				"chaincode.externalBuilders": []any{map[string]any{"name": "chaindock-ccaas", "path": "builders/chaindock-ccaas"}},
			})
			if _, ok := fileOf(pn.Spec, "builders/chaindock-ccaas/bin/build"); !ok {
				t.Errorf("%s lacks ChainDock's builder", pn.Name)
			}
		}
		if len(pn.Spec.Sidecars) > 0 || len(pn.Spec.Init) > 0 {
			t.Errorf("%s: sidecars %v, init %v", pn.Name, pn.Spec.Sidecars, pn.Spec.Init)
		}
		for _, f := range pn.Spec.Files {
			if strings.HasPrefix(f.Path, dirCouchDB+"/") {
				t.Errorf("%s has %s", pn.Name, f.Path)
			}
		}
	}
}

// TestPlanChaincodeHostInPods: in pods the chaincode host runs
// chaindock-chaincode from ChainDock's image, listens on every address,
// and is reached at its Service, which the templates' packages name in
// connection.json as Fabric's ccaas builder reads it. The packages, and
// so their IDs, stay the same whenever the network is planned again.
func TestPlanChaincodeHostInPods(t *testing.T) {
	spec := strings.Replace(onKubernetes, "channel: trade}", "channel: trade, templates: true}", 1)
	_, plan := planInPods(t, spec)
	i := slices.IndexFunc(plan.Nodes, func(pn chain.PlannedNode) bool { return pn.Name == apis.ChaincodeNode })
	if i < 0 {
		t.Fatalf("no chaincode host among %d nodes", len(plan.Nodes))
	}
	host := plan.Nodes[i]
	if want := "chaindock/chaindock:" + version.Version; host.Spec.Image != want || host.Spec.Program != ChaincodeProgram || host.Role != apis.RoleChaincode || host.Joining {
		t.Fatalf("chaincode host runs %s from %s (role %s, joining %v), want %s from %s", host.Spec.Program, host.Spec.Image, host.Role, host.Joining, ChaincodeProgram, want)
	}
	if len(host.Spec.Files) > 0 || len(host.Spec.Sidecars) > 0 || len(host.Spec.Init) > 0 {
		t.Errorf("chaincode host: files %d, sidecars %v, init %v", len(host.Spec.Files), host.Spec.Sidecars, host.Spec.Init)
	}

	_, again := planInPods(t, spec)
	var args []string
	for _, name := range chaincodePortNames() {
		port := host.Spec.Ports[name]
		service := fmt.Sprintf("%s.fab.svc:%d", apis.ChaincodeNode, port)
		if port == 0 || host.Endpoints[name] != "tcp://"+service {
			t.Errorf("%s: port %d, endpoint %q, want tcp://%s", name, port, host.Endpoints[name], service)
		}
		pkg := plan.Artifact(chaincodeArtifact(name))
		if pkg == nil {
			t.Fatalf("no package of %s", name)
		}
		c, err := lifecycle.ReadPackage(pkg)
		if err != nil {
			t.Fatal(err)
		}
		// The fields and types of Fabric's ccaas builder (its build and
		// release steps decode connection.json into these).
		var conn struct {
			Address     string `json:"address"`
			DialTimeout string `json:"dial_timeout"`
			TLS         bool   `json:"tls_required"`
		}
		if err := json.Unmarshal(untarFile(t, c.Code, builder.ConnectionFile), &conn); err != nil {
			t.Fatalf("%s: connection.json: %v", name, err)
		}
		if d, err := time.ParseDuration(conn.DialTimeout); conn.Address != service || err != nil || d != chaincodeDialTimeout || conn.TLS {
			t.Errorf("%s: connection.json %+v, want address %s, dial_timeout %s, no TLS", name, conn, service, chaincodeDialTimeout)
		}
		id := lifecycle.PackageID(c.Label, pkg)
		args = append(args, "--serve", name+"="+id+"@0.0.0.0:"+strconv.Itoa(port))
		if p := again.Artifact(chaincodeArtifact(name)); !bytes.Equal(p, pkg) {
			t.Errorf("%s: planned again, the package is another (ID %s, was %s)", name, lifecycle.PackageID(c.Label, p), id)
		}
	}
	if !slices.Equal(host.Spec.Args, args) {
		t.Errorf("args\n got: %q\nwant: %q", host.Spec.Args, args)
	}
}

// untarFile is file name of the tar.gz archive data.
func untarFile(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no %s in the archive: %v", name, err)
		}
		if hdr.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}
