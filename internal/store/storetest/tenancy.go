package storetest

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/store"
)

// RunTenancy runs the tenancy part of the suite.
func RunTenancy(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	t.Run("UsersOrgsMemberships", func(t *testing.T) { testUsersOrgs(t, open(t)) })
	t.Run("SessionsAndKeys", func(t *testing.T) { testSessionsKeys(t, open(t)) })
	t.Run("Nonces", func(t *testing.T) { testNonces(t, open(t)) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open(t)) })
	t.Run("ConsortiaInvitations", func(t *testing.T) { testConsortia(t, open(t)) })
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testUsersOrgs(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	must(t, s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "h1", CreatedAt: now}))
	must(t, s.CreateUser(ctx, store.User{Name: "root", PasswordHash: "h2", PlatformAdmin: true, CreatedAt: now}))
	if err := s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "x"}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("duplicate user: %v", err)
	}
	u, err := s.GetUser(ctx, "root")
	if err != nil || !u.PlatformAdmin || u.PasswordHash != "h2" {
		t.Fatalf("get user: %+v %v", u, err)
	}
	lock := now.Add(time.Minute).Truncate(time.Microsecond)
	must(t, s.RecordLogin(ctx, "alice", 3, lock))
	if u, _ := s.GetUser(ctx, "alice"); u.FailedLogins != 3 || !u.LockedUntil.Equal(lock) {
		t.Fatalf("record login: %+v", u)
	}
	if _, err := s.GetUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing user: %v", err)
	}
	must(t, s.CreateOrganization(ctx, store.Organization{Name: "org1", CreatedAt: now, CreatedBy: "root"}))
	must(t, s.CreateOrganization(ctx, store.Organization{Name: "org2", CreatedAt: now, CreatedBy: "root"}))
	if err := s.CreateOrganization(ctx, store.Organization{Name: "org1"}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("duplicate org: %v", err)
	}
	must(t, s.PutMembership(ctx, store.Membership{Org: "org1", User: "alice", Role: "member"}))
	must(t, s.PutMembership(ctx, store.Membership{Org: "org1", User: "alice", Role: "admin"}))
	must(t, s.PutMembership(ctx, store.Membership{Org: "org2", User: "alice", Role: "auditor"}))
	if err := s.PutMembership(ctx, store.Membership{Org: "nope", User: "alice", Role: "admin"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("membership in a missing org: %v", err)
	}
	ms, err := s.Memberships(ctx, "alice")
	if err != nil || fmt.Sprint(ms) != "[{org1 alice admin} {org2 alice auditor}]" {
		t.Fatalf("memberships: %v %v", ms, err)
	}
	must(t, s.DeleteMembership(ctx, "org2", "alice"))
	if err := s.DeleteMembership(ctx, "org2", "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if ms, _ := s.OrgMembers(ctx, "org2"); len(ms) != 0 {
		t.Fatalf("org2 members: %v", ms)
	}
}

func testSessionsKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	must(t, s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "h", CreatedAt: now}))
	must(t, s.CreateOrganization(ctx, store.Organization{Name: "org1", CreatedAt: now, CreatedBy: "alice"}))
	must(t, s.CreateSession(ctx, store.Session{TokenHash: "old", User: "alice", ExpiresAt: now.Add(-time.Minute)}))
	must(t, s.CreateSession(ctx, store.Session{TokenHash: "t1", User: "alice", ExpiresAt: now.Add(time.Hour)}))
	if se, err := s.GetSession(ctx, "t1"); err != nil || se.User != "alice" {
		t.Fatalf("session: %+v %v", se, err)
	}
	if _, err := s.GetSession(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired session was kept: %v", err)
	}
	must(t, s.DeleteSession(ctx, "t1"))
	if _, err := s.GetSession(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
	k := store.APIKey{ID: "AK1", Org: "org1", Networks: []string{"n1"}, Actions: []string{"network.read"}, CreatedBy: "alice", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	must(t, s.CreateAPIKey(ctx, k))
	if err := s.CreateAPIKey(ctx, k); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("duplicate key: %v", err)
	}
	got, err := s.GetAPIKey(ctx, "AK1")
	if err != nil || fmt.Sprint(got.Networks, got.Actions) != "[n1] [network.read]" || !got.RevokedAt.IsZero() {
		t.Fatalf("get key: %+v %v", got, err)
	}
	must(t, s.RevokeAPIKey(ctx, "AK1", now))
	if err := s.RevokeAPIKey(ctx, "AK1", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if got, _ := s.GetAPIKey(ctx, "AK1"); got.RevokedAt.IsZero() {
		t.Fatal("revocation not stored")
	}
	if keys, _ := s.ListAPIKeys(ctx, "org1"); len(keys) != 1 {
		t.Fatalf("list keys: %v", keys)
	}
}

func testNonces(t *testing.T, s store.Store) {
	ctx := t.Context()
	exp := time.Now().Add(time.Minute)
	const n = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range n {
		wg.Go(func() {
			if err := s.UseNonce(ctx, "AK1", "nonce-1", exp); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrAlreadyExists) {
				t.Errorf("use nonce: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("a nonce was accepted %d times", ok)
	}
	must(t, s.UseNonce(ctx, "AK2", "nonce-1", exp)) // per key
	must(t, s.UseNonce(ctx, "AK1", "gone", time.Now().Add(-time.Second)))
	must(t, s.UseNonce(ctx, "AK1", "other", exp)) // purges the expired one
	must(t, s.UseNonce(ctx, "AK1", "gone", exp))
}

func testAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, org := range []string{"org1", "org2", "org1", ""} {
		must(t, s.AppendAudit(ctx, store.AuditEntry{Actor: fmt.Sprint("u", i%2), Org: org, Action: "network.create", Resource: "networks/x", Result: "allowed", Status: 201, Source: "127.0.0.1"}))
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil || len(all) != 4 || all[0].ID >= all[1].ID {
		t.Fatalf("audit: %+v %v", all, err)
	}
	org1, _ := s.ListAudit(ctx, store.AuditFilter{Orgs: []string{"org1"}})
	if len(org1) != 2 {
		t.Fatalf("org1 audit: %+v", org1)
	}
	if none, _ := s.ListAudit(ctx, store.AuditFilter{Orgs: []string{}}); len(none) != 0 {
		t.Fatalf("an empty org list matched %d entries", len(none))
	}
	u1, _ := s.ListAudit(ctx, store.AuditFilter{Actor: "u1", AfterID: all[1].ID})
	if len(u1) != 1 || u1[0].ID != all[3].ID {
		t.Fatalf("u1 after %d: %+v", all[1].ID, u1)
	}
}

func testConsortia(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	for _, o := range []string{"org1", "org2", "org3"} {
		must(t, s.CreateOrganization(ctx, store.Organization{Name: o, CreatedAt: now, CreatedBy: "root"}))
	}
	must(t, s.CreateConsortium(ctx, store.Consortium{Name: "c1", OwnerOrg: "org1", CreatedAt: now}))
	if err := s.CreateConsortium(ctx, store.Consortium{Name: "c1", OwnerOrg: "org2", CreatedAt: now}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("duplicate consortium: %v", err)
	}
	if err := s.CreateConsortium(ctx, store.Consortium{Name: "c2", OwnerOrg: "nope", CreatedAt: now}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("consortium of a missing org: %v", err)
	}
	for _, inv := range []store.Invitation{
		{ID: "i2", Consortium: "c1", Org: "org2", InvitedBy: "alice", State: store.InvitationPending, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{ID: "i3", Consortium: "c1", Org: "org3", InvitedBy: "alice", State: store.InvitationPending, CreatedAt: now.Add(time.Millisecond), ExpiresAt: now.Add(time.Hour)},
	} {
		must(t, s.CreateInvitation(ctx, inv))
	}
	inv, err := s.DecideInvitation(ctx, "i2", store.InvitationAccepted, "bob", now)
	if err != nil || inv.State != store.InvitationAccepted || inv.DecidedBy != "bob" {
		t.Fatalf("accept: %+v %v", inv, err)
	}
	if _, err := s.DecideInvitation(ctx, "i2", store.InvitationAccepted, "bob", now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("double accept: %v", err)
	}
	if _, err := s.DecideInvitation(ctx, "i3", store.InvitationDeclined, "carol", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DecideInvitation(ctx, "nope", store.InvitationAccepted, "x", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing invitation: %v", err)
	}
	c, err := s.GetConsortium(ctx, "c1")
	if err != nil || fmt.Sprint(c.Members) != "[org1 org2]" {
		t.Fatalf("members after accept and decline: %+v %v", c, err)
	}
	must(t, s.RemoveConsortiumMember(ctx, "c1", "org2"))
	if c, _ := s.GetConsortium(ctx, "c1"); fmt.Sprint(c.Members) != "[org1]" {
		t.Fatalf("after removal: %v", c.Members)
	}
	if invs, _ := s.ListInvitations(ctx, "org3", ""); len(invs) != 1 || invs[0].State != store.InvitationDeclined {
		t.Fatalf("org3 invitations: %+v", invs)
	}
	if cs, _ := s.ListConsortia(ctx); len(cs) != 1 {
		t.Fatalf("consortia: %+v", cs)
	}
}

// AuditIsAppendOnly checks that the database itself refuses to change or
// remove an audit entry, through db (the store's own connection).
func AuditIsAppendOnly(t *testing.T, s store.Store, db *sql.DB) {
	t.Helper()
	if err := s.AppendAudit(t.Context(), store.AuditEntry{Actor: "a", Action: "x", Resource: "r", Result: "allowed", Status: 200, Source: "s"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"UPDATE audit SET actor = 'forged'", "DELETE FROM audit"} {
		if _, err := db.ExecContext(t.Context(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want an append-only error", q, err)
		}
	}
	if entries, _ := s.ListAudit(t.Context(), store.AuditFilter{}); len(entries) != 1 || entries[0].Actor != "a" {
		t.Errorf("the audit log changed: %+v", entries)
	}
}
