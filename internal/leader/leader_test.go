package leader

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/internal/store/postgres"
	"github.com/chaindock/chaindock/internal/store/sqlite"
	"github.com/chaindock/chaindock/internal/store/storetest"
)

// flaky is a store connection that can be cut, as a network partition
// would cut it.
type flaky struct {
	Leases
	cut atomic.Bool
}

func (f *flaky) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, int64, error) {
	if f.cut.Load() {
		return false, 0, errors.New("connection cut")
	}
	return f.Leases.AcquireLease(ctx, name, holder, now, ttl)
}

func fast(l Leases, holder string) *Elector {
	return &Elector{Leases: l, Name: "controller", Holder: holder, TTL: 1500 * time.Millisecond, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond}
}

func testElection(t *testing.T, s store.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var running, maxRunning atomic.Int32
	var leaders sync.Map
	body := func(who string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			n := running.Add(1)
			for {
				old := maxRunning.Load()
				if n <= old || maxRunning.CompareAndSwap(old, n) {
					break
				}
			}
			leaders.Store(who, true)
			<-ctx.Done()
			running.Add(-1)
			return nil
		}
	}
	a := &flaky{Leases: s}
	b := &flaky{Leases: s}
	var wg sync.WaitGroup
	wg.Go(func() { _ = fast(a, "a").Run(ctx, body("a")) })
	// b starts once a leads, however long a starved store takes.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := leaders.Load("a"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a never took the free lease")
		}
	}
	wg.Go(func() { _ = fast(b, "b").Run(ctx, body("b")) })
	time.Sleep(time.Second)
	if _, ok := leaders.Load("b"); ok {
		t.Fatal("b ran while a held the lease")
	}
	// Cut a off: it must stop within its renew deadline, and b may take
	// over only after the lease has expired.
	a.cut.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := leaders.Load("b"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never took over from a cut-off a")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if maxRunning.Load() != 1 {
		t.Fatalf("%d servers led at once", maxRunning.Load())
	}
	cancel()
	wg.Wait()
	if running.Load() != 0 {
		t.Fatalf("%d still running after the context ended", running.Load())
	}
}

func TestElectionSQLite(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testElection(t, s)
}

func TestElectionPostgres(t *testing.T) {
	s, err := postgres.Open(t.Context(), storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testElection(t, s)
}

// TestReleaseHandsOver: a server that stops cleanly releases the lease, so
// the next one need not wait for it to expire.
func TestReleaseHandsOver(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	e := fast(s, "a")
	e.TTL = time.Hour
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		_ = e.Run(ctx, func(ctx context.Context) error { close(started); <-ctx.Done(); return nil })
		close(done)
	}()
	<-started
	cancel()
	<-done
	if held, _, err := s.AcquireLease(t.Context(), "controller", "b", time.Now(), time.Minute); err != nil || !held {
		t.Fatalf("after a clean stop the lease is not free: %v %v", held, err)
	}
}
