package postgres

import (
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
	storetest.RunExplorer(t, open)
	storetest.RunContracts(t, open)
}

func TestAuditIsAppendOnly(t *testing.T) {
	s := open(t).(*sqlstore.Store)
	storetest.AuditIsAppendOnly(t, s, s.DB())
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
