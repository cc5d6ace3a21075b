package app

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/chaindock/chaindock/pkg/apptx"
)

const testChain = "chaindock-test"

// testChainApp drives an App the way CometBFT does.
type testChainApp struct {
	t      *testing.T
	app    *App
	dir    string
	cfg    Config
	height int64
	// hashes[h] is the app hash after block h.
	hashes map[int64][]byte
}

func openTestApp(t *testing.T, cfg Config) *testChainApp {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	a, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	c := &testChainApp{t: t, app: a, dir: cfg.Dir, cfg: cfg, hashes: map[int64][]byte{}}
	c.height = a.height
	return c
}

func newTestChain(t *testing.T, cfg Config) *testChainApp {
	t.Helper()
	c := openTestApp(t, cfg)
	res, err := c.app.InitChain(t.Context(), &abci.RequestInitChain{ChainId: testChain, InitialHeight: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.hashes[0] = res.AppHash
	return c
}

// reopen closes the app and opens its directory again, as after kill -9.
func (c *testChainApp) reopen() {
	c.t.Helper()
	if err := c.app.Close(); err != nil {
		c.t.Fatal(err)
	}
	a, err := Open(c.cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = a.Close() })
	c.app = a
	c.height = a.height
}

func blockTime(h int64) time.Time {
	return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h) * time.Second)
}

// finalize runs FinalizeBlock for the next height without committing.
func (c *testChainApp) finalize(txs ...[]byte) *abci.ResponseFinalizeBlock {
	c.t.Helper()
	res, err := c.app.FinalizeBlock(c.t.Context(), &abci.RequestFinalizeBlock{Height: c.height + 1, Time: blockTime(c.height + 1), Txs: txs})
	if err != nil {
		c.t.Fatal(err)
	}
	return res
}

// block finalizes and commits the next block.
func (c *testChainApp) block(txs ...[]byte) *abci.ResponseFinalizeBlock {
	c.t.Helper()
	res := c.finalize(txs...)
	if _, err := c.app.Commit(c.t.Context(), &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err)
	}
	c.height++
	c.hashes[c.height] = res.AppHash
	return res
}

// mustBlock commits a block and fails if any tx is refused.
func (c *testChainApp) mustBlock(txs ...[]byte) *abci.ResponseFinalizeBlock {
	c.t.Helper()
	res := c.block(txs...)
	for i, r := range res.TxResults {
		if r.Code != 0 {
			c.t.Fatalf("block %d tx %d: code %d: %s", c.height, i, r.Code, r.Log)
		}
	}
	return res
}

func (c *testChainApp) info() *abci.ResponseInfo {
	c.t.Helper()
	res, err := c.app.Info(c.t.Context(), &abci.RequestInfo{})
	if err != nil {
		c.t.Fatal(err)
	}
	return res
}

// query returns the code and raw value of a query.
func (c *testChainApp) query(path string, data any) (uint32, []byte, string) {
	c.t.Helper()
	var bz []byte
	if data != nil {
		var err error
		if bz, err = json.Marshal(data); err != nil {
			c.t.Fatal(err)
		}
	}
	res, err := c.app.Query(c.t.Context(), &abci.RequestQuery{Path: path, Data: bz})
	if err != nil {
		c.t.Fatal(err)
	}
	return res.Code, res.Value, res.Log
}

// get runs a query that must succeed and decodes its value into out.
func (c *testChainApp) get(path string, data, out any) {
	c.t.Helper()
	code, value, log := c.query(path, data)
	if code != 0 {
		c.t.Fatalf("query %s %v: code %d: %s", path, data, code, log)
	}
	if err := json.Unmarshal(value, out); err != nil {
		c.t.Fatalf("query %s: %v", path, err)
	}
}

func (c *testChainApp) account(addr string) apptx.Account {
	c.t.Helper()
	var a apptx.Account
	c.get(apptx.PathAccount, map[string]string{"address": addr}, &a)
	return a
}

// user signs transactions with consecutive nonces.
type user struct {
	t     *testing.T
	pub   ed25519.PublicKey
	priv  ed25519.PrivateKey
	addr  string
	nonce uint64
}

func newUser(t *testing.T, seed byte) *user {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	return &user{t: t, pub: pub, priv: priv, addr: apptx.Address(pub)}
}

// sign signs and encodes tx; it does not advance the nonce.
func (u *user) sign(tx *apptx.Tx) []byte {
	u.t.Helper()
	if err := apptx.Sign(tx, u.priv); err != nil {
		u.t.Fatal(err)
	}
	bz, err := apptx.Encode(tx)
	if err != nil {
		u.t.Fatal(err)
	}
	return bz
}

func (u *user) next() uint64 { u.nonce++; return u.nonce }

func (u *user) notarize(doc string, tags ...string) []byte {
	return u.sign(apptx.Notarize(testChain, u.pub, u.next(), docHash(doc), tags, map[string]string{"doc": doc}))
}

func (u *user) issue(asset string, amount uint64) []byte {
	return u.sign(apptx.Issue(testChain, u.pub, u.next(), asset, amount))
}

func (u *user) transfer(asset, to string, amount uint64) []byte {
	return u.sign(apptx.Transfer(testChain, u.pub, u.next(), asset, to, amount))
}

func docHash(doc string) string {
	sum := sha256.Sum256([]byte(doc))
	return hex.EncodeToString(sum[:])
}

func docName(i int) string { return fmt.Sprintf("document number %d", i) }
