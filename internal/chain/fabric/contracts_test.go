package fabric

import (
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/builder"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
	"github.com/chaindock/chaindock/internal/chain/fabric/templates"
)

func TestTemplates(t *testing.T) {
	var names, refs []string
	for _, b := range builtinChaincode {
		names = append(names, b.name)
	}
	// The chaincode host serves what chaindock-chaincode can.
	slices.Sort(names)
	if !slices.Equal(names, templates.Names()) {
		t.Errorf("the chaincode host serves %q; chaindock-chaincode has %q", names, templates.Names())
	}
	d := New()
	for _, p := range d.Templates() {
		refs = append(refs, p.Ref().String())
		if p.Kind != PackageKind || p.Chain != Name || !p.Builtin || p.Checksum != p.Digest() || p.Description == "" {
			t.Errorf("template %s: kind %q, chain %q, builtin %v, checksum %q, description %q", p.Ref(), p.Kind, p.Chain, p.Builtin, p.Checksum, p.Description)
		}
		if _, ok := p.File(readmeFile); !ok {
			t.Errorf("template %s has no %s", p.Ref(), readmeFile)
		}
	}
	if want := []string{"builtin/fabric-notary@1.0.0", "builtin/fabric-asset@1.0.0"}; !slices.Equal(refs, want) {
		t.Errorf("templates %q, want %q", refs, want)
	}
}

func TestValidatePackage(t *testing.T) {
	pkg := func(kind string, files ...apis.PackageFile) *apis.Package {
		return &apis.Package{Owner: "acme", Name: "ledger-cc", Version: "1.0.0", Chain: Name, Kind: kind, Files: files}
	}
	conn := func(text string) apis.PackageFile { return apis.PackageFile{Path: builder.ConnectionFile, Text: text} }
	tests := []struct {
		name string
		p    *apis.Package
		want []string // fields
	}{
		{"good", pkg(PackageKind, conn(`{"address": "cc.example.com:9999", "dial_timeout": "10s", "tls_required": false}`), apis.PackageFile{Path: "README.md", Text: "hi"}), nil},
		{"wrong kind", pkg("evm", conn(`{"address": "cc:9999", "tls_required": false}`)), []string{"kind"}},
		{"no connection.json", pkg(PackageKind, apis.PackageFile{Path: "README.md", Text: "hi"}), []string{"files"}},
		{"bad address", pkg(PackageKind, conn(`{"address": "cc", "tls_required": false}`)), []string{"files[connection.json].address"}},
		{"unknown field and bad timeout", pkg(PackageKind, conn(`{"address": "cc:1", "dial_timeout": "soon", "tls_required": false, "adress": "x"}`)),
			[]string{"files[connection.json].adress", "files[connection.json].dial_timeout"}},
		{"not JSON", pkg(PackageKind, conn(`address: cc:1`)), []string{"files[connection.json]"}},
		{"source code", pkg(PackageKind, conn(`{"address": "cc:1", "tls_required": false}`), apis.PackageFile{Path: "main.go", Text: "package main"}), []string{"files[main.go]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range New().ValidatePackage(tt.p) {
				got = append(got, e.Field)
				if e.Detail == "" {
					t.Errorf("%s: no detail", e.Field)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("fields %q, want %q (%v)", got, tt.want, New().ValidatePackage(tt.p))
			}
		})
	}
}

// TestPlanChaincodeHost plans a network with spec.fabric.templates: its
// chaincode host serves each template under the package ID of the
// package the plan keeps, whose connection.json names the host's port.
func TestPlanChaincodeHost(t *testing.T) {
	n := decode(t, "two-orgs.good.yaml")
	n.Spec.Fabric.Templates = true
	nodes := n.Spec.Nodes()
	if last := nodes[len(nodes)-1]; last.Name != apis.ChaincodeNode || last.Role != apis.RoleChaincode || last.Organization != "" {
		t.Fatalf("last node %+v, want the chaincode host", last)
	}
	d := New()
	if got := d.PortNames(&n.Spec, apis.RoleChaincode); !slices.Equal(got, []string{"notary", "asset"}) {
		t.Fatalf("ports of the chaincode host: %q", got)
	}
	ports := testPorts(nodes, &n.Spec, 41000)
	plan, err := d.Plan(t.Context(), chain.PlanRequest{Network: n, Ports: ports, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Nodes) != len(nodes) {
		t.Fatalf("%d planned nodes, want %d", len(plan.Nodes), len(nodes))
	}
	host := plan.Nodes[len(plan.Nodes)-1]
	if host.Name != apis.ChaincodeNode || host.Role != apis.RoleChaincode || host.Joining || host.Spec.Program != ChaincodeProgram {
		t.Fatalf("chaincode host planned as %+v", host)
	}
	var wantArgs []string
	for _, name := range []string{"notary", "asset"} {
		port := ports[apis.ChaincodeNode][name]
		addr := "127.0.0.1:" + strconv.Itoa(port)
		pkg := plan.Artifact(chaincodeArtifact(name))
		if pkg == nil {
			t.Fatalf("no package of %s in the plan's artifacts", name)
		}
		c, err := lifecycle.ReadPackage(pkg)
		if err != nil {
			t.Fatal(err)
		}
		if c.Type != builder.PackageType || c.Label != "fabric-"+name+"_1.0.0" {
			t.Errorf("%s: package type %q label %q", name, c.Type, c.Label)
		}
		// The package is the one Package makes for that address: its ID
		// is known to whoever has the plan.
		again, err := lifecycle.Package(c.Label, lifecycle.Connection{Address: addr, DialTimeout: chaincodeDialTimeout})
		if err != nil || string(again) != string(pkg) {
			t.Errorf("%s: the planned package is not Package(%s, %s) (%v)", name, c.Label, addr, err)
		}
		wantArgs = append(wantArgs, "--serve", name+"="+lifecycle.PackageID(c.Label, pkg)+"@"+addr)
		if host.Spec.Ports[name] != port || host.Endpoints[name] != "tcp://"+addr {
			t.Errorf("%s: port %d endpoint %q, want %d and tcp://%s", name, host.Spec.Ports[name], host.Endpoints[name], port, addr)
		}
	}
	if !slices.Equal(host.Spec.Args, wantArgs) {
		t.Errorf("args\n got: %q\nwant: %q", host.Spec.Args, wantArgs)
	}

	// Without it, no host and no packages.
	n.Spec.Fabric.Templates = false
	if slices.ContainsFunc(n.Spec.Nodes(), func(ns apis.NodeSpec) bool { return ns.Role == apis.RoleChaincode }) {
		t.Error("a network without templates has a chaincode host")
	}
	// On Kubernetes too, as a pod (TestPlanChaincodeHostInPods).
	n.Spec.Fabric.Templates, n.Spec.Runtime, n.Spec.Cluster = true, apis.RuntimeKubernetes, "lab"
	if !slices.ContainsFunc(n.Spec.Nodes(), func(ns apis.NodeSpec) bool { return ns.Role == apis.RoleChaincode }) {
		t.Error("a network on Kubernetes has no chaincode host")
	}
	if errs := d.Validate(&n.Spec); len(errs) > 0 {
		t.Errorf("templates on Kubernetes: %v", errs)
	}
}

func TestProbeChaincodeHost(t *testing.T) {
	var ls []net.Listener
	endpoints := map[string]string{}
	for _, name := range chaincodePortNames() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ls = append(ls, l)
		endpoints[name] = "tcp://" + l.Addr().String()
	}
	node := chain.PlannedNode{Name: apis.ChaincodeNode, Role: apis.RoleChaincode, Endpoints: endpoints}
	info, err := New().Probe(t.Context(), node)
	if err != nil || info.Height != 0 || info.CatchingUp {
		t.Fatalf("probe of a serving host: %+v, %v", info, err)
	}
	ls[1].Close()
	if _, err := New().Probe(t.Context(), node); err == nil || !strings.Contains(err.Error(), "asset chaincode server") {
		t.Errorf("probe with the asset server down: %v", err)
	}
}

func TestContractRefusals(t *testing.T) {
	n, plan := planFor(t, "two-orgs.good.yaml") // no chaincode host
	d := New()
	tmpl := d.Templates()[0]
	_, err := d.DeployContract(t.Context(), n, chain.DeployRequest{Name: "notary", Package: &tmpl, Plan: plan})
	if !errors.Is(err, chain.ErrContractRefused) || !strings.Contains(err.Error(), "spec.fabric.templates") {
		t.Errorf("a template on a network without the host: %v", err)
	}
	_, err = d.DeployContract(t.Context(), n, chain.DeployRequest{Name: "notary", Package: &tmpl, Plan: plan, Args: []string{"x"}})
	if !errors.Is(err, chain.ErrContractRefused) {
		t.Errorf("with arguments: %v", err)
	}
	user := &apis.Package{Owner: "acme", Name: "cc", Version: "1.0.0", Chain: Name, Kind: PackageKind,
		Files: []apis.PackageFile{{Path: builder.ConnectionFile, Text: `{"address": "127.0.0.1:1", "tls_required": false}`}}}
	_, err = d.DeployContract(t.Context(), n, chain.DeployRequest{Name: "_lifecycle", Package: user, Plan: plan})
	if !errors.Is(err, chain.ErrContractRefused) || !strings.Contains(err.Error(), "name") {
		t.Errorf("a system chaincode's name: %v", err)
	}
	_, err = d.RemoveContract(t.Context(), n, &apis.ContractRevision{Name: "notary", Ref: "notary"})
	if !errors.Is(err, chain.ErrContractRefused) || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("remove: %v", err)
	}
}
