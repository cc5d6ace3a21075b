package sqlite

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/internal/store/sqlstore"
	"github.com/chaindock/chaindock/internal/store/storetest"
)

func open(t *testing.T) store.Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "chaindock.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
	storetest.RunTenancy(t, open)
	storetest.RunExplorer(t, open)
	storetest.RunContracts(t, open)
}

func TestAuditIsAppendOnly(t *testing.T) {
	s := open(t).(*sqlstore.Store)
	storetest.AuditIsAppendOnly(t, s, s.DB())
}

func TestReopenKeepsDataAndSkipsAppliedMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chaindock.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(t.Context(), &store.Object{Kind: apis.KindNetwork, Name: "kept", Spec: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.Get(t.Context(), apis.KindNetwork, "kept"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

// TestKilledWriterLosesNothing kills a process that is writing to the store
// and checks that every write it acknowledged survived and the file is whole.
func TestKilledWriterLosesNothing(t *testing.T) {
	if os.Getenv("CHAINDOCK_STORE_WRITER") != "" {
		runWriter(os.Getenv("CHAINDOCK_STORE_WRITER"))
		return
	}
	path := filepath.Join(t.TempDir(), "chaindock.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestKilledWriterLosesNothing$")
	cmd.Env = append(os.Environ(), "CHAINDOCK_STORE_WRITER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Let it acknowledge some writes, then kill it mid-stream.
	buf := make([]byte, 0, 4096)
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(string(buf), "\n") < 50 && time.Now().Before(deadline) {
		chunk := make([]byte, 512)
		n, err := out.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	rest := make([]byte, 1<<16)
	for {
		n, err := out.Read(rest)
		buf = append(buf, rest[:n]...)
		if err != nil {
			break
		}
	}
	_ = cmd.Wait()

	acked := strings.Fields(string(buf))
	if len(acked) < 50 {
		t.Fatalf("writer acknowledged only %d writes before it was killed", len(acked))
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	for _, name := range acked {
		if _, err := s.Get(t.Context(), apis.KindNetwork, name); err != nil {
			t.Fatalf("acknowledged write %s lost: %v", name, err)
		}
		if _, err := s.GetBlob(t.Context(), name, "plan"); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	var check string
	if err := s.DB().QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity check after kill: %q %v", check, err)
	}
}

func runWriter(path string) {
	s, err := Open(t0(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		name := "n" + strconv.Itoa(i)
		if _, err := s.Create(t0(), &store.Object{Kind: apis.KindNetwork, Name: name, UID: name, Spec: []byte("{}")}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(name) // acknowledged only after the commit returned
	}
}
