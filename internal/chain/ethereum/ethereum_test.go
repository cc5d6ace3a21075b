package ethereum

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/params"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/cometbft"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var planTime = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func decode(t *testing.T, specYAML string) *apis.Network {
	t.Helper()
	n, err := apis.DecodeNetwork([]byte(specYAML))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func planWith(t *testing.T, specYAML string, seed byte) *chain.Plan {
	t.Helper()
	n := decode(t, specYAML)
	errs := apis.ValidateNetwork(n, apis.Registries{Chains: []string{Name}, Runtimes: []string{"process"}})
	errs = append(errs, New().Validate(&n.Spec)...)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	apis.SetDefaults(n)
	ports := map[string]map[string]int{}
	for i, node := range n.Spec.Nodes() {
		ports[node.Name] = map[string]int{PortP2P: 30000 + 3*i, PortRPC: 30001 + 3*i, PortAuthRPC: 30002 + 3*i}
	}
	plan, err := New().Plan(t.Context(), chain.PlanRequest{
		Network: n, Ports: ports, Host: "127.0.0.1",
		Rand: rand.NewChaCha8([32]byte{seed}),
		Now:  planTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func planFor(t *testing.T, specYAML string) *chain.Plan {
	t.Helper()
	return planWith(t, specYAML, 0)
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

// keystoreOf returns a node's keystore file, or nil for a node without one.
func keystoreOf(node chain.PlannedNode) []byte {
	for _, f := range node.Spec.Files {
		if strings.HasPrefix(f.Path, dirKeystore+"/") {
			return f.Data
		}
	}
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

const threeSealers = `
apiVersion: chaindock/v1
kind: Network
metadata: {name: demo}
spec: {chain: ethereum, runtime: process, validators: 3, fullNodes: 1}
`

const organizations = `
apiVersion: chaindock/v1
kind: Network
metadata: {name: consortium}
spec:
  chain: ethereum
  runtime: process
  resources: {cpu: 1500m, memory: 1Gi}
  organizations:
    - {name: org1, validators: 2, fullNodes: 1}
    - {name: org2, validators: 1, resources: {cpu: "2", memory: 512Mi}}
  ethereum:
    chainID: 424242
    blockPeriod: 2s
    gasLimit: 8000000
    alloc:
      "0x00000000000000000000000000000000000000aa": "1000000000000000000"
      "0x52908400098527886E0F7030069857D2E4169EE7": "5"
`

func TestPlanGolden(t *testing.T) {
	for name, spec := range map[string]string{"three-sealers": threeSealers, "organizations": organizations} {
		t.Run(name, func(t *testing.T) {
			plan := planFor(t, spec)
			golden(t, name+"/genesis.json", file(t, plan.Nodes[0], fileGenesis))
			for _, node := range plan.Nodes {
				golden(t, name+"/"+node.Name+".config.toml", file(t, node, fileConfig))
			}
			summary, _ := json.MarshalIndent(struct {
				ChainID string
				Nodes   []map[string]any
			}{plan.ChainID, summarize(plan)}, "", "  ")
			golden(t, name+"/plan.json", append(summary, '\n'))
		})
	}
}

// summarize keeps what a reader checks of a plan; key files are left out.
func summarize(p *chain.Plan) []map[string]any {
	var out []map[string]any
	for _, n := range p.Nodes {
		var files []string
		for _, f := range n.Spec.Files {
			files = append(files, fmt.Sprintf("%s %o", f.Path, f.Mode))
		}
		out = append(out, map[string]any{
			"name": n.Name, "role": n.Role, "org": n.Organization, "nodeID": n.NodeID,
			"program": n.Spec.Program, "image": n.Spec.Image, "init": n.Spec.Init,
			"args": n.Spec.Args, "env": n.Spec.Env, "ports": n.Spec.Ports, "endpoints": n.Endpoints,
			"resources": n.Spec.Resources, "files": files,
		})
	}
	return out
}

// TestPlanIsDeterministic: the same random source and time give the same
// plan, byte for byte, once crypto/rand (the keystore's salt and IV) is
// made deterministic too; another source gives other keys.
func TestPlanIsDeterministic(t *testing.T) {
	encode := func(p *chain.Plan) []byte {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cryptotest.SetGlobalRandom(t, 1)
	a := encode(planFor(t, threeSealers))
	cryptotest.SetGlobalRandom(t, 1)
	b := encode(planFor(t, threeSealers))
	if !bytes.Equal(a, b) {
		t.Fatal("two plans from the same sources differ")
	}
	if other := planWith(t, threeSealers, 1); other.Nodes[0].NodeID == planFor(t, threeSealers).Nodes[0].NodeID {
		t.Fatal("another random source gave the same node key")
	}
}

func TestGenesisNamesTheSealers(t *testing.T) {
	plan := planFor(t, organizations)
	raw := file(t, plan.Nodes[0], fileGenesis)
	var g genesisDoc
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	var sealers []common.Address
	for _, node := range plan.Nodes {
		if !bytes.Equal(file(t, node, fileGenesis), raw) {
			t.Errorf("%s has another genesis", node.Name)
		}
		if ks := keystoreOf(node); ks != nil {
			var k struct{ Address string }
			if err := json.Unmarshal(ks, &k); err != nil {
				t.Fatal(err)
			}
			sealers = append(sealers, common.HexToAddress(k.Address))
		}
	}
	if len(sealers) != 3 {
		t.Fatalf("want 3 sealers with keystores, got %d", len(sealers))
	}

	// Extra-data: 32 zero bytes, the sealers in ascending order, 65 zero bytes.
	extra := []byte(g.ExtraData)
	if len(extra) != 32+3*20+65 {
		t.Fatalf("extra-data is %d bytes, want %d", len(extra), 32+3*20+65)
	}
	if !bytes.Equal(extra[:32], make([]byte, 32)) || !bytes.Equal(extra[len(extra)-65:], make([]byte, 65)) {
		t.Errorf("extra-data vanity or seal is not zero: %x", extra)
	}
	var signers []common.Address
	for i := 32; i < len(extra)-65; i += 20 {
		signers = append(signers, common.BytesToAddress(extra[i:i+20]))
	}
	want := slices.Clone(sealers)
	slices.SortFunc(want, func(a, b common.Address) int { return a.Cmp(b) })
	if !slices.Equal(signers, want) {
		t.Errorf("extra-data names %v, want the sealers in order %v", signers, want)
	}

	c := g.Config
	switch {
	case c.ChainID.Uint64() != 424242:
		t.Errorf("chain ID %v", c.ChainID)
	case c.Clique == nil || c.Clique.Period != 2 || c.Clique.Epoch != CliqueEpoch:
		t.Errorf("clique config %+v", c.Clique)
	case c.ShanghaiTime != nil || c.CancunTime != nil || c.TerminalTotalDifficulty != nil:
		t.Error("a Clique genesis must not schedule Shanghai, Cancun or the merge")
	case c.LondonBlock == nil || c.LondonBlock.Sign() != 0:
		t.Error("London is not active from block 0")
	}
	if err := c.CheckConfigForkOrder(); err != nil {
		t.Error(err)
	}
	if !c.IsLondon(big.NewInt(0)) || c.IsShanghai(big.NewInt(0), 1<<62) {
		t.Error("fork schedule is not London without Shanghai")
	}
	if uint64(g.GasLimit) != 8_000_000 || g.Difficulty.ToInt().Int64() != 1 {
		t.Errorf("gas limit %d, difficulty %v", g.GasLimit, g.Difficulty)
	}
	// The genesis lies ahead of the plan, so that block 1 waits for every node.
	if got := time.Unix(int64(g.Timestamp), 0); !got.Equal(planTime.Add(genesisDelay)) {
		t.Errorf("genesis time %s, want %s", got.UTC(), planTime.Add(genesisDelay))
	}

	// Alloc: the spec's accounts and every sealer, funded.
	balance := func(a common.Address) *big.Int {
		acct, ok := g.Alloc[fmt.Sprintf("%x", a.Bytes())]
		if !ok {
			return nil
		}
		return acct.Balance.ToInt()
	}
	if b := balance(common.HexToAddress("0xaa")); b == nil || b.String() != "1000000000000000000" {
		t.Errorf("spec account balance %v", b)
	}
	if b := balance(common.HexToAddress("0x52908400098527886E0F7030069857D2E4169EE7")); b == nil || b.Int64() != 5 {
		t.Errorf("checksummed spec account balance %v", b)
	}
	for _, s := range sealers {
		if b := balance(s); b == nil || b.Cmp(SealerBalance) != 0 {
			t.Errorf("sealer %s balance %v, want %v", s, b, SealerBalance)
		}
	}
	if len(g.Alloc) != 5 {
		t.Errorf("alloc has %d accounts, want 5", len(g.Alloc))
	}
}

func TestKeystoresDecryptToTheSealers(t *testing.T) {
	plan := planFor(t, threeSealers)
	for _, node := range plan.Nodes {
		ks := keystoreOf(node)
		if node.Role != apis.RoleValidator {
			if ks != nil || slices.Contains(node.Spec.Args, "--mine") || slices.Contains(node.Spec.Args, "--unlock") {
				t.Errorf("full node %s has a sealer key or seals", node.Name)
			}
			continue
		}
		if ks == nil {
			t.Fatalf("sealer %s has no keystore", node.Name)
		}
		pw := strings.TrimSuffix(string(file(t, node, filePassword)), "\n")
		if len(pw) < 32 {
			t.Errorf("%s password %q is short", node.Name, pw)
		}
		key, err := keystore.DecryptKey(ks, pw)
		if err != nil {
			t.Fatalf("%s keystore does not decrypt with its password: %v", node.Name, err)
		}
		if crypto.PubkeyToAddress(key.PrivateKey.PublicKey) != key.Address {
			t.Errorf("%s keystore address does not match its key", node.Name)
		}
		for _, flag := range []string{"--miner.etherbase", "--unlock"} {
			i := slices.Index(node.Spec.Args, flag)
			if i < 0 || common.HexToAddress(node.Spec.Args[i+1]) != key.Address {
				t.Errorf("%s %s is not its keystore's address %s: %v", node.Name, flag, key.Address, node.Spec.Args)
			}
		}
		var params struct {
			Crypto struct {
				KDFParams struct {
					N int `json:"n"`
				} `json:"kdfparams"`
			} `json:"crypto"`
		}
		if err := json.Unmarshal(ks, &params); err != nil || params.Crypto.KDFParams.N != keystore.LightScryptN {
			t.Errorf("%s keystore scrypt N %d, want the light %d", node.Name, params.Crypto.KDFParams.N, keystore.LightScryptN)
		}
	}
}

func TestNodesPeerWithEachOther(t *testing.T) {
	plan := planFor(t, threeSealers)
	for i, node := range plan.Nodes {
		// The node key in the data directory is the identity the plan names.
		key, err := crypto.HexToECDSA(string(file(t, node, fileNodeKey)))
		if err != nil {
			t.Fatal(err)
		}
		if id := enode.PubkeyToIDV4(&key.PublicKey).String(); id != node.NodeID {
			t.Errorf("%s node key is %s, the plan says %s", node.Name, id, node.NodeID)
		}
		en, err := enode.ParseV4(node.Endpoints[PortP2P])
		if err != nil || en.ID().String() != node.NodeID || en.IP().String() != "127.0.0.1" || en.TCP() != node.Spec.Ports[PortP2P] {
			t.Errorf("%s p2p endpoint %s: %v", node.Name, node.Endpoints[PortP2P], err)
		}
		cfg := string(file(t, node, fileConfig))
		for j, other := range plan.Nodes {
			n := strings.Count(cfg, other.Endpoints[PortP2P])
			if want := map[bool]int{true: 2, false: 0}[i != j]; n != want {
				t.Errorf("%s config names %s %d times, want %d (static and trusted)", node.Name, other.Name, n, want)
			}
		}
		if !strings.Contains(cfg, fmt.Sprintf("ListenAddr = \"127.0.0.1:%d\"", node.Spec.Ports[PortP2P])) || !strings.Contains(cfg, "MaxPeers = 3\n") {
			t.Errorf("%s config:\n%s", node.Name, cfg)
		}
		if slices.Contains(node.Spec.Args, "--port") {
			t.Errorf("%s listens with --port, on every interface", node.Name)
		}
	}
}

func TestValidate(t *testing.T) {
	const header = "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: v}\nspec:\n  chain: ethereum\n  runtime: process\n"
	for _, tc := range []struct {
		name, spec string
		want       []string // field paths
	}{
		{"defaults", "  validators: 3\n", nil},
		{"all set", "  validators: 2\n  fullNodes: 1\n  ethereum: {chainID: 31337, blockPeriod: 5s, gasLimit: 1000000000, alloc: {\"0x52908400098527886E0F7030069857D2E4169EE7\": \"0\"}}\n", nil},
		{"chain ID 0", "  validators: 1\n  ethereum: {chainID: 0}\n", []string{"spec.ethereum.chainID"}},
		{"mainnet chain ID", "  validators: 1\n  ethereum: {chainID: 1}\n", []string{"spec.ethereum.chainID"}},
		{"Sepolia chain ID", "  validators: 1\n  ethereum: {chainID: 11155111}\n", []string{"spec.ethereum.chainID"}},
		{"chain ID too large", "  validators: 1\n  ethereum: {chainID: 4503599627370477}\n", []string{"spec.ethereum.chainID"}},
		{"period 0, one sealer", "  validators: 1\n  fullNodes: 2\n  ethereum: {blockPeriod: 0s}\n", nil},
		{"period 0, three sealers", "  validators: 3\n  ethereum: {blockPeriod: 0s}\n", []string{"spec.ethereum.blockPeriod"}},
		{"period 0, sealers in two organizations", "  organizations: [{name: a, validators: 1}, {name: b, validators: 1}]\n  ethereum: {blockPeriod: 0s}\n", []string{"spec.ethereum.blockPeriod"}},
		{"fractional period", "  validators: 1\n  ethereum: {blockPeriod: 1500ms}\n", []string{"spec.ethereum.blockPeriod"}},
		{"long period", "  validators: 1\n  ethereum: {blockPeriod: 1m}\n", []string{"spec.ethereum.blockPeriod"}},
		{"gas limit", "  validators: 1\n  ethereum: {gasLimit: 21000}\n", []string{"spec.ethereum.gasLimit"}},
		{"bad accounts", "  validators: 1\n  ethereum: {alloc: {\"0x1234\": \"1\", \"52908400098527886e0f7030069857d2e4169ee7\": \"1\", \"0x52908400098527886E0F7030069857D2E4169Ee7\": \"1\"}}\n",
			[]string{"spec.ethereum.alloc.0x1234", "spec.ethereum.alloc.0x52908400098527886E0F7030069857D2E4169Ee7", "spec.ethereum.alloc.52908400098527886e0f7030069857d2e4169ee7"}},
		{"bad balances", "  validators: 1\n  ethereum: {alloc: {\"0x00000000000000000000000000000000000000a1\": \"-1\", \"0x00000000000000000000000000000000000000a2\": \"0x10\", \"0x00000000000000000000000000000000000000a3\": \"1000000000000000000000000000001\", \"0x00000000000000000000000000000000000000a4\": \"\"}}\n",
			[]string{"spec.ethereum.alloc.0x00000000000000000000000000000000000000a1", "spec.ethereum.alloc.0x00000000000000000000000000000000000000a2", "spec.ethereum.alloc.0x00000000000000000000000000000000000000a3", "spec.ethereum.alloc.0x00000000000000000000000000000000000000a4"}},
		{"one account twice", "  validators: 1\n  ethereum: {alloc: {\"0x52908400098527886e0f7030069857d2e4169ee7\": \"1\", \"0x52908400098527886E0F7030069857D2E4169EE7\": \"2\"}}\n", []string{"spec.ethereum.alloc.0x52908400098527886e0f7030069857d2e4169ee7"}},
		{"cometbft settings", "  validators: 1\n  cometbft: {app: kvstore}\n  consensus: {timeoutCommit: 200ms, timeoutPropose: 1s}\n", []string{"spec.cometbft", "spec.consensus.timeoutCommit", "spec.consensus.timeoutPropose"}},
		{"the defaults of cometbft settings", "  validators: 1\n  consensus: {timeoutCommit: 1s, timeoutPropose: 3s, createEmptyBlocks: true}\n", nil},
		{"no empty blocks with a period", "  validators: 1\n  consensus: {createEmptyBlocks: false}\n", []string{"spec.consensus.createEmptyBlocks"}},
		{"empty blocks without a period", "  validators: 1\n  consensus: {createEmptyBlocks: true}\n  ethereum: {blockPeriod: 0s}\n", []string{"spec.consensus.createEmptyBlocks"}},
		{"every problem at once", "  validators: 2\n  ethereum: {chainID: 0, blockPeriod: 0s, gasLimit: 1}\n", []string{"spec.ethereum.blockPeriod", "spec.ethereum.chainID", "spec.ethereum.gasLimit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := decode(t, header+tc.spec)
			if errs := apis.ValidateNetwork(n, apis.Registries{Chains: []string{Name}, Runtimes: []string{"process"}}); len(errs) > 0 {
				t.Fatalf("the spec is not valid to the platform: %v", errs)
			}
			errs := New().Validate(&n.Spec)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
				if e.Detail == "" {
					t.Errorf("%s: no detail", e.Field)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("errors on %q, want %q: %v", got, tc.want, errs)
			}
		})
	}
}

// TestOtherChainsRefuseTheEthereumSection: spec.ethereum on a cometbft
// network is a mistake, not a setting to ignore.
func TestOtherChainsRefuseTheEthereumSection(t *testing.T) {
	errs := cometbft.New().Validate(&apis.NetworkSpec{Validators: 1, Ethereum: &apis.EthereumSpec{}})
	if len(errs) != 1 || errs[0].Field != "spec.ethereum" {
		t.Fatalf("want one error on spec.ethereum, got %v", errs)
	}
}

func TestSealingOnDemandMakesNoEmptyBlocks(t *testing.T) {
	n := decode(t, "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: v}\nspec: {chain: ethereum, runtime: process, validators: 1, ethereum: {blockPeriod: 0s}}\n")
	apis.SetDefaults(n)
	if c := n.Spec.Consensus.CreateEmptyBlocks; c == nil || *c {
		t.Fatal("a chain sealing on demand defaults to making empty blocks: the platform would take it for stalled")
	}
	if errs := New().Validate(&n.Spec); len(errs) > 0 {
		t.Fatalf("the defaulted spec does not validate again: %v", errs)
	}
	plan := planFor(t, "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: v}\nspec: {chain: ethereum, runtime: process, validators: 1, ethereum: {blockPeriod: 0s}}\n")
	var g genesisDoc
	if err := json.Unmarshal(file(t, plan.Nodes[0], fileGenesis), &g); err != nil {
		t.Fatal(err)
	}
	if g.Config.Clique.Period != 0 {
		t.Fatalf("period %d", g.Config.Clique.Period)
	}
}

func TestChainIDFor(t *testing.T) {
	seen := map[uint64]string{}
	for i := range 2000 {
		name := fmt.Sprintf("net-%d", i)
		id := ChainIDFor(name)
		if id != ChainIDFor(name) {
			t.Fatal("not deterministic")
		}
		if id < derivedBase || id >= 1<<31 || publicChains[id] != "" {
			t.Fatalf("%s: chain ID %d", name, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share chain ID %d", name, other, id)
		}
		seen[id] = name
	}
	if p := planFor(t, threeSealers); p.ChainID != fmt.Sprint(ChainIDFor("demo")) || !slices.Contains(p.Nodes[0].Spec.Args, p.ChainID) {
		t.Errorf("plan chain ID %s, want %d as the network ID too", p.ChainID, ChainIDFor("demo"))
	}
	if params.AllCliqueProtocolChanges.ChainID.Uint64() != 1337 || params.AllCliqueProtocolChanges.Clique.Period != 0 {
		t.Error("planning changed go-ethereum's shared chain config")
	}
}

// TestExampleIsValid keeps examples/ethereum-3s.yaml, which the docs show,
// deployable.
func TestExampleIsValid(t *testing.T) {
	b, err := os.ReadFile("../../../examples/ethereum-3s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan := planFor(t, string(b))
	if len(plan.Nodes) != 4 || plan.ChainID != "424242" {
		t.Fatalf("example plans %d nodes of chain %s", len(plan.Nodes), plan.ChainID)
	}
}
