package ethereum

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/ethereum/templates"
)

func TestTemplatesAreValidPackages(t *testing.T) {
	d := New()
	tpls := d.Templates()
	if len(tpls) != len(builtin) {
		t.Fatalf("%d templates, want %d", len(tpls), len(builtin))
	}
	for _, p := range tpls {
		if errs := d.ValidatePackage(&p); len(errs) > 0 {
			t.Errorf("template %s: %v", p.Ref(), errs)
		}
		if p.Checksum != p.Digest() || p.Chain != Name || p.Owner != apis.BuiltinOwner {
			t.Errorf("template %s: checksum %s chain %s owner %s", p.Ref(), p.Checksum, p.Chain, p.Owner)
		}
	}
}

func TestTokenConstructorArguments(t *testing.T) {
	d := New()
	var token apis.Package
	for _, p := range d.Templates() {
		if p.Name == "evm-token" {
			token = p
		}
	}
	f, _ := token.File(ArtifactFile)
	parsed, code, err := parseArtifact(f.Content())
	if err != nil {
		t.Fatal(err)
	}
	holder := "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
	data, err := constructorData(parsed, code, []string{"Gold", "GLD", "1000000000000000000000", holder})
	if err != nil {
		t.Fatal(err)
	}
	got, err := parsed.Constructor.Inputs.Unpack(data[len(code):])
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"Gold", "GLD", new(big.Int).Exp(big.NewInt(10), big.NewInt(21), nil), common.HexToAddress(holder)}
	for i := range want {
		if w, ok := want[i].(*big.Int); ok {
			if got[i].(*big.Int).Cmp(w) != 0 {
				t.Errorf("argument %d = %v, want %v", i, got[i], w)
			}
			continue
		}
		if got[i] != want[i] {
			t.Errorf("argument %d = %v, want %v", i, got[i], want[i])
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"Gold", "GLD", "1"}, "takes 4 argument(s) (string name_, string symbol_, uint256 supply, address holder); 3 given"},
		{[]string{"Gold", "GLD", "-1", holder}, "argument 2 (uint256 supply): -1 is out of the range of uint256"},
		{[]string{"Gold", "GLD", "ten", holder}, `argument 2 (uint256 supply): "ten" is not an integer`},
		{[]string{"Gold", "GLD", "1", "0x5b38Da6a701c568545dCfcB03FcB875f56beddC4"}, "fails its EIP-55 checksum"},
		{[]string{"Gold", "GLD", "1", "0x12"}, `"0x12" is not an account address`},
	} {
		_, err := constructorData(parsed, code, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("args %q: %v, want an error containing %q", c.args, err, c.want)
		}
	}
}

func TestArgValueTypes(t *testing.T) {
	typ := func(s string) abi.Type {
		t.Helper()
		ty, err := abi.NewType(s, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		return ty
	}
	for _, c := range []struct {
		typ, in string
		want    any
	}{
		{"uint8", "255", uint8(255)},
		{"int64", "-5", int64(-5)},
		{"uint64", "0x10", uint64(16)},
		{"bool", "true", true},
		{"bytes", "0x0102", []byte{1, 2}},
		{"bytes2", "0x0102", [2]byte{1, 2}},
		{"address", "0x5b38da6a701c568545dcfcb03fcb875f56beddc4", common.HexToAddress("0x5b38da6a701c568545dcfcb03fcb875f56beddc4")},
	} {
		got, err := argValue(typ(c.typ), c.in)
		if err != nil {
			t.Errorf("%s %q: %v", c.typ, c.in, err)
			continue
		}
		if b, ok := c.want.([]byte); ok {
			if string(got.([]byte)) != string(b) {
				t.Errorf("%s %q = %v, want %v", c.typ, c.in, got, c.want)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%s %q = %#v, want %#v", c.typ, c.in, got, c.want)
		}
	}
	for _, c := range []struct{ typ, in string }{
		{"uint8", "256"}, {"int8", "128"}, {"int8", "-129"}, {"bool", "yes"}, {"bytes2", "0x01"}, {"uint256[]", "1"},
	} {
		if _, err := argValue(typ(c.typ), c.in); err == nil {
			t.Errorf("%s %q: no error", c.typ, c.in)
		}
	}
}

func TestValidatePackageNamesWhatIsWrong(t *testing.T) {
	d := New()
	art := func(abiJSON, code string) []apis.PackageFile {
		b, _ := json.Marshal(map[string]any{"abi": json.RawMessage(abiJSON), "bytecode": code})
		return []apis.PackageFile{{Path: ArtifactFile, Text: string(b)}}
	}
	for _, c := range []struct {
		name string
		p    apis.Package
		want string
	}{
		{"kind", apis.Package{Kind: "wasm", Files: art(`[]`, "0x6000")}, `kind: "wasm": an ethereum package is of kind "evm"`},
		{"no artifact", apis.Package{Kind: PackageKind, Files: []apis.PackageFile{{Path: "a.sol", Text: "x"}}}, "files: has no contract.json"},
		{"bad abi", apis.Package{Kind: PackageKind, Files: art(`[{"type":"function","inputs":[{"type":"strng"}]}]`, "0x6000")}, "files[contract.json]: abi:"},
		{"no code", apis.Package{Kind: PackageKind, Files: art(`[]`, "")}, "has no bytecode"},
		{"bad hex", apis.Package{Kind: PackageKind, Files: art(`[]`, "6000")}, "bytecode: want 0x and hex digits"},
		{"too big", apis.Package{Kind: PackageKind, Files: art(`[]`, "0x"+strings.Repeat("00", maxInitCodeBytes+1))}, "at most 49152"},
		// 0x6080604052 5f 80fd: Shanghai code pushes a zero at once.
		{"push0", apis.Package{Kind: PackageKind, Files: art(`[]`, "0x60806040525f80fd")}, "uses PUSH0 (0x5f, at byte 5)"},
		{"array constructor", apis.Package{Kind: PackageKind, Files: art(`[{"type":"constructor","inputs":[{"name":"xs","type":"uint256[]"}]}]`, "0x6000")}, "constructor argument 0 (uint256[] xs)"},
	} {
		errs := d.ValidatePackage(&c.p)
		if len(errs) == 0 || !strings.Contains(errs.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, errs, c.want)
		}
	}
	// A PUSH0 byte inside a PUSH's data, or past the constructor's code,
	// is not an instruction.
	ok := apis.Package{Kind: PackageKind, Files: art(`[]`, "0x615f5f600080fe5f5f")}
	if errs := d.ValidatePackage(&ok); len(errs) > 0 {
		t.Errorf("PUSH0 bytes as data: %v", errs)
	}
}

func TestTxContract(t *testing.T) {
	key, _ := crypto.GenerateKey()
	to := common.HexToAddress("0x5b38da6a701c568545dcfcb03fcb875f56beddc4")
	signer := types.LatestSignerForChainID(big.NewInt(1234))
	call, _ := types.SignNewTx(key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1234), To: &to, Gas: 21000, GasFeeCap: big.NewInt(1), Data: []byte{1}})
	create, _ := types.SignNewTx(key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1234), Gas: 100000, GasFeeCap: big.NewInt(1), Data: []byte{0x60, 0}})
	raw, _ := call.MarshalBinary()
	if ref, ok := New().TxContract(nil, raw); !ok || ref != to.Hex() {
		t.Errorf("call: %q %v, want %s", ref, ok, to.Hex())
	}
	raw, _ = create.MarshalBinary()
	if ref, ok := New().TxContract(nil, raw); ok {
		t.Errorf("creation names contract %q", ref)
	}
	if _, ok := New().TxContract(nil, hexutil.MustDecode("0x0102")); ok {
		t.Error("garbage names a contract")
	}
}

func TestTxSender(t *testing.T) {
	key, _ := crypto.GenerateKey()
	want := crypto.PubkeyToAddress(key.PublicKey).Hex()
	to := common.HexToAddress("0x5b38da6a701c568545dcfcb03fcb875f56beddc4")
	typed, _ := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(1234)),
		&types.DynamicFeeTx{ChainID: big.NewInt(1234), To: &to, Gas: 21000, GasFeeCap: big.NewInt(1)})
	legacy, _ := types.SignNewTx(key, types.HomesteadSigner{}, &types.LegacyTx{To: &to, Gas: 21000, GasPrice: big.NewInt(1)})
	for name, tx := range map[string]*types.Transaction{"typed": typed, "unprotected legacy": legacy} {
		raw, _ := tx.MarshalBinary()
		if got, ok := New().TxSender(raw); !ok || got != want {
			t.Errorf("%s: sender %q %v, want %s", name, got, ok, want)
		}
	}
	if _, ok := New().TxSender([]byte{1, 2}); ok {
		t.Error("garbage has a sender")
	}
}

// TestTemplatesHaveNoPush0 walks both the creation and the runtime code of
// the shipped builds: the chain's London genesis has no PUSH0.
func TestTemplatesHaveNoPush0(t *testing.T) {
	for _, name := range []string{"Notary", "Token"} {
		var a struct {
			Bytecode         string `json:"bytecode"`
			DeployedBytecode string `json:"deployedBytecode"`
		}
		if err := json.Unmarshal(templates.BuildJSON(name), &a); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for field, s := range map[string]string{"bytecode": a.Bytecode, "deployedBytecode": a.DeployedBytecode} {
			code, err := hexutil.Decode(s)
			if err != nil || len(code) == 0 {
				t.Fatalf("%s: %s: %v", name, field, err)
			}
			if at, ok := firstPush0(code); ok {
				t.Errorf("%s: %s has PUSH0 at offset %d", name, field, at)
			}
		}
	}
}

func TestFirstPush0(t *testing.T) {
	for _, c := range []struct {
		code string
		want int // -1: none
	}{
		{"6080604052", -1},
		{"5f", 0},
		{"60805f", 2},
		{"605f", -1}, // 0x5f is PUSH1's immediate
		{"7f" + strings.Repeat("5f", 32) + "00", -1}, // PUSH32's immediates
		{"00fe5f", -1}, // after INVALID: data, not code
		{"615f5f5f", 3},
	} {
		at, ok := firstPush0(hexutil.MustDecode("0x" + c.code))
		if !ok {
			at = -1
		}
		if at != c.want {
			t.Errorf("firstPush0(%s) = %d, want %d", c.code, at, c.want)
		}
	}
}
