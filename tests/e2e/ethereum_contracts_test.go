package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/chain/ethereum/templates"
	"github.com/chaindock/chaindock/internal/client"
)

// evmApp is an application's account on an Ethereum network: it signs
// its own transactions, and the platform's gateway submits them.
type evmApp struct {
	t       *testing.T
	c       *client.Client
	network string
	key     *ecdsa.PrivateKey
	chainID *big.Int
}

func (a *evmApp) addr() common.Address { return crypto.PubkeyToAddress(a.key.PublicKey) }

// query asks the network through the gateway and decodes the value.
func (a *evmApp) query(path, data string, out any) api.QueryAnswer {
	a.t.Helper()
	var ans api.QueryAnswer
	q := "/api/v1/networks/" + a.network + "/query?path=" + url.QueryEscape(path) + "&data=" + url.QueryEscape(data)
	if h := lastCommitted.Load(); h > 0 {
		q += "&minHeight=" + big.NewInt(h).String()
	}
	if err := getJSON(a.t.Context(), a.c, q, &ans); err != nil {
		a.t.Fatalf("query %s: %v", path, err)
	}
	if out != nil && ans.Code == 0 {
		if err := json.Unmarshal(ans.Value, out); err != nil {
			a.t.Fatalf("query %s: %v in %s", path, err, ans.Value)
		}
	}
	return ans
}

// send signs a call of to with data at the account's next nonce and
// submits it through the gateway, waiting for its block.
func (a *evmApp) send(to common.Address, data []byte) submitted {
	a.t.Helper()
	var nonce uint64
	a.query("/nonce/"+a.addr().Hex(), "", &nonce)
	var info struct {
		BaseFee string `json:"baseFee"`
	}
	a.query("/chain", "", &info)
	base, _ := new(big.Int).SetString(info.BaseFee, 10)
	tip := big.NewInt(1)
	tx, err := types.SignNewTx(a.key, types.LatestSignerForChainID(a.chainID), &types.DynamicFeeTx{
		ChainID: a.chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip),
		Gas: 300_000, To: &to, Data: data,
	})
	if err != nil {
		a.t.Fatal(err)
	}
	raw, _ := tx.MarshalBinary()
	s, err := submitTx(a.t.Context(), a.c, a.network, raw)
	if err != nil {
		a.t.Fatal(err)
	}
	return s
}

// call runs a view function through the gateway and unpacks its result.
func (a *evmApp) call(to common.Address, parsed *abi.ABI, method string, args ...any) []any {
	a.t.Helper()
	data, err := parsed.Pack(method, args...)
	if err != nil {
		a.t.Fatal(err)
	}
	var ret string
	if ans := a.query("/call/"+to.Hex(), hexutil.Encode(data), &ret); ans.Code != 0 {
		a.t.Fatalf("call %s.%s: code %d: %s", to.Hex(), method, ans.Code, ans.Log)
	}
	out, err := parsed.Unpack(method, hexutil.MustDecode(ret))
	if err != nil {
		a.t.Fatalf("call %s: %v in %s", method, err, ret)
	}
	return out
}

func templateABI(t *testing.T, name string) *abi.ABI {
	t.Helper()
	var art struct {
		ABI json.RawMessage `json:"abi"`
	}
	if err := json.Unmarshal(templates.BuildJSON(name), &art); err != nil {
		t.Fatal(err)
	}
	parsed, err := abi.JSON(bytes.NewReader(art.ABI))
	if err != nil {
		t.Fatal(err)
	}
	return &parsed
}

// checkEVMContracts deploys the notarisation and token templates on a
// running Ethereum network through the CLI, uses them through the
// gateway with an application's own signed transactions, finds the
// transactions and their events in the explorer, upgrades a contract to
// a new deployment, and removes one, after which the gateway refuses
// transactions to it.
func checkEVMContracts(t *testing.T, binDir, dataDir string, c *client.Client, network string, app *ecdsa.PrivateKey) {
	t.Helper()
	ctx := t.Context()
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	a := &evmApp{t: t, c: c, network: network, key: app}
	// Heights committed on other tests' networks mean nothing here.
	keepCommittedFloor(t)
	lastCommitted.Store(0)
	var info struct {
		ChainID uint64 `json:"chainId"`
	}
	a.query("/chain", "", &info)
	a.chainID = new(big.Int).SetUint64(info.ChainID)

	out := cl.ok("get", "packages")
	for _, want := range []string{"builtin/evm-notary@1.0.0", "builtin/evm-token@1.0.0", "evm"} {
		if !strings.Contains(out, want) {
			t.Fatalf("get packages does not list %s:\n%s", want, out)
		}
	}
	// Bad constructor arguments are refused before anything is sent.
	cl.fails("takes 4 argument(s) (string name_, string symbol_, uint256 supply, address holder); 2 given",
		"contract", "deploy", network, "token", "builtin/evm-token@1.0.0", "--arg", "Gold", "--arg", "GLD")
	cl.fails("fails its EIP-55 checksum", "contract", "deploy", network, "token", "builtin/evm-token@1.0.0",
		"--arg", "Gold", "--arg", "GLD", "--arg", "1000", "--arg", badChecksum(a.addr()))

	var token, notary api.Contract
	if err := json.Unmarshal([]byte(cl.ok("-o", "json", "contract", "deploy", network, "token", "builtin/evm-token@1.0.0",
		"--arg", "Gold", "--arg", "GLD", "--arg", "1000000", "--arg", a.addr().Hex())), &token); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cl.ok("-o", "json", "contract", "deploy", network, "notary", "builtin/evm-notary@1.0.0")), &notary); err != nil {
		t.Fatal(err)
	}
	if !common.IsHexAddress(token.Ref) || token.TxHash == "" || token.Height == 0 || len(token.Args) != 4 {
		t.Fatalf("token deployed as %+v: want an address, the creation transaction, its block and the arguments", token.ContractRevision)
	}
	// The calls read from a node that has both deployments: another may
	// be a block behind the one that answered the CLI.
	lastCommitted.Store(max(token.Height, notary.Height))
	tokenAddr, notaryAddr := common.HexToAddress(token.Ref), common.HexToAddress(notary.Ref)
	tokenABI, notaryABI := templateABI(t, "Token"), templateABI(t, "Notary")
	if got := a.call(tokenAddr, tokenABI, "balanceOf", a.addr())[0].(*big.Int); got.Int64() != 1_000_000 {
		t.Fatalf("the holder has %v tokens, want the whole supply of 1000000", got)
	}

	// A transfer through the gateway, as the application signed it.
	bob := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	data, _ := tokenABI.Pack("transfer", bob, big.NewInt(250))
	s := a.send(tokenAddr, data)
	if s.status != http.StatusOK || s.receipt["committed"] != true {
		t.Fatalf("transfer: HTTP %d %v %+v", s.status, s.receipt, s.problem)
	}
	lastCommitted.Store(int64(s.receipt["height"].(float64)))
	if got := a.call(tokenAddr, tokenABI, "balanceOf", bob)[0].(*big.Int); got.Int64() != 250 {
		t.Fatalf("bob has %v tokens, want 250", got)
	}
	transfer := s.receipt["hash"].(string)

	// A notarisation, then the same document again, which the contract
	// refuses in its block.
	digest := sha256.Sum256([]byte("contract of sale"))
	data, _ = notaryABI.Pack("notarize", digest, "sale")
	if s = a.send(notaryAddr, data); s.status != http.StatusOK {
		t.Fatalf("notarize: HTTP %d %+v", s.status, s.problem)
	}
	notarized := s.receipt["hash"].(string)
	if s = a.send(notaryAddr, data); s.status != http.StatusUnprocessableEntity || s.problem.Refusal == nil || s.problem.Refusal.Height == 0 {
		t.Fatalf("notarize twice: HTTP %d %v %+v, want 422 with the block that refused it", s.status, s.receipt, s.problem)
	}
	rec := a.call(notaryAddr, notaryABI, "record", digest)
	if rec[0].(common.Address) != a.addr() || rec[3].(string) != "sale" {
		t.Fatalf("record = %v, want by %s with meta sale", rec, a.addr().Hex())
	}

	// The explorer has both, with their events.
	transferTopic := crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)")).Hex()
	notarizedTopic := crypto.Keccak256Hash([]byte("Notarized(bytes32,address,uint256,string)")).Hex()
	for _, c2 := range []struct{ hash, contract, topic string }{
		{transfer, tokenAddr.Hex(), transferTopic},
		{notarized, notaryAddr.Hex(), notarizedTopic},
	} {
		var tx struct {
			Hash   string `json:"hash"`
			Height int64  `json:"height"`
			Code   uint32 `json:"code"`
			Events []struct {
				Type     string `json:"type"`
				Contract string `json:"contract"`
			} `json:"events"`
		}
		err := pollJSON(t, c, "/api/v1/networks/"+network+"/transactions/0x"+strings.ToLower(c2.hash), &tx)
		if err != nil {
			t.Fatalf("explorer: transaction %s: %v", c2.hash, err)
		}
		found := false
		for _, e := range tx.Events {
			found = found || (strings.EqualFold(e.Contract, c2.contract) && strings.EqualFold(e.Type, c2.topic))
		}
		if tx.Code != 0 || !found {
			t.Fatalf("explorer: transaction %s = %+v, want code 0 and an event %s of %s", c2.hash, tx, c2.topic, c2.contract)
		}
	}

	// The explorer's block is the node's own: same hash, and the sealer
	// geth's Clique API names as its signer.
	var blk struct {
		Hash     string `json:"hash"`
		Proposer string `json:"proposer"`
	}
	height := lastCommitted.Load() // the transfer's block
	if err := pollJSON(t, c, "/api/v1/networks/"+network+"/blocks/"+big.NewInt(height).String(), &blk); err != nil {
		t.Fatal(err)
	}
	nw, err := c.GetNetwork(ctx, network)
	if err != nil {
		t.Fatal(err)
	}
	rpcURL := nw.Status.Nodes[0].Endpoints["rpc"]
	var signer string
	ethCall(t, rpcURL, "clique_getSigner", &signer, hexutil.EncodeUint64(uint64(height)))
	var onChain struct {
		Hash string `json:"hash"`
	}
	ethCall(t, rpcURL, "eth_getBlockByNumber", &onChain, hexutil.EncodeUint64(uint64(height)), false)
	if !strings.EqualFold(blk.Proposer, signer) || !strings.EqualFold("0x"+blk.Hash, onChain.Hash) {
		t.Fatalf("explorer block %d = %+v, want hash %s sealed by %s", height, blk, onChain.Hash, signer)
	}

	// An upgrade is a new deployment: an organization's notary in two
	// versions, built from the template's files.
	if err := c.Do(ctx, http.MethodPost, "/api/v1/organizations", []byte(`{"name":"evmorg"}`), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "contract.json"), templates.BuildJSON("Notary"), 0o644); err != nil {
			t.Fatal(err)
		}
		cl.ok("package", "push", "--dir", dir, "--owner", "evmorg", "--name", "notary", "--version", v, "--chain", "ethereum", "--kind", "evm")
	}
	cl.ok("contract", "deploy", network, "registry", "evmorg/notary@1.0.0")
	var up api.Contract
	if err := json.Unmarshal([]byte(cl.ok("-o", "json", "contract", "upgrade", network, "registry", "evmorg/notary@1.1.0")), &up); err != nil {
		t.Fatal(err)
	}
	var hist api.Contract
	if err := json.Unmarshal([]byte(cl.ok("-o", "json", "contract", "history", network, "registry")), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.History) != 2 || hist.History[0].Ref == hist.History[1].Ref || hist.History[1].Ref != up.Ref || up.Revision != 2 {
		t.Fatalf("history after the upgrade: %+v, want two revisions at two addresses", hist.History)
	}

	// Removed, the token takes no more transactions through the gateway.
	cl.ok("contract", "remove", network, "token")
	data, _ = tokenABI.Pack("transfer", bob, big.NewInt(1))
	if s = a.send(tokenAddr, data); s.status != http.StatusConflict || !strings.Contains(s.problem.Detail, "was removed") {
		t.Fatalf("transfer after removal: HTTP %d %+v, want 409", s.status, s.problem)
	}
}

// badChecksum is addr in mixed case with one letter's case flipped: its
// EIP-55 checksum fails.
func badChecksum(addr common.Address) string {
	b := []byte(addr.Hex())
	for i := 2; i < len(b); i++ {
		if c := b[i]; c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' {
			b[i] ^= 0x20
			if strings.ToLower(string(b)) != string(b) && strings.ToUpper(string(b[2:])) != string(b[2:]) {
				return string(b)
			}
			b[i] ^= 0x20
		}
	}
	panic("an address without two letters: " + addr.Hex())
}

// pollJSON gets path until it answers, for what the explorer indexes a
// moment after its block; a deadline, not a count of tries, as each
// try takes longer on a starved machine.
func pollJSON(t *testing.T, c *client.Client, path string, out any) error {
	t.Helper()
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err = getJSON(t.Context(), c, path, out); err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-t.Context().Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
