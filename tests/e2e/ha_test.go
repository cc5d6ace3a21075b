package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/store/storetest"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestTwoServersOnePostgres: two servers share a PostgreSQL store; both
// serve the API, one runs the controller.
func TestTwoServersOnePostgres(t *testing.T) {
	binDir, dataDir := setup(t)
	dsn := storetest.PostgresDSN(t)
	ctx := t.Context()
	args := []string{"--store-dsn", dsn, "--port-range", "31700-31799", "--probe-interval", "500ms"}
	a := startServer(t, binDir, dataDir, args...)
	defer a.Stop()
	// Let a take the lease first.
	if err := framework.Poll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		b, _ := os.ReadFile(a.LogPath())
		return strings.Contains(string(b), "holding the lease"), "a never took the controller lease"
	}); err != nil {
		t.Fatal(err)
	}
	bDir := filepath.Join(t.TempDir(), "b")
	t.Cleanup(func() { framework.KillAllUnder(bDir) })
	b := startServer(t, binDir, bDir, args...)
	defer b.Stop()

	// Created through b, deployed by a, seen Running through both.
	if _, err := b.Client.CreateNetwork(ctx, framework.CometBFTSpec("ha", 2, "300ms")); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.AllAtLeast(ctx, b.Client, "ha", 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.AllAtLeast(ctx, a.Client, "ha", 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := len(framework.ProcessesUnder(filepath.Join(dataDir, "runtime"))); n == 0 {
		t.Fatal("the leader runs no node")
	}
	if n := len(framework.ProcessesUnder(filepath.Join(bDir, "runtime"))); n != 0 {
		t.Fatalf("the follower runs %d node processes", n)
	}
	logB, _ := os.ReadFile(b.LogPath())
	if strings.Contains(string(logB), "holding the lease") {
		t.Fatal("the follower took the lease while the leader held it")
	}
	// Deleted through b, removed by a.
	if _, err := b.Client.DeleteNetwork(ctx, "ha"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, a.Client, "ha", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := framework.Poll(ctx, 10*time.Second, 100*time.Millisecond, func() (bool, string) {
		return len(framework.ProcessesUnder(filepath.Join(dataDir, "runtime"))) == 0, "node processes left"
	}); err != nil {
		t.Fatal(err)
	}
	// A clean stop hands the lease over at once.
	a.Stop()
	if err := framework.Poll(ctx, 10*time.Second, 100*time.Millisecond, func() (bool, string) {
		b, _ := os.ReadFile(b.LogPath())
		return strings.Contains(string(b), "holding the lease"), "b did not take the released lease"
	}); err != nil {
		t.Fatal(err)
	}
}
