package cometbft

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

const growSpec = `apiVersion: chaindock/v1
kind: Network
metadata: {name: grow}
spec: {chain: cometbft, runtime: process, validators: 4}
`

func grow(t *testing.T, plan *chain.Plan, validators, fullNodes int) (*apis.Network, *chain.Plan) {
	t.Helper()
	n, err := apis.DecodeNetwork([]byte(growSpec))
	if err != nil {
		t.Fatal(err)
	}
	apis.SetDefaults(n)
	old := len(plan.Nodes)
	n.Spec.Validators, n.Spec.FullNodes = validators, fullNodes
	var add []apis.NodeSpec
	ports := map[string]map[string]int{}
	for i, ns := range n.Spec.Nodes() {
		if !slices.ContainsFunc(plan.Nodes, func(pn chain.PlannedNode) bool { return pn.Name == ns.Name }) {
			add = append(add, ns)
			ports[ns.Name] = map[string]int{PortP2P: 31000 + 2*i, PortRPC: 31001 + 2*i}
		}
	}
	var remove []string
	for _, pn := range plan.Nodes {
		if !slices.ContainsFunc(n.Spec.Nodes(), func(ns apis.NodeSpec) bool { return ns.Name == pn.Name }) {
			remove = append(remove, pn.Name)
		}
	}
	out, err := New().Reshape(t.Context(), chain.ReshapeRequest{Network: n, Plan: plan, Add: add, Ports: ports, Remove: remove,
		Host: "127.0.0.1", Rand: rand.NewChaCha8([32]byte{byte(old)}), Now: time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return n, out
}

func TestReshapeAddsNodesWithoutTouchingTheOthers(t *testing.T) {
	plan := planFor(t, growSpec)
	_, grown := grow(t, plan, 5, 1)
	if len(grown.Nodes) != 6 || grown.Nodes[4].Name != "validator-4" || grown.Nodes[5].Name != "full-0" {
		t.Fatalf("nodes %v", summarize(grown))
	}
	genesis := file(t, plan.Nodes[0], fileGenesis)
	for i, pn := range grown.Nodes {
		if !bytes.Equal(file(t, pn, fileGenesis), genesis) {
			t.Errorf("%s has another genesis: a validator joins by a validator-set update, not by a new genesis", pn.Name)
		}
		if i < 4 {
			// The new nodes dial the old ones: those need no restart.
			if pn.Revision != 0 || !bytes.Equal(file(t, pn, fileConfig), file(t, plan.Nodes[i], fileConfig)) {
				t.Errorf("%s changed (revision %d) for nodes that dial it", pn.Name, pn.Revision)
			}
			continue
		}
		peers := persistentPeers(file(t, pn, fileConfig))
		if len(peers) != 5 || slices.Contains(peers, peerAddress(pn)) {
			t.Errorf("%s's persistent peers %v: want the 5 others", pn.Name, peers)
		}
	}
	if !grown.Nodes[4].Joining || grown.Nodes[5].Joining {
		t.Errorf("joining: validator %v, full node %v; want only the validator to wait for its power", grown.Nodes[4].Joining, grown.Nodes[5].Joining)
	}
	if grown.Nodes[4].NodeID == grown.Nodes[5].NodeID {
		t.Error("two new nodes share a node ID")
	}
}

func TestReshapeRemovesPeersOfRemovedNodes(t *testing.T) {
	plan := planFor(t, growSpec)
	_, shrunk := grow(t, plan, 3, 0)
	if len(shrunk.Nodes) != 3 {
		t.Fatalf("nodes %v", summarize(shrunk))
	}
	gone := peerAddress(plan.Nodes[3])
	for i, pn := range shrunk.Nodes {
		cfg := file(t, pn, fileConfig)
		peers := persistentPeers(cfg)
		if pn.Revision != 1 || slices.Contains(peers, gone) || len(peers) != 2 {
			t.Errorf("%s: revision %d, peers %v; want revision 1 and the 2 others", pn.Name, pn.Revision, peers)
		}
		// Only the peers line changed.
		want := withPersistentPeers(file(t, plan.Nodes[i], fileConfig), peers)
		if !bytes.Equal(cfg, want) {
			t.Errorf("%s: config changed beyond its peers", pn.Name)
		}
	}
}

func TestValSetTx(t *testing.T) {
	plan := planFor(t, growSpec)
	k, err := validatorKey(plan.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	tx := string(valSetTx(k, 10))
	want := "val=ed25519!" + base64.StdEncoding.EncodeToString(k.PubKey.Bytes()) + "!10"
	if tx != want {
		t.Fatalf("valSetTx = %s, want %s", tx, want)
	}
}

func TestValidateScaleKeepsTwoThirds(t *testing.T) {
	spec := func(validators, full int, appName string) *apis.NetworkSpec {
		n, err := apis.DecodeNetwork([]byte(growSpec))
		if err != nil {
			t.Fatal(err)
		}
		apis.SetDefaults(n)
		n.Spec.Validators, n.Spec.FullNodes = validators, full
		if appName != "" {
			n.Spec.CometBFT = &apis.CometBFTSpec{App: appName}
		}
		return &n.Spec
	}
	status := func(running ...int) *apis.NetworkStatus {
		st := &apis.NetworkStatus{}
		for i := range 4 {
			phase := apis.NodeCrashed
			if slices.Contains(running, i) {
				phase = apis.NodeRunning
			}
			st.Nodes = append(st.Nodes, apis.NodeStatus{Name: "validator-" + string(rune('0'+i)), Role: apis.RoleValidator, Phase: phase})
		}
		return st
	}
	for _, c := range []struct {
		name     string
		old, new *apis.NetworkSpec
		status   *apis.NetworkStatus
		want     string
	}{
		{"full node", spec(4, 0, ""), spec(4, 2, ""), status(0, 1, 2), ""},
		{"fifth validator", spec(4, 0, ""), spec(5, 0, ""), status(0, 1, 2, 3), ""},
		{"fifth with one down", spec(4, 0, ""), spec(5, 0, ""), status(0, 1, 2), ""},
		{"two down", spec(4, 0, ""), spec(5, 0, ""), status(0, 1), "2 of the 4 validators run"},
		{"down to three", spec(4, 0, ""), spec(3, 0, ""), status(0, 1, 2, 3), ""},
		{"down to three, one of them down", spec(4, 0, ""), spec(3, 0, ""), status(0, 1, 3), "2 of them running"},
		{"own application", spec(4, 0, AppChainDock), spec(5, 0, AppChainDock), status(0, 1, 2, 3), "takes no validator-set updates"},
		{"own application, full node", spec(4, 0, AppChainDock), spec(4, 1, AppChainDock), status(0, 1, 2, 3), ""},
	} {
		errs := New().ValidateScale(c.old, c.new, c.status)
		if c.want == "" && len(errs) > 0 || c.want != "" && !strings.Contains(errs.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, errs, c.want)
		}
	}
}
