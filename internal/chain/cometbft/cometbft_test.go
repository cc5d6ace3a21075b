package cometbft

import (
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/types"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func planFor(t *testing.T, specYAML string) *chain.Plan {
	t.Helper()
	n, err := apis.DecodeNetwork([]byte(specYAML))
	if err != nil {
		t.Fatal(err)
	}
	apis.SetDefaults(n)
	if errs := apis.ValidateNetwork(n, apis.Registries{Chains: []string{Name}, Runtimes: []string{"process"}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	ports := map[string]map[string]int{}
	for i, node := range n.Spec.Nodes() {
		ports[node.Name] = map[string]int{PortP2P: 30000 + 2*i, PortRPC: 30001 + 2*i}
	}
	var seed [32]byte
	plan, err := New().Plan(t.Context(), chain.PlanRequest{
		Network: n, Ports: ports, Host: "127.0.0.1",
		Rand: rand.NewChaCha8(seed),
		Now:  time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func file(t *testing.T, node chain.PlannedNode, path string) []byte {
	t.Helper()
	for _, f := range node.Spec.Files {
		if f.Path == path {
			return f.Data
		}
	}
	t.Fatalf("node %s has no file %s", node.Name, path)
	return nil
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
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

func TestPlanGolden(t *testing.T) {
	cases := map[string]string{
		"four-validators": `
apiVersion: chaindock/v1
kind: Network
metadata: {name: demo}
spec: {chain: cometbft, runtime: process, validators: 4}
`,
		"organizations": `
apiVersion: chaindock/v1
kind: Network
metadata: {name: consortium}
spec:
  chain: cometbft
  runtime: process
  consensus: {timeoutCommit: 200ms, timeoutPropose: 1s, createEmptyBlocks: false}
  resources: {cpu: 1500m, memory: 1Gi}
  organizations:
    - {name: org1, validators: 2, fullNodes: 1}
    - {name: org2, validators: 1, resources: {cpu: "2", memory: 512Mi}}
`,
	}
	for name, spec := range cases {
		t.Run(name, func(t *testing.T) {
			plan := planFor(t, spec)
			first := plan.Nodes[0]
			golden(t, name+"/genesis.json", file(t, first, "config/genesis.json"))
			for _, node := range plan.Nodes {
				golden(t, name+"/"+node.Name+".config.toml", file(t, node, "config/config.toml"))
			}
			summary, _ := json.MarshalIndent(struct {
				ChainID string
				Nodes   []map[string]any
			}{plan.ChainID, summarize(plan)}, "", "  ")
			golden(t, name+"/plan.json", append(summary, '\n'))
		})
	}
}

func summarize(p *chain.Plan) []map[string]any {
	var out []map[string]any
	for _, n := range p.Nodes {
		out = append(out, map[string]any{
			"name": n.Name, "role": n.Role, "org": n.Organization, "nodeID": n.NodeID,
			"args": n.Spec.Args, "env": n.Spec.Env, "ports": n.Spec.Ports, "endpoints": n.Endpoints,
		})
	}
	return out
}

func TestPlanIsConsistent(t *testing.T) {
	plan := planFor(t, `
apiVersion: chaindock/v1
kind: Network
metadata: {name: demo}
spec: {chain: cometbft, runtime: process, validators: 4, fullNodes: 2}
`)
	if len(plan.Nodes) != 6 {
		t.Fatalf("want 6 nodes, got %d", len(plan.Nodes))
	}
	var gen types.GenesisDoc
	if err := cmtjson.Unmarshal(file(t, plan.Nodes[0], "config/genesis.json"), &gen); err != nil {
		t.Fatal(err)
	}
	if err := gen.ValidateAndComplete(); err != nil {
		t.Fatalf("genesis does not validate: %v", err)
	}
	if len(gen.Validators) != 4 {
		t.Fatalf("genesis has %d validators, want 4 (full nodes do not vote)", len(gen.Validators))
	}
	ids := map[string]bool{}
	for i, node := range plan.Nodes {
		// Every node has the same genesis and names every other node as a peer.
		if string(file(t, node, "config/genesis.json")) != string(file(t, plan.Nodes[0], "config/genesis.json")) {
			t.Errorf("%s has another genesis", node.Name)
		}
		cfg := string(file(t, node, "config/config.toml"))
		for j, other := range plan.Nodes {
			has := strings.Contains(cfg, other.NodeID+"@")
			if (i != j) != has {
				t.Errorf("%s config names peer %s: %v", node.Name, other.Name, has)
			}
		}
		if ids[node.NodeID] {
			t.Errorf("node ID %s used twice", node.NodeID)
		}
		ids[node.NodeID] = true
		var pv struct {
			Address string `json:"address"`
		}
		if err := json.Unmarshal(file(t, node, "config/priv_validator_key.json"), &pv); err != nil {
			t.Fatal(err)
		}
		if node.Role == apis.RoleValidator && gen.Validators[i].Address.String() != pv.Address {
			t.Errorf("%s key address %s is not genesis validator %d (%s)", node.Name, pv.Address, i, gen.Validators[i].Address)
		}
	}
}

func TestValidate(t *testing.T) {
	errs := New().Validate(&apis.NetworkSpec{CometBFT: &apis.CometBFTSpec{App: "evm"}})
	if len(errs) != 1 || errs[0].Field != "spec.cometbft.app" {
		t.Fatalf("want one error on spec.cometbft.app, got %v", errs)
	}
}
