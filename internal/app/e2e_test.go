package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/chaindock/chaindock/pkg/apptx"
)

// waitFor polls f until it succeeds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freeAddrs finds n distinct free addresses: each listener stays open
// until all are found, or the kernel may hand the same port out twice.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out
}

func dumpOnFailure(t *testing.T, path string) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		bz, _ := os.ReadFile(path)
		if len(bz) > 8000 {
			bz = bz[len(bz)-8000:]
		}
		t.Logf("--- tail of %s ---\n%s", filepath.Base(path), bz)
	})
}

// TestEndToEndWithCometBFT runs one real cometbft node against the
// application served as cmd/chaindock-app serves it, and proves a
// notarisation against the next block's header.
func TestEndToEndWithCometBFT(t *testing.T) {
	binDir := os.Getenv("CHAINDOCK_BIN_DIR")
	if binDir == "" {
		t.Skip("CHAINDOCK_BIN_DIR is not set: it names the directory holding the cometbft binary (make build puts it in bin/)")
	}
	bin := filepath.Join(binDir, "cometbft")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no cometbft binary in CHAINDOCK_BIN_DIR: %v", err)
	}
	home := t.TempDir()
	if out, err := exec.CommandContext(t.Context(), bin, "init", "--home", home).CombinedOutput(); err != nil {
		t.Fatalf("cometbft init: %v\n%s", err, out)
	}
	addrs := freeAddrs(t, 3)
	abciAddr, rpcAddr, p2pAddr := addrs[0], addrs[1], addrs[2]
	cfgPath := filepath.Join(home, "config", "config.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(cfg)
	for old, repl := range map[string]string{
		`proxy_app = "tcp://127.0.0.1:26658"`: `proxy_app = "tcp://` + abciAddr + `"`,
		`laddr = "tcp://127.0.0.1:26657"`:     `laddr = "tcp://` + rpcAddr + `"`,
		`laddr = "tcp://0.0.0.0:26656"`:       `laddr = "tcp://` + p2pAddr + `"`,
		`timeout_commit = "1s"`:               `timeout_commit = "200ms"`,
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("config.toml has no %s", old)
		}
		text = strings.Replace(text, old, repl, 1)
	}
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	appLog, err := os.Create(filepath.Join(home, "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, appLog.Name())
	srv, err := Listen(ServerConfig{Home: home, Addr: "tcp://" + abciAddr, SnapshotInterval: 5, SnapshotKeep: 1},
		slog.New(slog.NewTextHandler(appLog, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		_ = appLog.Close()
	})

	nodeLog, err := os.Create(filepath.Join(home, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, nodeLog.Name())
	node := exec.Command(bin, "node", "--home", home)
	node.Stdout, node.Stderr = nodeLog, nodeLog
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = node.Process.Kill()
		_ = node.Wait()
		_ = nodeLog.Close()
	})

	client, err := rpchttp.New("tcp://"+rpcAddr, "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var chainID string
	waitFor(t, 30*time.Second, "first block", func() error {
		st, err := client.Status(ctx)
		if err != nil {
			return err
		}
		if st.SyncInfo.LatestBlockHeight < 1 {
			return errors.New("no block yet")
		}
		chainID = st.NodeInfo.Network
		return nil
	})

	alice := newUser(t, 1)
	bob := newUser(t, 2)
	sign := func(tx *apptx.Tx) []byte { return alice.sign(tx) }
	doc := sha256.Sum256([]byte("end to end"))
	docHex := fmt.Sprintf("%x", doc)
	txs := [][]byte{
		sign(apptx.Notarize(chainID, alice.pub, 1, docHex, []string{"e2e"}, nil)),
		sign(apptx.Issue(chainID, alice.pub, 2, "EUR", 50)),
		sign(apptx.Transfer(chainID, alice.pub, 3, "EUR", bob.addr, 20)),
	}
	for i, tx := range txs {
		res, err := client.BroadcastTxSync(ctx, tx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Code != 0 {
			t.Fatalf("tx %d: code %d: %s", i, res.Code, res.Log)
		}
		if res.Hash.String() != apptx.Hash(tx) {
			t.Fatalf("tx %d: node's hash %s, apptx.Hash %s", i, res.Hash, apptx.Hash(tx))
		}
	}
	replay, err := client.BroadcastTxSync(ctx, txs[0])
	if err == nil && replay.Code == 0 {
		t.Fatal("a replayed transaction was accepted")
	}

	var height int64
	for i, tx := range txs {
		hash := sha256.Sum256(tx)
		waitFor(t, 30*time.Second, fmt.Sprintf("tx %d in a block", i), func() error {
			res, err := client.Tx(ctx, hash[:], false)
			if err != nil {
				return err
			}
			if res.TxResult.Code != 0 {
				t.Fatalf("tx %d: code %d: %s", i, res.TxResult.Code, res.TxResult.Log)
			}
			if i == 0 {
				height = res.Height
			}
			return nil
		})
	}

	q, err := client.ABCIQuery(ctx, apptx.PathNotaryProof, []byte(`{"hash":"`+docHex+`"}`))
	if err != nil || q.Response.Code != 0 {
		t.Fatalf("query proof: %v %s", err, q.Response.Log)
	}
	var p apptx.NotaryProof
	if err := json.Unmarshal(q.Response.Value, &p); err != nil {
		t.Fatal(err)
	}
	if p.Height != height || p.TxHash != apptx.Hash(txs[0]) {
		t.Fatalf("proof at height %d tx %s, want %d %s", p.Height, p.TxHash, height, apptx.Hash(txs[0]))
	}
	next := height + 1
	var headerHash []byte
	waitFor(t, 30*time.Second, "the next block's header", func() error {
		c, err := client.Commit(ctx, &next)
		if err != nil {
			return err
		}
		headerHash = c.AppHash
		return nil
	})
	if err := apptx.VerifyProof(&p, headerHash); err != nil {
		t.Fatalf("proof against header %d: %v", next, err)
	}
	if !bytes.Equal(headerHash, p.AppHash) {
		t.Fatalf("header app hash %X, proof's %X", headerHash, p.AppHash)
	}

	var bal apptx.Balance
	q, err = client.ABCIQuery(ctx, apptx.PathAssetBalance+"?address="+bob.addr+"&asset=EUR", nil)
	if err != nil || json.Unmarshal(q.Response.Value, &bal) != nil || bal.Amount != 20 {
		t.Fatalf("bob's balance: %v %s %s", err, q.Response.Value, q.Response.Log)
	}
}
