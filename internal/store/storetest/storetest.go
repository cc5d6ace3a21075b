// Package storetest is the conformance suite every store.Store passes, so
// that each backend is held to the same behaviour.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/store"
)

// Run runs the suite against stores made by open, one fresh store per test.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	t.Run("CreateGetList", func(t *testing.T) { testCreateGetList(t, open(t)) })
	t.Run("CreateConflict", func(t *testing.T) { testCreateConflict(t, open(t)) })
	t.Run("OptimisticConcurrency", func(t *testing.T) { testOptimistic(t, open(t)) })
	t.Run("DeleteTakesOwnedData", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("Events", func(t *testing.T) { testEvents(t, open(t)) })
	t.Run("Ports", func(t *testing.T) { testPorts(t, open(t)) })
	t.Run("Blobs", func(t *testing.T) { testBlobs(t, open(t)) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, open(t)) })
}

func obj(name string) *store.Object {
	return &store.Object{Kind: apis.KindNetwork, Name: name, Spec: []byte(`{"validators":4}`), Labels: map[string]string{"env": "test"}}
}

func testCreateGetList(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, n := range []string{"b", "a", "c"} {
		o, err := s.Create(ctx, obj(n))
		if err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
		if o.ResourceVersion != 1 || o.Generation != 1 || o.UID == "" || o.CreatedAt.IsZero() {
			t.Fatalf("create %s: got rv=%d gen=%d uid=%q created=%v", n, o.ResourceVersion, o.Generation, o.UID, o.CreatedAt)
		}
	}
	got, err := s.Get(ctx, apis.KindNetwork, "a")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Spec) != `{"validators":4}` || got.Labels["env"] != "test" {
		t.Fatalf("get a: spec %s labels %v", got.Spec, got.Labels)
	}
	if _, err := s.Get(ctx, apis.KindNetwork, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: want ErrNotFound, got %v", err)
	}
	list, err := s.List(ctx, apis.KindNetwork)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range list {
		names = append(names, o.Name)
	}
	if fmt.Sprint(names) != "[a b c]" {
		t.Fatalf("list: want [a b c], got %v", names)
	}
	if other, err := s.List(ctx, "Other"); err != nil || len(other) != 0 {
		t.Fatalf("list of another kind: %v %v", other, err)
	}
}

func testCreateConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for range n {
		wg.Go(func() {
			_, err := s.Create(ctx, obj("same"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrAlreadyExists):
				lost++
			default:
				t.Errorf("create: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 || lost != n-1 {
		t.Fatalf("concurrent creates: %d won, %d lost; want exactly one winner", won, lost)
	}
}

func testOptimistic(t *testing.T, s store.Store) {
	ctx := t.Context()
	o, err := s.Create(ctx, obj("x"))
	if err != nil {
		t.Fatal(err)
	}
	stale := *o
	o.Status = []byte(`{"phase":"Running"}`)
	o2, err := s.UpdateStatus(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if o2.ResourceVersion != 2 || o2.Generation != 1 {
		t.Fatalf("status update: rv=%d gen=%d, want 2 and 1", o2.ResourceVersion, o2.Generation)
	}
	stale.Spec = []byte(`{"validators":5}`)
	if _, err := s.Update(ctx, &stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update with stale resourceVersion: want ErrConflict, got %v", err)
	}
	o2.Spec = []byte(`{"validators":5}`)
	o3, err := s.Update(ctx, o2)
	if err != nil {
		t.Fatal(err)
	}
	if o3.Generation != 2 || string(o3.Status) != `{"phase":"Running"}` {
		t.Fatalf("spec update: gen=%d status=%s; want generation 2 and the status kept", o3.Generation, o3.Status)
	}
	o4, err := s.Update(ctx, o3)
	if err != nil {
		t.Fatal(err)
	}
	if o4.Generation != 2 {
		t.Fatalf("update with the same spec bumped generation to %d", o4.Generation)
	}
	missing := obj("missing")
	missing.ResourceVersion = 1
	if _, err := s.UpdateStatus(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing object: want ErrNotFound, got %v", err)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, err := s.Create(ctx, obj("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, obj("b"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []*store.Object{a, b} {
		if err := s.PutBlob(ctx, o.UID, "plan", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := s.AddEvent(ctx, apis.Event{Kind: o.Kind, Name: o.Name, UID: o.UID, Type: apis.EventNormal, Reason: "Created", Message: "m"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AllocatePorts(ctx, o.UID, "node", 2, store.PortRange{Low: 40000, High: 40010}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, a.Kind, a.Name, a.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, a.Kind, a.Name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := s.GetBlob(ctx, a.UID, "plan"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("blob after delete: %v", err)
	}
	if ev, _ := s.Events(ctx, store.EventFilter{UID: a.UID}); len(ev) != 0 {
		t.Fatalf("events after delete: %v", ev)
	}
	if p, _ := s.Ports(ctx, a.UID); len(p) != 0 {
		t.Fatalf("ports after delete: %v", p)
	}
	// b's data is untouched.
	if _, err := s.GetBlob(ctx, b.UID, "plan"); err != nil {
		t.Fatalf("blob of another object: %v", err)
	}
	if p, _ := s.Ports(ctx, b.UID); len(p["node"]) != 2 {
		t.Fatalf("ports of another object: %v", p)
	}
	// Deleting again, or with the wrong uid, is harmless.
	if err := s.Delete(ctx, a.Kind, a.Name, a.UID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, b.Kind, b.Name, "other-uid"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, b.Kind, b.Name); err != nil {
		t.Fatalf("delete with a stale uid removed the new object: %v", err)
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 5 {
		if err := s.AddEvent(ctx, apis.Event{Kind: "Network", Name: "n", UID: "u", Type: apis.EventNormal, Reason: fmt.Sprint("R", i), Message: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddEvent(ctx, apis.Event{Kind: "Network", Name: "other", UID: "v", Type: apis.EventWarning, Reason: "X", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Events(ctx, store.EventFilter{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 || all[0].Reason != "R0" || all[4].Reason != "R4" {
		t.Fatalf("events of n: %+v", all)
	}
	after, err := s.Events(ctx, store.EventFilter{Name: "n", AfterID: all[2].ID, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || after[0].Reason != "R3" {
		t.Fatalf("events after %d limit 1: %+v", all[2].ID, after)
	}
}

func testPorts(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := store.PortRange{Low: 41000, High: 41009}
	a, err := s.AllocatePorts(ctx, "u1", "n0", 3, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.AllocatePorts(ctx, "u1", "n0", 3, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a) != fmt.Sprint(again) {
		t.Fatalf("allocation is not idempotent: %v then %v", a, again)
	}
	// A port the host says is busy is skipped.
	b, err := s.AllocatePorts(ctx, "u2", "n0", 3, r, func(p int) bool { return p != 41004 })
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range append(append([]int{}, a...), b...) {
		if seen[p] || p == 41004 || p < r.Low || p > r.High {
			t.Fatalf("bad allocation: %v and %v", a, b)
		}
		seen[p] = true
	}
	if _, err := s.AllocatePorts(ctx, "u3", "n0", 5, r, nil); !errors.Is(err, store.ErrNoPorts) {
		t.Fatalf("exhausted range: want ErrNoPorts, got %v", err)
	}
	if _, err := s.AllocatePorts(ctx, "u1", "n0", 2, r, nil); err == nil {
		t.Fatal("asking for a different count under the same key succeeded")
	}
	held, err := s.Ports(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(held["n0"]) != fmt.Sprint(a) {
		t.Fatalf("Ports: %v, want %v", held, a)
	}
	// Released, a node's ports go to the next asker; other keys' stay.
	if _, err := s.AllocatePorts(ctx, "u1", "n1", 1, r, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleasePorts(ctx, "u1", "n0"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleasePorts(ctx, "u1", "n0"); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
	held, _ = s.Ports(ctx, "u1")
	if len(held["n0"]) != 0 || len(held["n1"]) != 1 {
		t.Fatalf("after release: %v, want only n1's port", held)
	}
	if _, err := s.AllocatePorts(ctx, "u3", "n0", 3, r, nil); err != nil {
		t.Fatalf("the released ports were not given again: %v", err)
	}
}

func testBlobs(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.PutBlob(ctx, "u1", "plan", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, "u1", "plan", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, "u2", "plan", []byte{0, 1, 2, 255}); err != nil {
		t.Fatal(err)
	}
	if b, err := s.GetBlob(ctx, "u1", "plan"); err != nil || string(b) != "two" {
		t.Fatalf("get after overwrite: %q %v", b, err)
	}
	if b, err := s.GetBlob(ctx, "u2", "plan"); err != nil || !bytes.Equal(b, []byte{0, 1, 2, 255}) {
		t.Fatalf("binary blob: %v %v", b, err)
	}
	refs, err := s.ListBlobs(ctx)
	if err != nil || fmt.Sprint(refs) != "[{u1 plan} {u2 plan}]" {
		t.Fatalf("list blobs: %v %v", refs, err)
	}
	ok, err := s.ReplaceBlob(ctx, "u1", "plan", []byte("one"), []byte("three"))
	if err != nil || ok {
		t.Fatalf("replace with a stale old value: %v %v", ok, err)
	}
	ok, err = s.ReplaceBlob(ctx, "u1", "plan", []byte("two"), []byte("three"))
	if err != nil || !ok {
		t.Fatalf("replace: %v %v", ok, err)
	}
	if b, _ := s.GetBlob(ctx, "u1", "plan"); string(b) != "three" {
		t.Fatalf("after replace: %q", b)
	}
}

func testLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now()
	ttl := 10 * time.Second
	held, term, err := s.AcquireLease(ctx, "controller", "a", now, ttl)
	if err != nil || !held || term != 1 {
		t.Fatalf("a takes a free lease: %v %d %v", held, term, err)
	}
	if held, _, _ := s.AcquireLease(ctx, "controller", "b", now.Add(time.Second), ttl); held {
		t.Fatal("b took a lease a holds")
	}
	if held, term, _ := s.AcquireLease(ctx, "controller", "a", now.Add(5*time.Second), ttl); !held || term != 1 {
		t.Fatalf("a renews: %v %d", held, term)
	}
	// a's renewal runs to now+15s: b must wait until then.
	if held, _, _ := s.AcquireLease(ctx, "controller", "b", now.Add(12*time.Second), ttl); held {
		t.Fatal("b took a renewed lease before it expired")
	}
	held, term, _ = s.AcquireLease(ctx, "controller", "b", now.Add(16*time.Second), ttl)
	if !held || term != 2 {
		t.Fatalf("b takes the expired lease: %v term %d, want term 2", held, term)
	}
	if held, _, _ := s.AcquireLease(ctx, "controller", "a", now.Add(17*time.Second), ttl); held {
		t.Fatal("a renewed a lease b holds")
	}
	if err := s.ReleaseLease(ctx, "controller", "a"); err != nil {
		t.Fatal(err)
	}
	if held, _, _ := s.AcquireLease(ctx, "controller", "c", now.Add(18*time.Second), ttl); held {
		t.Fatal("a released a lease it does not hold")
	}
	if err := s.ReleaseLease(ctx, "controller", "b"); err != nil {
		t.Fatal(err)
	}
	if held, term, _ := s.AcquireLease(ctx, "controller", "c", now.Add(18*time.Second), ttl); !held || term != 3 {
		t.Fatalf("c takes a released lease: %v %d", held, term)
	}
	// Concurrent candidates: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for i := range 8 {
		wg.Go(func() {
			held, _, err := s.AcquireLease(ctx, "other", fmt.Sprint("cand", i), now, ttl)
			if err != nil {
				t.Error(err)
			}
			if held {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if winners != 1 {
		t.Fatalf("%d candidates won one lease", winners)
	}
}
