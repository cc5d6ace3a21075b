package api

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/internal/store/sqlite"
)

// TestGatewayPlan: the gateway's plan is decoded once while the stored
// plan stays as it is, decoded again as soon as it changes, and the
// cache keeps at most planCacheSize networks.
func TestGatewayPlan(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "chaindock.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &API{opts: Options{Store: st}}
	put := func(uid string, plan chain.Plan) {
		t.Helper()
		b, err := json.Marshal(plan)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutBlob(t.Context(), uid, store.PlanBlob, b); err != nil {
			t.Fatal(err)
		}
	}
	n := &apis.Network{Metadata: apis.ObjectMeta{Name: "fab", UID: "uid-fab"}}
	put(n.Metadata.UID, chain.Plan{ChainID: "one"})
	p1, err := a.gatewayPlan(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := a.gatewayPlan(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 || p1.ChainID != "one" {
		t.Fatalf("the unchanged plan was decoded twice (%p, %p) or wrong (%q)", p1, p2, p1.ChainID)
	}
	put(n.Metadata.UID, chain.Plan{ChainID: "two"})
	p3, err := a.gatewayPlan(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	if p3.ChainID != "two" {
		t.Fatalf("after the stored plan changed the gateway has %q; want two", p3.ChainID)
	}
	if _, err := a.gatewayPlan(t.Context(), &apis.Network{Metadata: apis.ObjectMeta{Name: "none", UID: "uid-none"}}); err == nil {
		t.Fatal("a network without a plan has one")
	}
	for i := range planCacheSize + 5 {
		uid := fmt.Sprintf("uid-%d", i)
		put(uid, chain.Plan{ChainID: uid})
		if p, err := a.gatewayPlan(t.Context(), &apis.Network{Metadata: apis.ObjectMeta{Name: uid, UID: uid}}); err != nil || p.ChainID != uid {
			t.Fatalf("plan %s: %v", uid, err)
		}
	}
	if len(a.plans.m) != planCacheSize {
		t.Fatalf("%d plans cached; want at most %d", len(a.plans.m), planCacheSize)
	}
}
