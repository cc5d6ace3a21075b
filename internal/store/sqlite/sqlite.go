// Package sqlite is the embedded store: one SQLite file in the data
// directory, through the pure-Go modernc.org/sqlite driver, so ChainDock
// needs no database server and no cgo.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"net/url"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/chaindock/chaindock/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating if needed) the database at path and migrates it to
// the newest schema.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// 64 MiB of pages (the default is 2 MiB): lookups and deletions in
	// an explorer index of millions of rows stay mostly in memory.
	q.Add("_pragma", "cache_size(-65536)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One connection serialises writers, which SQLite does anyway, and
	// spares every caller SQLITE_BUSY handling.
	db.SetMaxOpenConns(1)
	if err := sqlstore.Migrate(ctx, db, goose.DialectSQLite3, migrations); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return sqlstore.New(db, sqlstore.SQLite), nil
}
