package fabric

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

// TestConfigOfFabric25: a Fabric 2.5 network's nodes get the same
// configuration as a 3.1 network's, but for the peers' auth filters:
// 2.5's peer has no TimeWindowCheck, and does not start with it.
func TestConfigOfFabric25(t *testing.T) {
	const spec = `
apiVersion: chaindock/v1
kind: Network
metadata: {name: fab}
spec:
  chain: fabric
  runtime: process
  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {orderers: 1, channel: trade%s}
`
	_, v31 := planSpec(t, fmt.Sprintf(spec, ""), nil)
	_, v25 := planSpec(t, fmt.Sprintf(spec, `, version: "2.5"`), nil)
	if len(v31.Nodes) != len(v25.Nodes) {
		t.Fatalf("%d nodes on 3.1, %d on 2.5", len(v31.Nodes), len(v25.Nodes))
	}
	for i, pn := range v25.Nodes {
		file := fileCoreYAML
		if pn.Role == apis.RoleValidator {
			file = fileOrdererYAML
		}
		cfg25, cfg31 := config(t, chain.FileData(pn.Spec, file)), config(t, chain.FileData(v31.Nodes[i].Spec, file))
		if file == fileCoreYAML {
			if got := filterNames(t, cfg25); got != "DefaultAuth ExpirationCheck" {
				t.Errorf("%s on 2.5: auth filters %s", pn.Name, got)
			}
			if got := filterNames(t, cfg31); got != "DefaultAuth ExpirationCheck TimeWindowCheck" {
				t.Errorf("%s on 3.1: auth filters %s", pn.Name, got)
			}
		}
		// Both plans have the same ports: the rest is the same.
		if !reflect.DeepEqual(cfg25, cfg31) {
			t.Errorf("%s: %s on 2.5 differs from 3.1's in more than the auth filters:\n%s\n---\n%s", pn.Name, file, chain.FileData(pn.Spec, file), chain.FileData(v31.Nodes[i].Spec, file))
		}
	}
}

// config is a node's configuration file, without the peer's auth filters.
func config(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// filterNames are the names of core.yaml's peer.handlers.authFilters, in
// order; it takes them out of cfg.
func filterNames(t *testing.T, cfg map[string]any) string {
	t.Helper()
	handlers, _ := lookup(cfg, "peer.handlers")
	h, ok := handlers.(map[string]any)
	if !ok {
		t.Fatal("no peer.handlers")
	}
	list, _ := h["authFilters"].([]any)
	var names []string
	for _, f := range list {
		m, _ := f.(map[string]any)
		names = append(names, fmt.Sprint(m["name"]))
	}
	delete(h, "authFilters")
	return strings.Join(names, " ")
}
