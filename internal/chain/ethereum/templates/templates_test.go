package templates

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
)

// templateNames are the templates every test covers.
var templateNames = []string{"Notary", "Token"}

// artifact is the shape compile.js writes.
type artifact struct {
	ContractName     string          `json:"contractName"`
	Source           string          `json:"source"`
	Compiler         string          `json:"compiler"`
	EVMVersion       string          `json:"evmVersion"`
	OptimizerRuns    int             `json:"optimizerRuns"`
	ABI              json.RawMessage `json:"abi"`
	Bytecode         string          `json:"bytecode"`
	DeployedBytecode string          `json:"deployedBytecode"`
}

func TestSourceAndBuildJSON(t *testing.T) {
	for _, name := range templateNames {
		src, err := Source(name)
		if err != nil {
			t.Fatalf("Source(%q): %v", name, err)
		}
		if !bytes.Contains(src, []byte("contract "+name+" ")) {
			t.Errorf("Source(%q) does not declare contract %s", name, name)
		}
		if !bytes.Contains(src, []byte("pragma solidity 0.8.26;")) {
			t.Errorf("Source(%q) is not pinned to solidity 0.8.26", name)
		}
		if b := BuildJSON(name); len(b) == 0 {
			t.Errorf("BuildJSON(%q) is empty", name)
		}
	}
	for _, name := range []string{"Nope", "", "notary", "../Notary"} {
		if src, err := Source(name); err == nil {
			t.Errorf("Source(%q) = %d bytes, want an error", name, len(src))
		}
		if b := BuildJSON(name); b != nil {
			t.Errorf("BuildJSON(%q) = %d bytes, want nil", name, len(b))
		}
	}
}

func load(t *testing.T, name string) (artifact, abi.ABI) {
	t.Helper()
	var a artifact
	if err := json.Unmarshal(BuildJSON(name), &a); err != nil {
		t.Fatalf("%s: artifact: %v", name, err)
	}
	if a.ContractName != name || a.Source != name+".sol" {
		t.Errorf("%s: contractName %q source %q", name, a.ContractName, a.Source)
	}
	if a.EVMVersion != "london" || a.OptimizerRuns != 200 || !strings.HasPrefix(a.Compiler, "0.8.26+") {
		t.Errorf("%s: evmVersion %q optimizerRuns %d compiler %q", name, a.EVMVersion, a.OptimizerRuns, a.Compiler)
	}
	if len(a.ABI) == 0 || string(a.ABI) == "[]" || string(a.ABI) == "null" {
		t.Fatalf("%s: empty abi", name)
	}
	parsed, err := abi.JSON(bytes.NewReader(a.ABI))
	if err != nil {
		t.Fatalf("%s: abi: %v", name, err)
	}
	return a, parsed
}

func decodeHex(t *testing.T, name, field, s string) []byte {
	t.Helper()
	if !strings.HasPrefix(s, "0x") {
		t.Fatalf("%s: %s lacks the 0x prefix", name, field)
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		t.Fatalf("%s: %s: %v", name, field, err)
	}
	if len(b) == 0 {
		t.Fatalf("%s: %s is empty", name, field)
	}
	return b
}

func TestArtifacts(t *testing.T) {
	want := map[string]struct{ methods, events []string }{
		"Notary": {
			methods: []string{"notarize", "record"},
			events:  []string{"Notarized"},
		},
		"Token": {
			methods: []string{"name", "symbol", "decimals", "totalSupply", "balanceOf", "transfer", "allowance", "approve", "transferFrom"},
			events:  []string{"Transfer", "Approval"},
		},
	}
	sigs := map[string]string{
		"notarize":     "notarize(bytes32,string)",
		"record":       "record(bytes32)",
		"Notarized":    "Notarized(bytes32,address,uint256,string)",
		"transfer":     "transfer(address,uint256)",
		"balanceOf":    "balanceOf(address)",
		"allowance":    "allowance(address,address)",
		"approve":      "approve(address,uint256)",
		"transferFrom": "transferFrom(address,address,uint256)",
		"Transfer":     "Transfer(address,address,uint256)",
		"Approval":     "Approval(address,address,uint256)",
	}
	for _, name := range templateNames {
		a, parsed := load(t, name)
		decodeHex(t, name, "bytecode", a.Bytecode)
		decodeHex(t, name, "deployedBytecode", a.DeployedBytecode)
		for _, m := range want[name].methods {
			method, ok := parsed.Methods[m]
			if !ok {
				t.Errorf("%s: abi lacks method %s", name, m)
				continue
			}
			if sig, ok := sigs[m]; ok && method.Sig != sig {
				t.Errorf("%s: method %s has signature %s, want %s", name, m, method.Sig, sig)
			}
		}
		for _, e := range want[name].events {
			event, ok := parsed.Events[e]
			if !ok {
				t.Errorf("%s: abi lacks event %s", name, e)
				continue
			}
			if sig, ok := sigs[e]; ok && event.Sig != sig {
				t.Errorf("%s: event %s has signature %s, want %s", name, e, event.Sig, sig)
			}
		}
	}
	// The constructor of Token takes (name, symbol, supply, holder).
	_, token := load(t, "Token")
	if got := len(token.Constructor.Inputs); got != 4 {
		t.Errorf("Token constructor takes %d arguments, want 4", got)
	}
}

func TestReproducible(t *testing.T) {
	dir := os.Getenv("CHAINDOCK_SOLC_DIR")
	if dir == "" {
		t.Skip("CHAINDOCK_SOLC_DIR not set: run scripts/solc.sh to check the artifacts are reproducible")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found on PATH: it runs compile.js to check the artifacts are reproducible")
	}
	out := t.TempDir()
	cmd := exec.Command(node, "compile.js", dir, out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node compile.js: %v\n%s", err, stderr.String())
	}
	for _, name := range templateNames {
		got, err := os.ReadFile(filepath.Join(out, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, BuildJSON(name)) {
			t.Errorf("build/%s.json differs from what compile.js produces now; run make contracts", name)
		}
	}
}
