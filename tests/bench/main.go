// Command bench measures ChainDock against real CometBFT nodes and prints one
// JSON object per figure: deploy time of a 4-validator network, heal time of
// a kill -9'd validator, re-adoption time after kill -9 of the server, delete
// time, and the server's memory with 10 idle networks (nodes); the API's
// latency on SQLite and PostgreSQL (api); and the application layer (app):
// the gateway against submission straight to a node, notarisations
// committed per second, and the explorer's lookups among a million
// transactions; and Ethereum (ethereum): deploy time of a 3-sealer
// network, and token transfers through the gateway against straight to a
// node's JSON-RPC; and Kubernetes (kubernetes): registering a cluster,
// deploying a network onto it and deleting it; and scaling a running
// CometBFT network (scale).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

const runs = 3

type figure struct {
	Metric  string    `json:"metric"`
	Store   string    `json:"store,omitempty"`
	Value   float64   `json:"value"`
	Unit    string    `json:"unit"`
	Samples []float64 `json:"samples,omitempty"`
	Note    string    `json:"note,omitempty"`
}

func emit(f figure) {
	b, _ := json.Marshal(f)
	fmt.Println(string(b))
}

// benchServer starts a server on a new data directory; stop stops it and
// removes what it left behind, node processes and files.
func benchServer(ctx context.Context, binDir, name string, args ...string) (srv *framework.Server, dataDir string, stop func(), err error) {
	tmp, err := os.MkdirTemp("", "chaindock-bench-"+name)
	if err != nil {
		return nil, "", nil, err
	}
	dataDir = filepath.Join(tmp, "data")
	cleanup := func() {
		framework.KillAllUnder(dataDir)
		_ = os.RemoveAll(tmp)
	}
	srv, err = framework.StartServer(ctx, binDir, dataDir, args...)
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return srv, dataDir, func() { srv.Stop(); cleanup() }, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func round(v float64) float64 { return float64(int(v*1000+0.5)) / 1000 }

func main() {
	only := ""
	if len(os.Args) > 1 {
		only = os.Args[1]
	}
	var err error
	switch only {
	case "", "all":
		err = run()
		if err == nil {
			err = benchAPIStores(context.Background(), mustBinDir())
		}
		if err == nil {
			err = benchApp(context.Background(), mustBinDir())
		}
		if err == nil {
			err = benchEthereum(context.Background(), mustBinDir())
		}
		if err == nil {
			err = benchScale(context.Background(), mustBinDir())
		}
		if err == nil {
			err = benchKubernetes(context.Background(), mustBinDir())
		}
		if err == nil {
			err = benchFabric(context.Background(), mustBinDir())
		}
	case "nodes":
		err = run()
	case "api":
		err = benchAPIStores(context.Background(), mustBinDir())
	case "app":
		err = benchApp(context.Background(), mustBinDir())
	case "explorer":
		err = benchExplorerStores(context.Background(), mustBinDir())
	case "ethereum":
		err = benchEthereum(context.Background(), mustBinDir())
	case "scale":
		err = benchScale(context.Background(), mustBinDir())
	case "kubernetes":
		err = benchKubernetes(context.Background(), mustBinDir())
	case "fabric":
		err = benchFabric(context.Background(), mustBinDir())
	default:
		err = fmt.Errorf("usage: bench [all|nodes|api|app|explorer|ethereum|scale|kubernetes|fabric]")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func mustBinDir() string {
	d, err := framework.BinDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	return d
}

func run() error {
	ctx := context.Background()
	binDir, err := framework.BinDir()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "chaindock-bench")
	if err != nil {
		return err
	}
	dataDir := filepath.Join(tmp, "data")
	defer os.RemoveAll(tmp)
	defer framework.KillAllUnder(dataDir)
	args := []string{"--port-range", "33000-33999"}
	srv, err := framework.StartServer(ctx, binDir, dataDir, args...)
	if err != nil {
		return err
	}
	defer func() { srv.Kill() }()
	c := srv.Client

	// Deploy: apply to every node at height >= 2, as the API reports it.
	var deploys, heals, restarts, deletes []float64
	for i := range runs {
		name := fmt.Sprintf("bench-%d", i)
		start := time.Now()
		if _, err := c.CreateNetwork(ctx, framework.CometBFTSpec(name, 4, "1s")); err != nil {
			return err
		}
		if err := waitHeights(ctx, c, name, 2, 2*time.Minute, 20*time.Millisecond); err != nil {
			return fmt.Errorf("deploy %s: %w", name, err)
		}
		deploys = append(deploys, round(time.Since(start).Seconds()))

		// Heal: kill -9 a validator; back Running, restarted and in sync.
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			return err
		}
		victim, _ := framework.NodeByName(n, "validator-1")
		start = time.Now()
		if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
			return err
		}
		err = framework.Poll(ctx, 2*time.Minute, 20*time.Millisecond, func() (bool, string) {
			n, err := c.GetNetwork(ctx, name)
			if err != nil {
				return false, err.Error()
			}
			s, _ := framework.NodeByName(n, "validator-1")
			var top int64
			for _, o := range n.Status.Nodes {
				top = max(top, o.Height)
			}
			return s.Restarts == victim.Restarts+1 && s.Phase == apis.NodeRunning && s.Height > victim.Height && s.Height >= top-1, framework.Describe(n)
		})
		if err != nil {
			return fmt.Errorf("heal %s: %w", name, err)
		}
		heals = append(heals, round(time.Since(start).Seconds()))

		// Server restart: kill -9 the server, start another, until it has
		// probed every node afresh and reports them Running, same PIDs.
		before, err := c.GetNetwork(ctx, name)
		if err != nil {
			return err
		}
		srv.Kill()
		start = time.Now()
		srv, err = framework.StartServer(ctx, binDir, dataDir, args...)
		if err != nil {
			return err
		}
		c = srv.Client
		err = framework.Poll(ctx, 2*time.Minute, 20*time.Millisecond, func() (bool, string) {
			n, err := c.GetNetwork(ctx, name)
			if err != nil {
				return false, err.Error()
			}
			if n.Status.LastProbeTime == nil || !n.Status.LastProbeTime.After(start) || n.Status.Phase != apis.PhaseRunning {
				return false, framework.Describe(n)
			}
			for i, s := range n.Status.Nodes {
				if s.PID != before.Status.Nodes[i].PID || s.Phase != apis.NodeRunning {
					return false, framework.Describe(n)
				}
			}
			return true, ""
		})
		if err != nil {
			return fmt.Errorf("server restart: %w", err)
		}
		restarts = append(restarts, round(time.Since(start).Seconds()))

		start = time.Now()
		if _, err := c.DeleteNetwork(ctx, name); err != nil {
			return err
		}
		if err := framework.WaitGone(ctx, c, name, time.Minute); err != nil {
			return err
		}
		deletes = append(deletes, round(time.Since(start).Seconds()))
	}
	emit(figure{Metric: "deploy_4v_s", Value: median(deploys), Unit: "s", Samples: deploys,
		Note: "apply until the API reports all 4 validators at height >= 2 (timeoutCommit 1s); a bare script takes 3.3-3.5s"})
	emit(figure{Metric: "heal_s", Value: median(heals), Unit: "s", Samples: heals,
		Note: "kill -9 of one validator until it is restarted, Running and within one block of the others"})
	emit(figure{Metric: "server_restart_s", Value: median(restarts), Unit: "s", Samples: restarts,
		Note: "kill -9 of the server until a new one has probed every node afresh and reports them Running with the same PIDs (includes server start-up)"})
	emit(figure{Metric: "delete_4v_s", Value: median(deletes), Unit: "s", Samples: deletes,
		Note: "delete until GET answers 404 (nodes stopped, files and ports released)"})

	// Memory with 10 idle networks of 4 validators each.
	const idle = 10
	for i := range idle {
		spec := fmt.Appendf(nil, `apiVersion: chaindock/v1
kind: Network
metadata: {name: idle-%d}
spec: {chain: cometbft, runtime: process, validators: 4, consensus: {timeoutCommit: 1s, createEmptyBlocks: false}}
`, i)
		if _, err := c.CreateNetwork(ctx, spec); err != nil {
			return err
		}
	}
	for i := range idle {
		if err := waitHeights(ctx, c, fmt.Sprintf("idle-%d", i), 1, 3*time.Minute, 200*time.Millisecond); err != nil {
			return err
		}
	}
	time.Sleep(10 * time.Second) // let the server settle into its probe rhythm
	rss, err := statusMB(srv.PID(), "VmRSS:")
	if err != nil {
		return err
	}
	emit(figure{Metric: "server_rss_10_idle_networks_mb", Value: round(rss), Unit: "MiB",
		Note: "resident memory of the chaindock server with 10 Running networks of 4 validators (40 nodes), probed every 2s"})
	var shims, shimsAnon float64
	for _, pid := range framework.ProcessesUnder(filepath.Join(dataDir, "runtime")) {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "node-shim") {
			m, _ := statusMB(pid, "VmRSS:")
			a, _ := statusMB(pid, "RssAnon:")
			shims += m
			shimsAnon += a
		}
	}
	emit(figure{Metric: "node_shim_private_mb", Value: round(shimsAnon / (4 * idle)), Unit: "MiB",
		Note: fmt.Sprintf("mean private (anonymous) memory of the per-node supervisor; its RSS is %.1f MiB, the rest being the shim binary's pages, shared by every shim", shims/(4*idle))})
	for i := range idle {
		if _, err := c.DeleteNetwork(ctx, fmt.Sprintf("idle-%d", i)); err != nil {
			return err
		}
	}
	for i := range idle {
		if err := framework.WaitGone(ctx, c, fmt.Sprintf("idle-%d", i), 2*time.Minute); err != nil {
			return err
		}
	}
	if left := framework.ProcessesUnder(filepath.Join(dataDir, "runtime")); len(left) > 0 {
		return fmt.Errorf("processes left after deleting every network: %v", left)
	}
	return nil
}

func waitHeights(ctx context.Context, c *client.Client, name string, h int64, timeout, every time.Duration) error {
	return framework.Poll(ctx, timeout, every, func() (bool, string) {
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		if n.Status.Phase == apis.PhaseFailed {
			return false, "failed: " + n.Status.Message
		}
		return len(n.Status.Nodes) == len(n.Spec.Nodes()) && framework.MinHeight(n) >= h, framework.Describe(n)
	})
}

func statusMB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				return 0, err
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, errors.New("no " + field + " in /proc/PID/status")
}
