package ethereum

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

const growSpec = `apiVersion: chaindock/v1
kind: Network
metadata: {name: grow}
spec: {chain: ethereum, runtime: process, validators: 3}
`

func TestReshapeAddsASealerWithTheSameGenesis(t *testing.T) {
	plan := planFor(t, growSpec)
	n := decode(t, growSpec)
	apis.SetDefaults(n)
	n.Spec.Validators, n.Spec.FullNodes = 4, 1
	add := n.Spec.Nodes()[3:]
	ports := map[string]map[string]int{
		add[0].Name: {PortP2P: 31000, PortRPC: 31001, PortAuthRPC: 31002},
		add[1].Name: {PortP2P: 31003, PortRPC: 31004, PortAuthRPC: 31005},
	}
	grown, err := New().Reshape(t.Context(), chain.ReshapeRequest{Network: n, Plan: plan, Add: add, Ports: ports,
		Host: "127.0.0.1", Rand: rand.NewChaCha8([32]byte{7}), Now: planTime})
	if err != nil {
		t.Fatal(err)
	}
	if len(grown.Nodes) != 5 || grown.Nodes[3].Name != "validator-3" || grown.Nodes[4].Name != "full-0" {
		t.Fatalf("nodes %v", summarize(grown))
	}
	genesis := file(t, plan.Nodes[0], fileGenesis)
	for _, pn := range grown.Nodes {
		if !bytes.Equal(file(t, pn, fileGenesis), genesis) {
			t.Errorf("%s has another genesis: a new sealer joins by vote, not by a new genesis", pn.Name)
		}
		// Every node lists the four others as static and trusted peers.
		cfg := string(file(t, pn, fileConfig))
		for _, o := range grown.Nodes {
			want := o.Name != pn.Name
			if got := strings.Count(cfg, o.Endpoints[PortP2P]) == 2; got != want {
				t.Errorf("%s's config lists %s: %v, want %v\n%s", pn.Name, o.Name, got, want, cfg)
			}
		}
		if !strings.Contains(cfg, "MaxPeers = 4\n") {
			t.Errorf("%s: MaxPeers is not the 4 other nodes:\n%s", pn.Name, cfg)
		}
	}
	for i, pn := range grown.Nodes[:3] {
		if pn.Revision != 1 || pn.Joining || pn.NodeID != plan.Nodes[i].NodeID || !slicesEqual(pn.Spec.Args, plan.Nodes[i].Spec.Args) {
			t.Errorf("%s: revision %d joining %v; only its config may change", pn.Name, pn.Revision, pn.Joining)
		}
	}
	if !grown.Nodes[3].Joining || grown.Nodes[4].Joining {
		t.Errorf("joining: sealer %v, full node %v; want only the sealer to wait for a vote", grown.Nodes[3].Joining, grown.Nodes[4].Joining)
	}
	if _, ok := sealerAddress(grown.Nodes[3]); !ok {
		t.Error("the new sealer has no sealer account")
	}
	if _, ok := sealerAddress(grown.Nodes[4]); ok {
		t.Error("the full node has a sealer account")
	}
	// The stored plan is not touched: specs are copied, not shared.
	if plan.Nodes[0].Revision != 0 || strings.Contains(string(file(t, plan.Nodes[0], fileConfig)), grown.Nodes[3].Endpoints[PortP2P]) {
		t.Error("Reshape changed the plan it was given")
	}

	// Removing the new sealer again takes it out of every config.
	shrunk, err := New().Reshape(t.Context(), chain.ReshapeRequest{Network: n, Plan: grown, Remove: []string{"validator-3"},
		Host: "127.0.0.1", Rand: rand.NewChaCha8([32]byte{8}), Now: planTime})
	if err != nil {
		t.Fatal(err)
	}
	if len(shrunk.Nodes) != 4 {
		t.Fatalf("nodes after the removal: %v", summarize(shrunk))
	}
	for _, pn := range shrunk.Nodes {
		if strings.Contains(string(file(t, pn, fileConfig)), grown.Nodes[3].Endpoints[PortP2P]) {
			t.Errorf("%s still lists the removed sealer", pn.Name)
		}
		if pn.Name != "full-0" && pn.Revision != 2 {
			t.Errorf("%s: revision %d, want 2", pn.Name, pn.Revision)
		}
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

func TestValidateScaleKeepsCliqueGoing(t *testing.T) {
	spec := func(v int) *apis.NetworkSpec {
		return &apis.NetworkSpec{Chain: Name, Runtime: "process", Validators: v}
	}
	status := func(running ...string) *apis.NetworkStatus {
		var st apis.NetworkStatus
		for _, name := range []string{"validator-0", "validator-1", "validator-2", "validator-3"} {
			ns := apis.NodeStatus{Name: name, Role: apis.RoleValidator, Phase: apis.NodeCrashed}
			for _, r := range running {
				if r == name {
					ns.Phase = apis.NodeRunning
				}
			}
			st.Nodes = append(st.Nodes, ns)
		}
		return &st
	}
	d := New()
	for _, c := range []struct {
		name     string
		from, to int
		status   *apis.NetworkStatus
		want     string
	}{
		{"grow, all running", 3, 4, status("validator-0", "validator-1", "validator-2"), ""},
		{"grow, one of three down", 3, 4, status("validator-0", "validator-1"), ""},
		{"grow, two of three down", 3, 4, status("validator-0"), "1 of the 3 sealers run; a Clique vote needs 2"},
		{"shrink 4 to 3, all running", 4, 3, status("validator-0", "validator-1", "validator-2", "validator-3"), ""},
		{"shrink 4 to 2, all running", 4, 2, status("validator-0", "validator-1", "validator-2", "validator-3"), ""},
		// Three left, one of them down: two of three still seal.
		{"shrink 4 to 3, one left down", 4, 3, status("validator-0", "validator-1", "validator-3"), ""},
		// Two left, one of them down: one of two cannot seal alone.
		{"shrink 4 to 2, one left down", 4, 2, status("validator-0", "validator-2", "validator-3"), "2 sealers would be left, 1 of them running"},
		{"shrink 3 to 1, the one left down", 3, 1, status("validator-1", "validator-2"), "1 sealers would be left, 0 of them running"},
	} {
		errs := d.ValidateScale(spec(c.from), spec(c.to), c.status)
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", c.name, errs)
		case c.want != "" && (len(errs) == 0 || !strings.Contains(errs.Error(), c.want)):
			t.Errorf("%s: %v, want an error containing %q", c.name, errs, c.want)
		}
	}
}
