package fabric

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

// TestConns: calls to a peer as the same admin share one connection,
// another admin (of another plan, or organisation) gets its own, and a
// connection nobody uses is closed after the idle time, not while in use.
func TestConns(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	_, other := planFor(t, "two-orgs.good.yaml")
	var peers []chain.PlannedNode
	for _, n := range plan.Nodes {
		if n.Role == apis.RoleFull {
			peers = append(peers, n)
		}
	}
	admin := func(p *chain.Plan, org string) *admin {
		a, err := loadAdmin(p, org)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	pool := &conns{idle: 100 * time.Millisecond}
	a1, a1again, b1 := admin(plan, "org1"), admin(plan, "org1"), admin(other, "org1")
	c1, r1, err := pool.get(peers[0], a1)
	if err != nil {
		t.Fatal(err)
	}
	c2, r2, _ := pool.get(peers[0], a1again)
	c3, r3, _ := pool.get(peers[0], b1)
	c4, r4, _ := pool.get(peers[1], a1)
	if c1 != c2 {
		t.Error("two calls to the same peer as the same admin made two connections")
	}
	if c3 == c1 || c4 == c1 {
		t.Error("another plan's admin, or another peer, shares a connection")
	}
	r2()
	r2() // twice is once
	r3()
	r4()
	// c1 is still in use: it stays open while the others close.
	deadline := time.Now().Add(5 * time.Second)
	for c3.GetState() != connectivity.Shutdown || c4.GetState() != connectivity.Shutdown {
		if time.Now().After(deadline) {
			t.Fatalf("unused connections not closed: %v %v", c3.GetState(), c4.GetState())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c1.GetState() == connectivity.Shutdown {
		t.Fatal("a connection in use was closed")
	}
	r1()
	for c1.GetState() != connectivity.Shutdown {
		if time.Now().After(deadline) {
			t.Fatal("the last connection was not closed once unused")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if len(pool.m) != 0 || pool.janitor {
		t.Fatalf("%d connections pooled, janitor %v; want none", len(pool.m), pool.janitor)
	}
}

// TestConnsUnreachable: a pooled connection that failed to reach its peer
// is not handed out again, so that a restarted peer is dialled at once.
func TestConnsUnreachable(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	a, err := loadAdmin(plan, "org1")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	node := chain.PlannedNode{Name: "org1-peer-0", Role: apis.RoleFull, Organization: "org1",
		Endpoints: map[string]string{PortListen: "grpcs://" + addr}}
	pool := &conns{}
	c1, r1, err := pool.get(node, a)
	if err != nil {
		t.Fatal(err)
	}
	c1.Connect()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for s := c1.GetState(); s != connectivity.TransientFailure; s = c1.GetState() {
		if !c1.WaitForStateChange(ctx, s) {
			t.Fatalf("a connection to %s, where nothing listens: %v; want it to fail", addr, s)
		}
	}
	c2, r2, err := pool.get(node, a)
	if err != nil {
		t.Fatal(err)
	}
	defer r2()
	if c2 == c1 {
		t.Fatal("a connection that failed to reach its peer was handed out again")
	}
	if c1.GetState() == connectivity.Shutdown {
		t.Fatal("the failed connection was closed while in use")
	}
	r1()
	if c1.GetState() != connectivity.Shutdown {
		t.Fatalf("the failed connection, given back, is %v; want closed", c1.GetState())
	}
}
