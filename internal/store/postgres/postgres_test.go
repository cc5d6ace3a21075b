package postgres

import (
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/internal/store/sqlstore"
	"github.com/chaindock/chaindock/internal/store/storetest"
)

func open(t *testing.T) store.Store {
	t.Helper()
	s, err := Open(t.Context(), storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
	storetest.RunTenancy(t, open)
}

func TestAuditIsAppendOnly(t *testing.T) {
	s := open(t).(*sqlstore.Store)
	if err := s.AppendAudit(t.Context(), store.AuditEntry{Actor: "a", Action: "x", Resource: "r", Result: "allowed", Status: 200, Source: "s"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"UPDATE audit SET actor = 'forged'", "DELETE FROM audit"} {
		if _, err := s.DB().ExecContext(t.Context(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want an append-only error", q, err)
		}
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	for range 2 {
		s, err := Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	}
}
