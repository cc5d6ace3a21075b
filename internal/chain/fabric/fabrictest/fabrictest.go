// Package fabrictest runs planned Fabric nodes as processes for the
// tests that need real peers and orderers (the user's binaries).
package fabrictest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

// RunNode writes a planned node's files into dir/home and runs program
// there with the node's arguments and environment, as the process
// runtime does, until the test ends; its output goes to dir/node.log,
// whose end the test shows when it fails.
func RunNode(t *testing.T, program, dir string, nd chain.PlannedNode) {
	t.Helper()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range nd.Spec.Files {
		p := filepath.Join(home, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o600
		}
		if err := os.WriteFile(p, f.Data, mode); err != nil {
			t.Fatal(err)
		}
	}
	logPath := filepath.Join(dir, "node.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(program, nd.Spec.Args...)
	cmd.Dir = home
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()
	for k, v := range nd.Spec.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The whole group: a peer's builder steps are its children.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				if len(b) > 4096 {
					b = b[len(b)-4096:]
				}
				t.Logf("%s log (last 4 KiB):\n%s", nd.Name, b)
			}
		}
	})
}

// WaitUntil polls cond every 200 ms until it holds, or fails the test
// after 30 s with cond's last error.
func WaitUntil(ctx context.Context, t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		ok, err := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last error: %v)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// JoinAll joins every node of plan, all running, to the channel as the
// controller does: Bootstrap for each Joining node until it is a member,
// orderers first, and a member marked so in the plan and in n's status,
// which the driver reads (a peer sets its organisation's anchor peers
// once an orderer is a member).
func JoinAll(ctx context.Context, t *testing.T, b chain.Bootstrapper, n *apis.Network, plan *chain.Plan) {
	t.Helper()
	status := func() {
		n.Status.Nodes = nil
		for _, pn := range plan.Nodes {
			n.Status.Nodes = append(n.Status.Nodes, apis.NodeStatus{Name: pn.Name, Role: pn.Role, Organization: pn.Organization,
				Phase: apis.NodeRunning, Joining: pn.Joining})
		}
	}
	status()
	for _, orderers := range []bool{true, false} {
		for i, pn := range plan.Nodes {
			if !pn.Joining || (pn.Role == apis.RoleValidator) != orderers {
				continue
			}
			WaitUntil(ctx, t, pn.Name+" to join the channel", func() (bool, error) { return b.Bootstrap(ctx, n, plan, pn) })
			plan.Nodes[i].Joining = false
			status()
		}
	}
}

// FreePort is a port on 127.0.0.1 that nothing listens on now.
func FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
