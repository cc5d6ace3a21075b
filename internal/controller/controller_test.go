package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/runtime/process"
	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/internal/store/sqlite"
)

// The test binary plays the node shim and, as "test-node", a node: it
// serves its height over HTTP, or crashes at once.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case process.ShimCommand:
			os.Exit(process.ShimMain(os.Args[2:]))
		case "test-node":
			os.Exit(testNode(os.Args[2], os.Args[3]))
		}
	}
	chain.Register("testchain", testDriver{})
	os.Exit(m.Run())
}

func testNode(mode, port string) int {
	if mode == "crash" {
		fmt.Println("crashing on purpose")
		return 3
	}
	start := time.Now()
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"height": %d}`, 1+int(time.Since(start)/(100*time.Millisecond)))
	}))
	return 0
}

type testDriver struct{}

func (testDriver) Validate(*apis.NetworkSpec) apis.ErrorList    { return nil }
func (testDriver) PortNames(*apis.NetworkSpec, string) []string { return []string{"rpc"} }

func (testDriver) Plan(_ context.Context, req chain.PlanRequest) (*chain.Plan, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	mode := req.Network.Metadata.Labels["mode"]
	p := &chain.Plan{ChainID: "test-" + req.Network.Metadata.Name}
	for _, n := range req.Network.Spec.Nodes() {
		port := req.Ports[n.Name]["rpc"]
		p.Nodes = append(p.Nodes, chain.PlannedNode{
			Name: n.Name, Role: n.Role,
			Spec:      runtime.NodeSpec{Program: exe, Args: []string{"test-node", mode, strconv.Itoa(port)}, Ports: map[string]int{"rpc": port}},
			Endpoints: map[string]string{"rpc": fmt.Sprintf("http://%s:%d", req.Host, port)},
		})
	}
	return p, nil
}

func (testDriver) Probe(ctx context.Context, node chain.PlannedNode) (chain.NodeInfo, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", node.Endpoints["rpc"], nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return chain.NodeInfo{}, err
	}
	defer resp.Body.Close()
	var v struct{ Height int64 }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return chain.NodeInfo{}, err
	}
	return chain.NodeInfo{Height: v.Height, LastBlockTime: time.Now()}, nil
}

var portBase atomic.Int32

type env struct {
	store store.Store
	rt    *process.Runtime
	ctrl  *Controller
	dir   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "chaindock.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rt, err := process.New(runtime.Config{DataDir: filepath.Join(dir, "runtime")})
	if err != nil {
		t.Fatal(err)
	}
	rt.StopGrace = 2 * time.Second
	t.Cleanup(func() {
		list, _ := rt.List(context.WithoutCancel(t.Context()))
		for _, s := range list {
			_ = rt.Remove(context.WithoutCancel(t.Context()), s.ID)
		}
	})
	// Below the kernel's ephemeral ports (32768 up), which any outgoing
	// connection may take between the allocation and the node's listen.
	lo := 24000 + int(portBase.Add(1))*100
	e := &env{store: st, rt: rt, dir: dir}
	e.ctrl = New(Options{
		Store: st, Runtimes: map[string]runtime.Runtime{"process": rt},
		Ports: store.PortRange{Low: lo, High: lo + 99}, ProbeInterval: 200 * time.Millisecond, ResyncInterval: time.Second,
	})
	return e
}

func (e *env) create(t *testing.T, name, mode string, validators int) *apis.Network {
	t.Helper()
	n := &apis.Network{APIVersion: apis.APIVersion, Kind: apis.KindNetwork,
		Metadata: apis.ObjectMeta{Name: name, Labels: map[string]string{"mode": mode}},
		Spec:     apis.NetworkSpec{Chain: "testchain", Runtime: "process", Validators: validators}}
	apis.SetDefaults(n)
	o, err := store.NetworkToObject(n)
	if err != nil {
		t.Fatal(err)
	}
	created, err := e.store.Create(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	n, err = store.ObjectToNetwork(created)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) get(t *testing.T, name string) *apis.Network {
	t.Helper()
	o, err := e.store.Get(t.Context(), apis.KindNetwork, name)
	if err != nil {
		t.Fatal(err)
	}
	n, err := store.ObjectToNetwork(o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) reconcileUntil(t *testing.T, name string, timeout time.Duration, cond func(*apis.Network) bool) *apis.Network {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := e.ctrl.Reconcile(t.Context(), name); err != nil && !errors.Is(err, store.ErrConflict) {
			t.Logf("reconcile: %v", err)
		}
		o, err := e.store.Get(t.Context(), apis.KindNetwork, name)
		if errors.Is(err, store.ErrNotFound) && cond(nil) {
			return nil
		}
		if err == nil {
			n, _ := store.ObjectToNetwork(o)
			if cond(n) {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out: phase %s %q nodes %+v", n.Status.Phase, n.Status.Message, n.Status.Nodes)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("timed out: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRestartBackoff(t *testing.T) {
	for crashes, want := range map[int]time.Duration{0: 0, 1: 0, 2: time.Second, 3: 2 * time.Second, 5: 8 * time.Second, 40: maxBackoff} {
		if got := restartBackoff(crashes); got != want {
			t.Errorf("restartBackoff(%d) = %s, want %s", crashes, got, want)
		}
	}
}

// TestCrashLoopBacksOff: a node that keeps crashing is restarted at once
// the first time, then with growing waits, all of it in the events.
func TestCrashLoopBacksOff(t *testing.T) {
	e := newEnv(t)
	e.create(t, "loop", "crash", 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.ctrl.Start(ctx) }()
	start := time.Now()
	e.ctrl.Enqueue("loop")
	// At least 6 s, and on a starved machine until the second restart:
	// waits of 0, 1, 2, 4 and 8 s let no fifth restart in before 15 s.
	for time.Since(start) < 13*time.Second {
		if time.Since(start) >= 6*time.Second {
			if n := e.get(t, "loop"); len(n.Status.Nodes) == 1 && n.Status.Nodes[0].Restarts >= 2 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	cancel()
	<-done

	n := e.get(t, "loop")
	node := n.Status.Nodes[0]
	// Without backoff a node that dies at once would be restarted dozens
	// of times in six seconds; with 0s, 1s, 2s, 4s waits, at most four.
	if node.Restarts < 2 || node.Restarts > 4 {
		t.Fatalf("%d restarts in %s; want 2 to 4 with backoff", node.Restarts, took.Round(100*time.Millisecond))
	}
	if n.Status.Phase != apis.PhaseDeploying && n.Status.Phase != apis.PhaseFailed {
		t.Errorf("phase %s for a network whose only node crash-loops", n.Status.Phase)
	}
	events, _ := e.store.Events(t.Context(), store.EventFilter{Name: "loop"})
	var crashed, backoff int
	for _, ev := range events {
		switch {
		case ev.Reason == "NodeCrashed":
			crashed++
			if !strings.Contains(ev.Message, "exited with code 3") {
				t.Errorf("crash event does not give the exit code: %q", ev.Message)
			}
		case ev.Reason == "NodeRestarted" && strings.Contains(ev.Message, "next restart waits"):
			backoff++
		}
	}
	if crashed < 2 || backoff < 1 {
		t.Fatalf("events show %d crashes and %d backoffs: %+v", crashed, backoff, events)
	}
}

// TestConvergesAfterCrashBetweenSteps: a server died after storing the plan
// and starting one node. The next controller starts the rest, keeps the
// running node, reuses the stored ports, and delete leaves nothing.
func TestConvergesAfterCrashBetweenSteps(t *testing.T) {
	e := newEnv(t)
	n := e.create(t, "half", "ok", 3)
	// Steps of a deploy that was interrupted: phase written, plan stored,
	// one node started.
	n.Status.Phase = apis.PhaseDeploying
	o, _ := store.NetworkToObject(n)
	if _, err := e.store.UpdateStatus(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	n = e.get(t, "half")
	plan, err := e.ctrl.ensurePlan(t.Context(), n, testDriver{})
	if err != nil {
		t.Fatal(err)
	}
	first := plan.Nodes[0]
	spec := first.Spec
	spec.ID = nodeID("half", first.Name)
	spec.Labels = map[string]string{LabelNetwork: "half", LabelNetworkUID: n.Metadata.UID, LabelNode: first.Name}
	pre, err := e.rt.Start(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	portsBefore, _ := e.store.Ports(t.Context(), n.Metadata.UID)

	// A new controller over the same store and runtime directory.
	e.ctrl = New(e.ctrl.opts)
	n = e.reconcileUntil(t, "half", 30*time.Second, func(n *apis.Network) bool { return n != nil && n.Status.Phase == apis.PhaseRunning })
	if n.Status.Nodes[0].PID != pre.PID {
		t.Fatalf("the node started before the crash was restarted: pid %d, was %d", n.Status.Nodes[0].PID, pre.PID)
	}
	portsAfter, _ := e.store.Ports(t.Context(), n.Metadata.UID)
	if fmt.Sprint(portsBefore) != fmt.Sprint(portsAfter) {
		t.Fatalf("ports changed across the crash: %v then %v", portsBefore, portsAfter)
	}
	list, _ := e.rt.List(t.Context())
	if len(list) != 3 {
		t.Fatalf("runtime has %d nodes, want 3: %+v", len(list), list)
	}
	var pids []int
	for _, s := range n.Status.Nodes {
		pids = append(pids, s.PID)
	}

	// Identities enrolled in the network go with it, its keys with
	// them; another network's stay.
	for _, name := range []string{n.Metadata.UID + "/org1/app1", "other-network-uid/org1/app1"} {
		id, err := e.store.Create(t.Context(), &store.Object{Kind: apis.KindFabricIdentity, Name: name, Spec: []byte("{}")})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.PutBlob(t.Context(), id.UID, "key", []byte("sealed")); err != nil {
			t.Fatal(err)
		}
	}

	// Delete, with a crash after the first node was removed.
	now := time.Now()
	n.Metadata.DeletionTimestamp = &now
	o, _ = store.NetworkToObject(n)
	if _, err := e.store.Update(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Remove(t.Context(), spec.ID); err != nil {
		t.Fatal(err)
	}
	e.reconcileUntil(t, "half", 30*time.Second, func(n *apis.Network) bool { return n == nil })
	if list, _ := e.rt.List(t.Context()); len(list) != 0 {
		t.Fatalf("nodes left after delete: %+v", list)
	}
	if p, _ := e.store.Ports(t.Context(), n.Metadata.UID); len(p) != 0 {
		t.Fatalf("ports still held after delete: %v", p)
	}
	ids, err := e.store.List(t.Context(), apis.KindFabricIdentity)
	if err != nil || len(ids) != 1 || ids[0].Name != "other-network-uid/org1/app1" {
		t.Fatalf("identities after delete: %v (%v), want the other network's alone", ids, err)
	}
	blobs, _ := e.store.ListBlobs(t.Context())
	for _, b := range blobs {
		if b.OwnerUID != ids[0].UID && b.Key == "key" {
			t.Errorf("a key blob of a deleted identity is left: %+v", b)
		}
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), ") Z") {
				t.Errorf("pid %d still runs", pid)
			}
		}
	}
}

// TestOrphansAreCollected: a node whose network is not in the store (a
// crash between the store delete and the runtime remove) is removed.
func TestOrphansAreCollected(t *testing.T) {
	e := newEnv(t)
	kept := e.create(t, "kept", "ok", 1)
	exe, _ := os.Executable()
	orphan := runtime.NodeSpec{ID: "gone.validator-0", Program: exe, Args: []string{"test-node", "ok", "0"},
		Labels: map[string]string{LabelNetwork: "gone", LabelNetworkUID: "uid-of-a-deleted-network"}}
	if _, err := e.rt.Start(t.Context(), orphan); err != nil {
		t.Fatal(err)
	}
	e.reconcileUntil(t, "kept", 30*time.Second, func(n *apis.Network) bool { return n != nil && n.Status.Phase == apis.PhaseRunning })
	e.ctrl.collectOrphans(t.Context())
	if _, err := e.rt.Inspect(t.Context(), orphan.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("orphan not removed: %v", err)
	}
	if st, err := e.rt.Inspect(t.Context(), nodeID("kept", "validator-0")); err != nil || st.State != runtime.StateRunning {
		t.Fatalf("the live network's node was touched: %+v %v", st, err)
	}
	_ = kept
}
