package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// EnvPostgresDSN names the PostgreSQL server tests may create databases on.
const EnvPostgresDSN = "CHAINDOCK_TEST_POSTGRES_DSN"

// PostgresDSN creates a fresh database on the test server and returns its
// DSN; the database is dropped when the test ends. Without a server the
// test is skipped with a message that says how to get one.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(EnvPostgresDSN)
	if admin == "" {
		tb.Skip(EnvPostgresDSN + " is not set: run the tests with `make test`, which starts a PostgreSQL server (scripts/with-postgres.sh)")
	}
	dsn, drop, err := NewPostgresDatabase(tb.Context(), admin)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(drop)
	return dsn
}

// NewPostgresDatabase creates a database with a random name on the server
// at admin and returns its DSN and a function that drops it.
func NewPostgresDatabase(ctx context.Context, admin string) (string, func(), error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", nil, err
	}
	defer db.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "chaindock_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create test database: %w", err)
	}
	drop := func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	u, err := url.Parse(admin)
	if err != nil {
		drop()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}
