package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/pkg/apptx"
	"github.com/chaindock/chaindock/tests/framework"
)

// freePorts finds n ports in [lo, hi] that nothing listens on.
func freePorts(t *testing.T, lo, hi, n int) []int {
	t.Helper()
	var out []int
	for p := lo; p <= hi && len(out) < n; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	if len(out) < n {
		t.Fatalf("only %d free ports in %d-%d, want %d", len(out), lo, hi, n)
	}
	return out
}

// startProcess runs a program in dir with its output in dir/logName, and
// stops it (SIGTERM, then SIGKILL) when the test ends, showing the end of
// its log if the test failed.
func startProcess(t *testing.T, dir, logName, program string, args ...string) *exec.Cmd {
	t.Helper()
	logPath := filepath.Join(dir, logName)
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(program, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", program, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 12000 {
				b = b[len(b)-12000:]
			}
			t.Logf("--- end of %s ---\n%s", logPath, b)
		}
	})
	return cmd
}

// hostPort is the host:port of a node's p2p endpoint (tcp://ID@host:port).
func hostPort(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		t.Fatalf("p2p endpoint %q: %v", endpoint, err)
	}
	return u.Host
}

// signedAppHash is the app hash in the header of height that a node has
// with its commit, waiting a little for a height the chain is about to
// reach.
func signedAppHash(t *testing.T, rc *rpchttp.HTTP, height int64) []byte {
	t.Helper()
	var appHash []byte
	if err := framework.Poll(t.Context(), 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		com, err := rc.Commit(t.Context(), &height)
		if err != nil {
			return false, err.Error()
		}
		appHash = com.AppHash
		return true, ""
	}); err != nil {
		t.Fatalf("header %d: %v", height, err)
	}
	return appHash
}

// TestStateSyncJoin: a new full node joins a running network of ChainDock's
// application by CometBFT state sync from the validators' snapshots, not by
// replaying the chain from genesis, and then serves the application state
// written before it joined, and after.
func TestStateSyncJoin(t *testing.T) {
	binDir, dataDir := setup(t)
	if _, err := os.Stat(filepath.Join(binDir, "chaindock-app")); err != nil {
		t.Skipf("%s has no chaindock-app: run `make build`", binDir)
	}
	keepCommittedFloor(t)
	ctx := t.Context()
	args := []string{"--port-range", "31925-31949", "--probe-interval", "500ms", "--rate-limit", "0"}
	srv := startServer(t, binDir, dataDir, args...)
	c := srv.Client
	const name, interval = "statesync", 10
	spec := fmt.Sprintf(`apiVersion: chaindock/v1
kind: Network
metadata: {name: %s}
spec:
  chain: cometbft
  runtime: process
  validators: 4
  consensus: {timeoutCommit: 200ms}
  cometbft: {app: chaindock, snapshotInterval: %d}
`, name, interval)
	if _, err := c.CreateNetwork(ctx, []byte(spec)); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.AllAtLeast(ctx, c, name, 2, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	chainID := "chaindock-" + name

	// Application state to carry over, then a few snapshots past it.
	before := newNotaryLoad(t, chainID, 4)
	before.send(t, c, name, "before the join", 20)
	var last int64
	for _, s := range before.sent {
		last = max(last, s.height)
	}
	n, err := framework.AllAtLeast(ctx, c, name, last+3*interval, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v0Home := filepath.Join(dataDir, "runtime", "process", name+".validator-0", "home")
	snaps, err := os.ReadDir(filepath.Join(v0Home, "data", "chaindock-app", "snapshots"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("validator-0 keeps no snapshots: %v %v", err, fmtEntries(snaps))
	}

	// The peers, by the IDs their own RPC gives, and two RPC servers for
	// the light client.
	var peers, rpcServers []string
	rpcs := map[string]*rpchttp.HTTP{}
	for _, s := range n.Status.Nodes {
		rc, err := rpchttp.New(s.Endpoints["rpc"], "/websocket")
		if err != nil {
			t.Fatal(err)
		}
		st, err := rc.Status(ctx)
		if err != nil {
			t.Fatalf("status of %s: %v", s.Name, err)
		}
		if string(st.NodeInfo.ID()) != s.NodeID {
			t.Fatalf("%s's RPC says node ID %s, its status %s", s.Name, st.NodeInfo.ID(), s.NodeID)
		}
		peers = append(peers, fmt.Sprintf("%s@%s", st.NodeInfo.ID(), hostPort(t, s.Endpoints["p2p"])))
		if len(rpcServers) < 2 {
			rpcServers = append(rpcServers, s.Endpoints["rpc"])
		}
		rpcs[s.Name] = rc
	}
	v0 := rpcs["validator-0"]
	// Trust a recent block, as an operator would: its hash from a node,
	// and the same from the explorer.
	st, err := v0.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trustHeight := st.SyncInfo.LatestBlockHeight
	trusted, err := v0.Block(ctx, &trustHeight)
	if err != nil {
		t.Fatal(err)
	}
	var shown api.Block
	if err := framework.Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		err := getJSON(ctx, c, fmt.Sprintf("/api/v1/networks/%s/blocks/%d", name, trustHeight), &shown)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Fatalf("block %d in the explorer: %v", trustHeight, err)
	}
	if shown.Hash != trusted.BlockID.Hash.String() {
		t.Fatalf("block %d: the explorer shows hash %s, validator-0 %s", trustHeight, shown.Hash, trusted.BlockID.Hash)
	}

	// The new node: a fresh home with the network's genesis.
	home := t.TempDir()
	bin := filepath.Join(binDir, "cometbft")
	if out, err := exec.CommandContext(ctx, bin, "init", "--home", home).CombinedOutput(); err != nil {
		t.Fatalf("cometbft init: %v\n%s", err, out)
	}
	genesis, err := os.ReadFile(filepath.Join(v0Home, "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "config", "genesis.json"), genesis, 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 31950, 31999, 3)
	p2pPort, rpcPort, abciPort := ports[0], ports[1], ports[2]
	cfg := cmtcfg.DefaultConfig()
	cfg.Moniker = "joiner"
	cfg.ProxyApp = fmt.Sprintf("tcp://127.0.0.1:%d", abciPort)
	cfg.LogLevel = "info"
	cfg.TxIndex.Indexer = "kv"
	cfg.P2P.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", p2pPort)
	cfg.P2P.ExternalAddress = fmt.Sprintf("127.0.0.1:%d", p2pPort)
	cfg.P2P.PersistentPeers = strings.Join(peers, ",")
	cfg.P2P.AllowDuplicateIP = true
	cfg.P2P.AddrBookStrict = false
	cfg.P2P.PexReactor = false
	cfg.RPC.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", rpcPort)
	cfg.RPC.PprofListenAddress = ""
	cfg.StateSync.Enable = true
	cfg.StateSync.RPCServers = rpcServers
	cfg.StateSync.TrustHeight = trustHeight
	cfg.StateSync.TrustHash = trusted.BlockID.Hash.String()
	cfg.StateSync.TrustPeriod = 168 * time.Hour
	cfg.StateSync.DiscoveryTime = 5 * time.Second
	if err := cfg.ValidateBasic(); err != nil {
		t.Fatal(err)
	}
	cmtcfg.WriteConfigFile(filepath.Join(home, "config", "config.toml"), cfg)

	// Its application as the platform runs it, then the node.
	startProcess(t, home, "app.log", filepath.Join(binDir, "chaindock-app"),
		"--home", ".", "--addr", fmt.Sprintf("tcp://127.0.0.1:%d", abciPort), "--snapshot-interval", strconv.Itoa(interval))
	if err := framework.Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		return framework.PortListening(abciPort), "the application does not listen"
	}); err != nil {
		t.Fatal(err)
	}
	startProcess(t, home, "node.log", bin, "start", "--home", ".")
	joiner, err := rpchttp.New(fmt.Sprintf("http://127.0.0.1:%d", rpcPort), "/websocket")
	if err != nil {
		t.Fatal(err)
	}

	// It reaches the head of the chain as it is now.
	st, err = rpcs["validator-2"].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	target := st.SyncInfo.LatestBlockHeight
	if err := framework.Poll(ctx, 2*time.Minute, 250*time.Millisecond, func() (bool, string) {
		st, err := joiner.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		return !st.SyncInfo.CatchingUp && st.SyncInfo.LatestBlockHeight >= target,
			fmt.Sprintf("new node at %d (catching up %v), chain at %d", st.SyncInfo.LatestBlockHeight, st.SyncInfo.CatchingUp, target)
	}); err != nil {
		t.Fatal(err)
	}
	// And keeps up with it.
	if err := framework.Poll(ctx, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		mine, err1 := joiner.Status(ctx)
		theirs, err2 := rpcs["validator-2"].Status(ctx)
		if err1 != nil || err2 != nil {
			return false, fmt.Sprint(err1, err2)
		}
		return mine.SyncInfo.LatestBlockHeight >= theirs.SyncInfo.LatestBlockHeight-1,
			fmt.Sprintf("new node at %d, validator-2 at %d", mine.SyncInfo.LatestBlockHeight, theirs.SyncInfo.LatestBlockHeight)
	}); err != nil {
		t.Fatal(err)
	}

	// It started from a snapshot: its block store begins just after a
	// snapshot height, the first block is not in it, and its application
	// was restored rather than fed every block.
	st, err = joiner.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	earliest := st.SyncInfo.EarliestBlockHeight
	if earliest <= 1 || (earliest-1)%interval != 0 {
		t.Fatalf("the new node's blocks start at %d: want the block after a snapshot height (a multiple of %d)", earliest, interval)
	}
	one := int64(1)
	if _, err := joiner.Block(ctx, &one); err == nil {
		t.Fatal("the new node has block 1: it did not state sync")
	}
	appLog, _ := os.ReadFile(filepath.Join(home, "app.log"))
	if m := regexp.MustCompile(`msg="snapshot restored" height=(\d+)`).FindSubmatch(appLog); m == nil || string(m[1]) != strconv.FormatInt(earliest-1, 10) {
		t.Fatalf("the new node's application did not restore the snapshot of height %d: %q", earliest-1, m)
	}
	t.Logf("trusted block %d; the new node's blocks start at %d; chain at %d", trustHeight, earliest, target)

	// Its application's state is the network's: the app hash it reports
	// for its own last block is the one the validators signed in the next
	// header.
	info, err := joiner.ABCIInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := info.Response.LastBlockHeight
	if h < earliest {
		t.Fatalf("the new node's application is at %d, below its first block %d", h, earliest)
	}
	if signed := signedAppHash(t, rpcs["validator-2"], h+1); !bytes.Equal(info.Response.LastBlockAppHash, signed) {
		t.Fatalf("the new node's application has app hash %X at %d; validator-2's header %d says %X", info.Response.LastBlockAppHash, h, h+1, signed)
	}

	// Documents notarised before it joined, and after, are there, each with
	// a proof against the validators' header.
	after := newNotaryLoad(t, chainID, 2)
	after.send(t, c, name, "after the join", 6)
	for _, s := range after.sent {
		last = max(last, s.height)
	}
	if err := framework.Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		info, err := joiner.ABCIInfo(ctx)
		return err == nil && info.Response.LastBlockHeight >= last, fmt.Sprintf("new node's application not yet at %d: %v", last, err)
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range append(before.sent, after.sent...) {
		data, _ := json.Marshal(map[string]string{"hash": s.doc})
		res, err := joiner.ABCIQuery(ctx, apptx.PathNotaryDoc, data)
		if err != nil {
			t.Fatalf("query %s on the new node: %v", s.doc, err)
		}
		var rec apptx.NotaryRecord
		if res.Response.Code != 0 || json.Unmarshal(res.Response.Value, &rec) != nil {
			t.Fatalf("document %s (%s) on the new node: code %d %s", s.doc, s.phase, res.Response.Code, res.Response.Log)
		}
		if rec.Hash != s.doc || rec.Owner != s.owner || !strings.EqualFold(rec.TxHash, s.hash) || rec.Height != s.height {
			t.Fatalf("document %s (%s) on the new node: %+v; notarised by %s in %s at %d", s.doc, s.phase, rec, s.owner, s.hash, s.height)
		}
		res, err = joiner.ABCIQuery(ctx, apptx.PathNotaryProof, data)
		if err != nil || res.Response.Code != 0 {
			t.Fatalf("proof of %s on the new node: %v %+v", s.doc, err, res)
		}
		var p apptx.NotaryProof
		if err := json.Unmarshal(res.Response.Value, &p); err != nil {
			t.Fatal(err)
		}
		if err := apptx.VerifyProof(&p, signedAppHash(t, rpcs["validator-3"], p.Height+1)); err != nil {
			t.Fatalf("the new node's proof of %s against validator-3's header %d: %v", s.doc, p.Height+1, err)
		}
	}
	// A document nobody notarised is not there either.
	data, _ := json.Marshal(map[string]string{"hash": hex.EncodeToString(make([]byte, 32))})
	if res, err := joiner.ABCIQuery(ctx, apptx.PathNotaryDoc, data); err != nil || res.Response.Code != apptx.CodeNotFound {
		t.Fatalf("an unknown document on the new node: %v %+v", err, res)
	}

	if _, err := c.DeleteNetwork(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, name, time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
}
