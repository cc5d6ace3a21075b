package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/tests/framework"
)

type cli struct {
	t       *testing.T
	bin     string
	dataDir string
	env     []string
}

func (c cli) run(stdin string, args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--data-dir", c.dataDir}, args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func (c cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run("", args...)
	if err != nil {
		c.t.Fatalf("chaindock %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (c cli) fails(wantInStderr string, args ...string) {
	c.t.Helper()
	out, errOut, err := c.run("", args...)
	if err == nil {
		c.t.Fatalf("chaindock %s succeeded; want an error saying %q\n%s", strings.Join(args, " "), wantInStderr, out)
	}
	if !strings.Contains(errOut, wantInStderr) {
		c.t.Fatalf("chaindock %s: stderr does not say %q:\n%s", strings.Join(args, " "), wantInStderr, errOut)
	}
}

func writeSpec(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCLI drives every client command as a user would.
func TestCLI(t *testing.T) {
	binDir, dataDir := setup(t)
	c := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}

	// No server yet: the error says how to reach one.
	c.fails("no server address", "get", "networks")
	if v := c.ok("version"); !strings.Contains(v, "cometbft v0.38.26") {
		t.Fatalf("version: %q", v)
	}

	srv := startServer(t, binDir, dataDir, "--port-range", "31200-31399", "--probe-interval", "500ms")
	fi, err := os.Stat(filepath.Join(dataDir, "admin.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v mode %v", err, fi.Mode())
	}

	spec := writeSpec(t, string(framework.CometBFTSpec("cli", 4, "300ms")))
	out := c.ok("apply", "-f", spec, "--wait")
	for _, step := range []string{"network/cli created", "Deploying", "PortsAllocated", "Planned", "NodeStarted", "[validator-3]", "Running", "network/cli is Running"} {
		if !strings.Contains(out, step) {
			t.Errorf("apply --wait does not show %q:\n%s", step, out)
		}
	}
	if out := c.ok("apply", "-f", spec); !strings.Contains(out, "network/cli unchanged") {
		t.Errorf("second apply: %q", out)
	}
	changed := writeSpec(t, string(framework.CometBFTSpec("cli", 5, "300ms")))
	c.fails("already exists with a different spec", "apply", "-f", changed)

	table := c.ok("get", "networks")
	if !strings.Contains(table, "NAME") || !strings.Contains(table, "cli ") || !strings.Contains(table, "Running") {
		t.Errorf("get networks:\n%s", table)
	}
	// The newest event before the command is among the last ten it shows.
	evs, err := srv.Client.NetworkEvents(t.Context(), "cli", 0)
	if err != nil || len(evs.Items) == 0 {
		t.Fatalf("events: %v", err)
	}
	newest := evs.Items[len(evs.Items)-1].Reason
	detail := c.ok("get", "network", "cli")
	for _, want := range []string{"Phase:    Running", "validator-0", "http://127.0.0.1:", "tcp://", "Events:", newest} {
		if !strings.Contains(detail, want) {
			t.Errorf("get network does not show %q:\n%s", want, detail)
		}
	}
	var n apis.Network
	if err := json.Unmarshal([]byte(c.ok("get", "network", "cli", "-o", "json")), &n); err != nil {
		t.Fatal(err)
	}
	if n.Status.Phase != apis.PhaseRunning || len(n.Status.Nodes) != 4 || n.Status.Nodes[0].PID == 0 {
		t.Fatalf("-o json: %s", framework.Describe(&n))
	}
	if y := c.ok("get", "network", "cli", "-o", "yaml"); !strings.Contains(y, "phase: Running") || !strings.Contains(y, "apiVersion: chaindock/v1") {
		t.Errorf("-o yaml:\n%s", y)
	}
	c.fails("--output must be table, json or yaml", "get", "networks", "-o", "xml")

	// The server can also be named by environment.
	tok, _ := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	envCLI := cli{t: t, bin: c.bin, dataDir: t.TempDir(), env: []string{"CHAINDOCK_SERVER=" + srv.Addr, "CHAINDOCK_TOKEN=" + strings.TrimSpace(string(tok))}}
	if out := envCLI.ok("get", "networks"); !strings.Contains(out, "cli ") {
		t.Errorf("get networks through the environment: %q", out)
	}
	badTok := cli{t: t, bin: c.bin, dataDir: t.TempDir(), env: []string{"CHAINDOCK_SERVER=" + srv.Addr, "CHAINDOCK_TOKEN=wrong"}}
	badTok.fails("HTTP 401", "get", "networks")

	// Logs: the last lines, and following new ones.
	logs := c.ok("logs", "cli/validator-0", "--tail", "5")
	if lines := strings.Split(strings.TrimSpace(logs), "\n"); len(lines) != 5 || !strings.Contains(logs, "module=") {
		t.Errorf("logs --tail 5:\n%s", logs)
	}
	// Followed until the last line and two new ones came, not for a
	// fixed time: a starved machine may take seconds to start the command.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	follow := exec.CommandContext(ctx, c.bin, "--data-dir", dataDir, "logs", "network/cli/validator-1", "-f", "--tail", "1")
	pipe, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	var fo strings.Builder
	sc := bufio.NewScanner(pipe)
	sc.Buffer(nil, 1<<20)
	for lines := 0; lines < 3 && sc.Scan(); lines++ {
		fo.WriteString(sc.Text() + "\n")
	}
	cancel()
	_ = follow.Wait()
	if strings.Count(fo.String(), "\n") < 3 {
		t.Errorf("logs -f streamed only:\n%s", fo.String())
	}
	c.fails("NETWORK/NODE", "logs", "cli")
	c.fails("has no node", "logs", "cli/validator-9")

	// Bad input through the CLI names the field; nothing is created.
	bad := writeSpec(t, "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: bad}\nspec: {chain: cometbft, runtime: process, validators: 0, extra: 1}\n")
	c.fails("spec.validators: must be from 1 to 100, not 0", "apply", "-f", bad)
	c.fails("spec.extra: unknown field", "apply", "-f", bad)
	dup := writeSpec(t, string(framework.CometBFTSpec("twice", 1, "1s"))+"---\n"+string(framework.CometBFTSpec("twice", 2, "1s")))
	c.fails("both define network \"twice\"", "apply", "-f", dup)
	c.fails("not found", "get", "network", "twice")
	c.fails("not found", "get", "network", "bad")
	// Standard input works too.
	if out, errOut, err := c.run(string(framework.CometBFTSpec("stdin", 1, "1s")), "apply", "-f", "-"); err != nil || !strings.Contains(out, "network/stdin created") {
		t.Fatalf("apply -f -: %v %s %s", err, out, errOut)
	}

	out = c.ok("delete", "network", "cli", "--wait")
	// The controller may remove the network before the first poll, so the
	// events in between are not always printed; the start and end are.
	if !strings.HasPrefix(out, "network/cli deleting\n") || !strings.HasSuffix(out, "network/cli deleted\n") {
		t.Errorf("delete --wait:\n%s", out)
	}
	c.ok("delete", "network", "stdin", "--wait")
	c.fails("not found", "get", "network", "cli")
	c.fails("not found", "delete", "network", "cli")
	srv.Stop()
}

// TestDeployFailureIsExplained: without the node program the deploy fails
// with a reason, and --wait says it and exits non-zero.
func TestDeployFailureIsExplained(t *testing.T) {
	binDir, dataDir := setup(t)
	emptyBin := t.TempDir()
	srv, err := framework.StartServerEnv(t.Context(), binDir, dataDir, []string{"PATH=/usr/bin:/bin"}, "--bin-dir", emptyBin, "--port-range", "31400-31499")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	spec := writeSpec(t, string(framework.CometBFTSpec("nobin", 1, "1s")))
	out, errOut, err := c.run("", "apply", "-f", spec, "--wait", "--timeout", "1m")
	if err == nil {
		t.Fatalf("apply --wait succeeded without a cometbft binary:\n%s", out)
	}
	if !strings.Contains(errOut, "network nobin failed") || !strings.Contains(errOut, `program "cometbft" is not in`) {
		t.Fatalf("the failure does not name the missing program:\n%s\n%s", out, errOut)
	}
	if !strings.Contains(out, "StartFailed") {
		t.Errorf("the failed step is not in the events:\n%s", out)
	}
	// Deleting a failed network works and leaves nothing.
	c.ok("delete", "network", "nobin", "--wait")
	if entries, _ := os.ReadDir(filepath.Join(dataDir, "runtime", "process")); len(entries) != 0 {
		t.Fatalf("node directories left: %v", entries)
	}
}
