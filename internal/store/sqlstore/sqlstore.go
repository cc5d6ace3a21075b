// Package sqlstore is the store.Store written once in SQL for every
// database/sql backend; the sqlite and postgres packages open their database,
// migrate it and hand it here. Queries are written with "?" placeholders and
// rebound for dialects that number them.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/store"
)

// Dialect is how a database differs from SQLite's SQL.
type Dialect int

// Dialects.
const (
	SQLite Dialect = iota
	Postgres
)

// Store is a store.Store over database/sql.
type Store struct {
	db      *sql.DB
	dialect Dialect
}

var _ store.Store = (*Store)(nil)

// New wraps a migrated database.
func New(db *sql.DB, d Dialect) *Store { return &Store{db: db, dialect: d} }

// DB returns the database, for backend-specific checks in tests.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// q rebinds a query's "?" placeholders for the dialect.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryAll runs query on db and scans every row with scan.
func queryAll[T any](ctx context.Context, s *Store, db querier, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const objectColumns = `kind, name, uid, owner, labels, resource_version, generation, spec, status, created_at, deleted_at`

func scanObject(row interface{ Scan(...any) error }) (*store.Object, error) {
	var (
		o       store.Object
		labels  string
		created int64
		deleted sql.NullInt64
		spec    string
		status  string
	)
	if err := row.Scan(&o.Kind, &o.Name, &o.UID, &o.Owner, &labels, &o.ResourceVersion, &o.Generation, &spec, &status, &created, &deleted); err != nil {
		return nil, err
	}
	o.Spec, o.Status = []byte(spec), []byte(status)
	if err := json.Unmarshal([]byte(labels), &o.Labels); err != nil {
		return nil, fmt.Errorf("decode labels of %s/%s: %w", o.Kind, o.Name, err)
	}
	if len(o.Labels) == 0 {
		o.Labels = nil
	}
	o.CreatedAt = time.Unix(0, created).UTC()
	if deleted.Valid {
		t := time.Unix(0, deleted.Int64).UTC()
		o.DeletedAt = &t
	}
	return &o, nil
}

func labelsJSON(l map[string]string) string {
	if len(l) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(l) // a map of strings always encodes
	return string(b)
}

func nullTime(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, o *store.Object) (*store.Object, error) {
	uid := o.UID
	if uid == "" {
		uid = uuid.NewString()
	}
	now := time.Now().UTC()
	status := o.Status
	if len(status) == 0 {
		status = []byte("{}")
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO objects (`+objectColumns+`, updated_at)
		VALUES (?, ?, ?, ?, ?, 1, 1, ?, ?, ?, NULL, ?)
		ON CONFLICT (kind, name) DO NOTHING`),
		o.Kind, o.Name, uid, o.Owner, labelsJSON(o.Labels), string(o.Spec), string(status), now.UnixNano(), now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("create %s/%s: %w", o.Kind, o.Name, err)
	}
	got, err := s.Get(ctx, o.Kind, o.Name)
	if err != nil {
		return nil, err
	}
	if got.UID != uid {
		return nil, fmt.Errorf("%s %q: %w", o.Kind, o.Name, store.ErrAlreadyExists)
	}
	return got, nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, kind, name string) (*store.Object, error) {
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+objectColumns+` FROM objects WHERE kind = ? AND name = ?`), kind, name)
	o, err := scanObject(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s %q: %w", kind, name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", kind, name, err)
	}
	return o, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, kind string) ([]*store.Object, error) {
	out, err := queryAll(ctx, s, s.db, scanObject, `SELECT `+objectColumns+` FROM objects WHERE kind = ? ORDER BY name`, kind)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	return out, nil
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, o *store.Object) (*store.Object, error) {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE objects SET
			labels = ?, spec = ?, deleted_at = ?, updated_at = ?,
			generation = generation + CASE WHEN spec = ? THEN 0 ELSE 1 END,
			resource_version = resource_version + 1
		WHERE kind = ? AND name = ? AND resource_version = ?`),
		labelsJSON(o.Labels), string(o.Spec), nullTime(o.DeletedAt), time.Now().UnixNano(), string(o.Spec),
		o.Kind, o.Name, o.ResourceVersion)
	return s.afterWrite(ctx, o, res, err)
}

// UpdateStatus implements store.Store.
func (s *Store) UpdateStatus(ctx context.Context, o *store.Object) (*store.Object, error) {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE objects SET status = ?, updated_at = ?,
			resource_version = resource_version + 1
		WHERE kind = ? AND name = ? AND resource_version = ?`),
		string(o.Status), time.Now().UnixNano(), o.Kind, o.Name, o.ResourceVersion)
	return s.afterWrite(ctx, o, res, err)
}

func (s *Store) afterWrite(ctx context.Context, o *store.Object, res sql.Result, err error) (*store.Object, error) {
	if err != nil {
		return nil, fmt.Errorf("update %s/%s: %w", o.Kind, o.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("update %s/%s: %w", o.Kind, o.Name, err)
	}
	if n == 0 {
		if _, err := s.Get(ctx, o.Kind, o.Name); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s %q: %w", o.Kind, o.Name, store.ErrConflict)
	}
	return s.Get(ctx, o.Kind, o.Name)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, kind, name, uid string) error {
	// A network's indexed chains may be millions of rows: they go first,
	// in short steps, and the network with the rest of what it owns last.
	ledgers := []string{uid}
	if kind == apis.KindNetwork {
		var err error
		if ledgers, err = s.ledgerKeys(ctx, uid); err != nil {
			return fmt.Errorf("delete %s/%s: %w", kind, name, err)
		}
	}
	for _, key := range ledgers {
		if err := s.ForgetChain(ctx, key); err != nil {
			return fmt.Errorf("delete %s/%s: %w", kind, name, err)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", kind, name, err)
	}
	defer func() { _ = tx.Rollback() }()
	type stmt struct {
		q    string
		args []any
	}
	stmts := []stmt{
		{`DELETE FROM objects WHERE kind = ? AND name = ? AND uid = ?`, []any{kind, name, uid}},
		{`DELETE FROM events WHERE uid = ?`, []any{uid}},
		{`DELETE FROM blobs WHERE owner_uid = ?`, []any{uid}},
		{`DELETE FROM ports WHERE owner_uid = ?`, []any{uid}},
		{`DELETE FROM contract_revisions WHERE network_uid = ?`, []any{uid}},
	}
	for _, key := range ledgers {
		// What an indexer wrote since ForgetChain: a few blocks at most.
		stmts = append(stmts,
			stmt{`DELETE FROM txs WHERE network_uid = ?`, []any{key}},
			stmt{`DELETE FROM blocks WHERE network_uid = ?`, []any{key}})
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, s.q(st.q), st.args...); err != nil {
			return fmt.Errorf("delete %s/%s: %w", kind, name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete %s/%s: %w", kind, name, err)
	}
	return nil
}

// AddEvent implements store.Store.
func (s *Store) AddEvent(ctx context.Context, e apis.Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO events (time, kind, name, uid, type, reason, node, message)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		e.Time.UnixNano(), e.Kind, e.Name, e.UID, e.Type, e.Reason, e.Node, e.Message)
	if err != nil {
		return fmt.Errorf("add event %s on %s/%s: %w", e.Reason, e.Kind, e.Name, err)
	}
	return nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, f store.EventFilter) ([]apis.Event, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	out, err := queryAll(ctx, s, s.db, func(row interface{ Scan(...any) error }) (apis.Event, error) {
		var e apis.Event
		var t int64
		err := row.Scan(&e.ID, &t, &e.Kind, &e.Name, &e.UID, &e.Type, &e.Reason, &e.Node, &e.Message)
		e.Time = time.Unix(0, t).UTC()
		return e, err
	}, `SELECT id, time, kind, name, uid, type, reason, node, message FROM events
		WHERE (? = '' OR kind = ?) AND (? = '' OR name = ?) AND (? = '' OR uid = ?) AND id > ?
		ORDER BY id LIMIT ?`,
		f.Kind, f.Kind, f.Name, f.Name, f.UID, f.UID, f.AfterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// PutBlob implements store.Store.
func (s *Store) PutBlob(ctx context.Context, ownerUID, key string, data []byte) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO blobs (owner_uid, key, data) VALUES (?, ?, ?)
		ON CONFLICT (owner_uid, key) DO UPDATE SET data = excluded.data`), ownerUID, key, data)
	if err != nil {
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	return nil
}

// GetBlob implements store.Store.
func (s *Store) GetBlob(ctx context.Context, ownerUID, key string) ([]byte, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, s.q(`SELECT data FROM blobs WHERE owner_uid = ? AND key = ?`), ownerUID, key).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("blob %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", key, err)
	}
	return data, nil
}

// ListBlobs implements store.Store.
func (s *Store) ListBlobs(ctx context.Context) ([]store.BlobRef, error) {
	out, err := queryAll(ctx, s, s.db, func(row interface{ Scan(...any) error }) (store.BlobRef, error) {
		var b store.BlobRef
		return b, row.Scan(&b.OwnerUID, &b.Key)
	}, `SELECT owner_uid, key FROM blobs ORDER BY owner_uid, key`)
	if err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	return out, nil
}

// ReplaceBlob implements store.Store.
func (s *Store) ReplaceBlob(ctx context.Context, ownerUID, key string, old, new []byte) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE blobs SET data = ? WHERE owner_uid = ? AND key = ? AND data = ?`), new, ownerUID, key, old)
	if err != nil {
		return false, fmt.Errorf("replace blob %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AllocatePorts implements store.Store.
func (s *Store) AllocatePorts(ctx context.Context, ownerUID, key string, n int, r store.PortRange, usable func(int) bool) ([]int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("allocate ports: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	have, err := s.queryInts(ctx, tx, `SELECT port FROM ports WHERE owner_uid = ? AND key = ? ORDER BY idx`, ownerUID, key)
	if err != nil {
		return nil, fmt.Errorf("allocate ports: %w", err)
	}
	if len(have) == n {
		return have, nil
	}
	if len(have) > 0 {
		return nil, fmt.Errorf("allocate ports: %s/%s holds %d ports, asked for %d", ownerUID, key, len(have), n)
	}
	taken, err := s.queryInts(ctx, tx, `SELECT port FROM ports WHERE port BETWEEN ? AND ?`, r.Low, r.High)
	if err != nil {
		return nil, fmt.Errorf("allocate ports: %w", err)
	}
	used := make(map[int]bool, len(taken))
	for _, p := range taken {
		used[p] = true
	}
	var got []int
	for p := r.Low; p <= r.High && len(got) < n; p++ {
		if used[p] || (usable != nil && !usable(p)) {
			continue
		}
		got = append(got, p)
	}
	if len(got) < n {
		return nil, fmt.Errorf("allocate %d ports in %d-%d: %w", n, r.Low, r.High, store.ErrNoPorts)
	}
	for i, p := range got {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO ports (port, owner_uid, key, idx) VALUES (?, ?, ?, ?)`), p, ownerUID, key, i); err != nil {
			return nil, fmt.Errorf("allocate ports: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("allocate ports: %w", err)
	}
	return got, nil
}

// ReleasePorts implements store.Store.
func (s *Store) ReleasePorts(ctx context.Context, ownerUID, key string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM ports WHERE owner_uid = ? AND key = ?`), ownerUID, key); err != nil {
		return fmt.Errorf("release ports of %s: %w", key, err)
	}
	return nil
}

// Ports implements store.Store.
func (s *Store) Ports(ctx context.Context, ownerUID string) (map[string][]int, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT key, port FROM ports WHERE owner_uid = ? ORDER BY key, idx`), ownerUID)
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	defer rows.Close()
	out := map[string][]int{}
	for rows.Next() {
		var k string
		var p int
		if err := rows.Scan(&k, &p); err != nil {
			return nil, fmt.Errorf("list ports: %w", err)
		}
		out[k] = append(out[k], p)
	}
	return out, rows.Err()
}

func (s *Store) queryInts(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]int, error) {
	return queryAll(ctx, s, tx, func(row interface{ Scan(...any) error }) (int, error) {
		var v int
		return v, row.Scan(&v)
	}, q, args...)
}
