package ethereum

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
)

// pods places nodes as the Kubernetes runtime does: each in a pod of the
// network's namespace, reached at its headless Service.
type pods struct{ namespace string }

func (p pods) ListenHost() string          { return "0.0.0.0" }
func (p pods) NodeHost(node string) string { return node + "." + p.namespace + ".svc" }
func (p pods) LocalHost() string           { return "127.0.0.1" }

const inPods = `
apiVersion: chaindock/v1
kind: Network
metadata: {name: demo}
spec: {chain: ethereum, runtime: kubernetes, cluster: lab, validators: 3, fullNodes: 1}
`

func planInPods(t *testing.T, specYAML string) (*apis.Network, *chain.Plan) {
	t.Helper()
	n := decode(t, specYAML)
	errs := apis.ValidateNetwork(n, apis.Registries{Chains: []string{Name}, Runtimes: []string{"process", apis.RuntimeKubernetes}})
	errs = append(errs, New().Validate(&n.Spec)...)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	apis.SetDefaults(n)
	plan, err := New().Plan(t.Context(), chain.PlanRequest{
		Network: n, Ports: portsOf(n.Spec.Nodes(), 30000), Host: "127.0.0.1", Placement: pods{"demo"},
		Rand: rand.NewChaCha8([32]byte{3}), Now: planTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, plan
}

func portsOf(nodes []apis.NodeSpec, from int) map[string]map[string]int {
	ports := map[string]map[string]int{}
	for i, node := range nodes {
		ports[node.Name] = map[string]int{PortP2P: from + 3*i, PortRPC: from + 1 + 3*i, PortAuthRPC: from + 2 + 3*i}
	}
	return ports
}

// clusterDNS makes the resolver answer every name with an address of
// 10.0.0.0/24, as a cluster's DNS answers for a Service, for the rest of
// the test; asked tells how often a name was asked for.
func clusterDNS(t *testing.T) (asked func(name string) int) {
	t.Helper()
	var mu sync.Mutex
	names := map[string]int{}
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			// Not a PacketConn: the resolver frames its messages as on TCP.
			var size [2]byte
			for {
				if _, err := io.ReadFull(server, size[:]); err != nil {
					return
				}
				query := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(server, query); err != nil {
					return
				}
				var p dnsmessage.Parser
				h, err := p.Start(query)
				if err != nil {
					return
				}
				q, err := p.Question()
				if err != nil {
					return
				}
				mu.Lock()
				names[strings.TrimSuffix(q.Name.String(), ".")]++
				host := byte(len(names))
				mu.Unlock()
				b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true})
				b.EnableCompression()
				_ = b.StartQuestions()
				_ = b.Question(q)
				_ = b.StartAnswers()
				if q.Type == dnsmessage.TypeA {
					_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 30}, dnsmessage.AResource{A: [4]byte{10, 0, 0, host}})
				}
				msg, err := b.Finish()
				if err != nil {
					return
				}
				binary.BigEndian.PutUint16(size[:], uint16(len(msg))) //nolint:gosec // a DNS message is below 64 KiB
				if _, err := server.Write(append(size[:], msg...)); err != nil {
					return
				}
			}
		}()
		return client, nil
	}}
	t.Cleanup(func() { net.DefaultResolver = old })
	return func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return names[name]
	}
}

func initNames(steps []runtime.InitStep) []string {
	var names []string
	for _, st := range steps {
		names = append(names, st.Name)
	}
	return names
}

// waitedFor are the names a node's peers step waits for.
func waitedFor(t *testing.T, node chain.PlannedNode) []string {
	t.Helper()
	for _, st := range node.Spec.Init {
		if st.Name == stepPeers {
			if len(st.Args) < 3 || st.Program != "sh" || st.Args[0] != "-c" || st.Args[2] != stepPeers {
				t.Fatalf("%s: peers step %+v", node.Name, st)
			}
			return st.Args[3:]
		}
	}
	t.Fatalf("%s has no peers step: %v", node.Name, initNames(node.Spec.Init))
	return nil
}

func argOf(args []string, name string) (string, bool) {
	i := slices.Index(args, name)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// TestPlanInPods: in pods, nodes run the official image, name their peers
// by their Services (in a form geth's own parser takes), listen on all
// their addresses, take RPC requests addressed to their name, leave peers
// to the namespace's network policy, wait for their peers' names before
// the genesis step, and keep their keys secret.
func TestPlanInPods(t *testing.T) {
	_, plan := planInPods(t, inPods)
	asked := clusterDNS(t)
	if len(plan.Nodes) != 4 {
		t.Fatalf("nodes %v", summarize(plan))
	}
	for _, node := range plan.Nodes {
		host := node.Name + ".demo.svc"
		spec := node.Spec
		if spec.Image != Image || Image != "ethereum/client-go:v1.13.15" || spec.Program != Program {
			t.Errorf("%s runs %s (%s), want the official geth image", node.Name, spec.Image, spec.Program)
		}

		// Its own URL and its peers': enode://<key>@<service>:<port>.
		p2p := node.Endpoints[PortP2P]
		key, err := crypto.HexToECDSA(string(file(t, node, fileNodeKey)))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("enode://%x@%s:%d", crypto.FromECDSAPub(&key.PublicKey)[1:], host, spec.Ports[PortP2P]); p2p != want {
			t.Errorf("%s p2p endpoint %s, want %s", node.Name, p2p, want)
		}
		en, err := enode.ParseV4(p2p)
		if err != nil {
			t.Fatalf("geth does not take %s's URL %s: %v", node.Name, p2p, err)
		}
		if en.ID().String() != node.NodeID || en.TCP() != spec.Ports[PortP2P] || asked(host) == 0 {
			t.Errorf("%s: geth reads %s as node %s, port %d (DNS asked for %s %d times)", node.Name, p2p, en.ID(), en.TCP(), host, asked(host))
		}
		if want := fmt.Sprintf("http://%s:%d", host, spec.Ports[PortRPC]); node.Endpoints[PortRPC] != want {
			t.Errorf("%s RPC endpoint %s, want %s", node.Name, node.Endpoints[PortRPC], want)
		}

		cfg := string(file(t, node, fileConfig))
		var peers []string
		for _, other := range plan.Nodes {
			if other.Name == node.Name {
				continue
			}
			peers = append(peers, other.Name+".demo.svc")
			if n := strings.Count(cfg, other.Endpoints[PortP2P]); n != 2 {
				t.Errorf("%s config names %s %d times, want 2 (static and trusted)", node.Name, other.Name, n)
			}
		}
		if strings.Contains(cfg, "127.0.0.1") || !strings.Contains(cfg, fmt.Sprintf("ListenAddr = \"0.0.0.0:%d\"", spec.Ports[PortP2P])) {
			t.Errorf("%s config:\n%s", node.Name, cfg)
		}

		if a, _ := argOf(spec.Args, "--http.addr"); a != "0.0.0.0" {
			t.Errorf("%s serves HTTP on %q, want 0.0.0.0", node.Name, a)
		}
		if v, _ := argOf(spec.Args, "--http.vhosts"); !slices.Contains(strings.Split(v, ","), host) && v != "*" {
			t.Errorf("%s takes HTTP requests for hosts %q, not its Service's name %s", node.Name, v, host)
		}
		if slices.Contains(spec.Args, "--netrestrict") {
			t.Errorf("%s restricts its peers' addresses in a pod: %v", node.Name, spec.Args)
		}
		if a, _ := argOf(spec.Args, "--authrpc.addr"); a != "127.0.0.1" {
			t.Errorf("%s serves the engine API on %q", node.Name, a)
		}

		// Init: wait for the peers' names, then write the genesis.
		if got := initNames(spec.Init); !slices.Equal(got, []string{stepPeers, stepGenesis}) {
			t.Fatalf("%s init steps %v, want peers then genesis", node.Name, got)
		}
		if got := waitedFor(t, node); !slices.Equal(got, peers) {
			t.Errorf("%s waits for %v, want %v", node.Name, got, peers)
		}
		wait := spec.Init[0]
		if wait.Image != "" {
			t.Errorf("the peers step runs image %q, not the node's", wait.Image)
		}
		for _, want := range []string{"getent hosts", "+ 120 ))", `for name in "$@"`} {
			if !strings.Contains(wait.Args[1], want) {
				t.Errorf("the peers script lacks %q:\n%s", want, wait.Args[1])
			}
		}
		if strings.Contains(wait.Args[1], "%!") {
			t.Errorf("the peers script is badly formatted:\n%s", wait.Args[1])
		}
		if g := spec.Init[1]; g.Program != Program || g.Image != Image || !slices.Equal(g.Args, []string{"--datadir", ".", "init", fileGenesis}) {
			t.Errorf("%s genesis step %+v", node.Name, g)
		}

		// Keys are Secrets (on Kubernetes); nothing else is.
		for _, f := range spec.Files {
			key := f.Path == fileNodeKey || f.Path == filePassword || strings.HasPrefix(f.Path, dirKeystore+"/")
			if f.Secret != key {
				t.Errorf("%s: %s secret %v", node.Name, f.Path, f.Secret)
			}
		}
		if _, ok := argOf(spec.Args, "--miner.etherbase"); ok != (node.Role == apis.RoleValidator) || keystoreOf(node) == nil == (node.Role == apis.RoleValidator) {
			t.Errorf("%s (%s): sealer flags %v, keystore %v", node.Name, node.Role, ok, keystoreOf(node) != nil)
		}
	}
}

// TestPlanOnOneHostWaitsForNoName: on the server's host, peers are
// addresses: no wait, and peers only from that host.
func TestPlanOnOneHostWaitsForNoName(t *testing.T) {
	for _, node := range planFor(t, threeSealers).Nodes {
		if got := initNames(node.Spec.Init); !slices.Equal(got, []string{stepGenesis}) {
			t.Errorf("%s init steps %v", node.Name, got)
		}
		if r, _ := argOf(node.Spec.Args, "--netrestrict"); r != "127.0.0.0/8" || slices.Contains(node.Spec.Args, "--http.vhosts") {
			t.Errorf("%s args %v", node.Name, node.Spec.Args)
		}
	}
}

// TestReshapeInPods: the nodes that stay name the new nodes by their
// Services, and wait for their names too; the new nodes are planned as in
// Plan. Removing a node takes its name out of both again.
func TestReshapeInPods(t *testing.T) {
	n, plan := planInPods(t, inPods)
	n.Spec.Validators, n.Spec.FullNodes = 4, 2
	var add []apis.NodeSpec
	for _, ns := range n.Spec.Nodes() {
		if !slices.ContainsFunc(plan.Nodes, func(pn chain.PlannedNode) bool { return pn.Name == ns.Name }) {
			add = append(add, ns)
		}
	}
	if len(add) != 2 {
		t.Fatalf("adding %v", add)
	}
	grown, err := New().Reshape(t.Context(), chain.ReshapeRequest{Network: n, Plan: plan, Add: add, Ports: portsOf(add, 31000),
		Host: "127.0.0.1", Placement: pods{"demo"}, Rand: rand.NewChaCha8([32]byte{4}), Now: planTime})
	if err != nil {
		t.Fatal(err)
	}
	if len(grown.Nodes) != 6 {
		t.Fatalf("nodes %v", summarize(grown))
	}
	all := func(p *chain.Plan) []string {
		var names []string
		for _, pn := range p.Nodes {
			names = append(names, pn.Name+".demo.svc")
		}
		return names
	}
	check := func(p *chain.Plan, stay map[string]int) {
		t.Helper()
		for _, pn := range p.Nodes {
			host := pn.Name + ".demo.svc"
			want := slices.DeleteFunc(all(p), func(h string) bool { return h == host })
			if got := waitedFor(t, pn); !slices.Equal(got, want) {
				t.Errorf("%s waits for %v, want %v", pn.Name, got, want)
			}
			if got := initNames(pn.Spec.Init); !slices.Equal(got, []string{stepPeers, stepGenesis}) {
				t.Errorf("%s init steps %v", pn.Name, got)
			}
			cfg := string(file(t, pn, fileConfig))
			for _, o := range p.Nodes {
				if n := strings.Count(cfg, o.Endpoints[PortP2P]); n != map[bool]int{true: 0, false: 2}[o.Name == pn.Name] {
					t.Errorf("%s config names %s %d times", pn.Name, o.Name, n)
				}
			}
			if !strings.Contains(cfg, fmt.Sprintf("MaxPeers = %d\n", len(p.Nodes)-1)) || !strings.Contains(cfg, "ListenAddr = \"0.0.0.0:") {
				t.Errorf("%s config:\n%s", pn.Name, cfg)
			}
			if rev, ok := stay[pn.Name]; ok && pn.Revision != rev {
				t.Errorf("%s revision %d, want %d", pn.Name, pn.Revision, rev)
			}
			if !strings.HasPrefix(pn.Endpoints[PortRPC], "http://"+host+":") || slices.Contains(pn.Spec.Args, "--netrestrict") {
				t.Errorf("%s: RPC %s, args %v", pn.Name, pn.Endpoints[PortRPC], pn.Spec.Args)
			}
		}
	}
	stay := map[string]int{}
	for i, pn := range grown.Nodes[:4] {
		stay[pn.Name] = 1
		if pn.NodeID != plan.Nodes[i].NodeID || !slices.Equal(pn.Spec.Args, plan.Nodes[i].Spec.Args) {
			t.Errorf("%s: only its config and its wait may change", pn.Name)
		}
	}
	check(grown, stay)
	if !grown.Nodes[4].Joining || grown.Nodes[5].Joining {
		t.Errorf("joining: sealer %v, full node %v", grown.Nodes[4].Joining, grown.Nodes[5].Joining)
	}
	if got := waitedFor(t, plan.Nodes[0]); len(got) != 3 {
		t.Errorf("Reshape changed the plan it was given: %s waits for %v", plan.Nodes[0].Name, got)
	}

	shrunk, err := New().Reshape(t.Context(), chain.ReshapeRequest{Network: n, Plan: grown, Remove: []string{"validator-3"},
		Host: "127.0.0.1", Placement: pods{"demo"}, Rand: rand.NewChaCha8([32]byte{5}), Now: planTime})
	if err != nil {
		t.Fatal(err)
	}
	for name := range stay {
		stay[name] = 2
	}
	stay["full-1"] = 1
	check(shrunk, stay)
	if len(shrunk.Nodes) != 5 {
		t.Fatalf("nodes after the removal %v", summarize(shrunk))
	}
}

// TestPeersScriptIsBounded runs the peers step's script: it goes on once
// a name resolves, and starts the node anyway once the bound has passed
// for a name that never resolves (.invalid, RFC 6761).
func TestPeersScriptIsBounded(t *testing.T) {
	for _, prog := range []string{"sh", "getent"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("no %s to run the script with: %v", prog, err)
		}
	}
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), "sh", "-c", peersScript(2*time.Second), stepPeers, "localhost", "nowhere.invalid", "also-nowhere.invalid")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the script failed: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	// The script counts whole seconds (date +%s): a bound of 2 s ends
	// between 1 and 3 s after it starts.
	if took := time.Since(start); took < time.Second || took > 20*time.Second {
		t.Errorf("the script took %s with a bound of 2s", took)
	}
	if stdout.String() != "peer localhost resolves\n" {
		t.Errorf("stdout %q", stdout.String())
	}
	for _, name := range []string{"nowhere.invalid", "also-nowhere.invalid"} {
		if !strings.Contains(stderr.String(), "peer "+name+" does not resolve yet; starting anyway") {
			t.Errorf("stderr does not say %s was not found: %q", name, stderr.String())
		}
	}
}
