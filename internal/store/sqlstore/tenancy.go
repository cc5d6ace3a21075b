package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chaindock/chaindock/internal/store"
)

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// isUnique reports whether err is a unique-constraint violation, in either
// dialect.
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") ||
		strings.Contains(msg, "constraint failed: PRIMARY KEY")
}

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "FOREIGN KEY constraint failed") || strings.Contains(msg, "SQLSTATE 23503")
}

func (s *Store) insert(ctx context.Context, what, query string, args ...any) error {
	_, err := s.db.ExecContext(ctx, s.q(query), args...)
	switch {
	case isUnique(err):
		return fmt.Errorf("%s: %w", what, store.ErrAlreadyExists)
	case isForeignKey(err):
		return fmt.Errorf("%s: what it refers to does not exist: %w", what, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// CreateUser implements store.Tenancy.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	return s.insert(ctx, "user "+u.Name, `INSERT INTO users (name, password_hash, platform_admin, created_at) VALUES (?, ?, ?, ?)`,
		u.Name, u.PasswordHash, b2i(u.PlatformAdmin), unix(u.CreatedAt))
}

const userColumns = `name, password_hash, platform_admin, created_at, failed_logins, locked_until`

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var admin int
	var created, locked int64
	err := row.Scan(&u.Name, &u.PasswordHash, &admin, &created, &u.FailedLogins, &locked)
	u.PlatformAdmin, u.CreatedAt, u.LockedUntil = admin == 1, fromUnix(created), fromUnix(locked)
	return u, err
}

// GetUser implements store.Tenancy.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE name = ?`), name))
	if err != nil {
		return u, notFound(err, "user "+name)
	}
	return u, nil
}

// ListUsers implements store.Tenancy.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return queryAll(ctx, s, s.db, scanUser, `SELECT `+userColumns+` FROM users ORDER BY name`)
}

// RecordLogin implements store.Tenancy.
func (s *Store) RecordLogin(ctx context.Context, name string, failed int, lockedUntil time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE users SET failed_logins = ?, locked_until = ? WHERE name = ?`), failed, unix(lockedUntil), name)
	return err
}

// CreateOrganization implements store.Tenancy.
func (s *Store) CreateOrganization(ctx context.Context, o store.Organization) error {
	return s.insert(ctx, "organization "+o.Name, `INSERT INTO organizations (name, created_at, created_by) VALUES (?, ?, ?)`,
		o.Name, unix(o.CreatedAt), o.CreatedBy)
}

func scanOrg(row interface{ Scan(...any) error }) (store.Organization, error) {
	var o store.Organization
	var created int64
	err := row.Scan(&o.Name, &created, &o.CreatedBy)
	o.CreatedAt = fromUnix(created)
	return o, err
}

// GetOrganization implements store.Tenancy.
func (s *Store) GetOrganization(ctx context.Context, name string) (store.Organization, error) {
	o, err := scanOrg(s.db.QueryRowContext(ctx, s.q(`SELECT name, created_at, created_by FROM organizations WHERE name = ?`), name))
	if err != nil {
		return o, notFound(err, "organization "+name)
	}
	return o, nil
}

// ListOrganizations implements store.Tenancy.
func (s *Store) ListOrganizations(ctx context.Context) ([]store.Organization, error) {
	return queryAll(ctx, s, s.db, scanOrg, `SELECT name, created_at, created_by FROM organizations ORDER BY name`)
}

// PutMembership implements store.Tenancy.
func (s *Store) PutMembership(ctx context.Context, m store.Membership) error {
	return s.insert(ctx, "membership of "+m.User+" in "+m.Org, `INSERT INTO memberships (org, user_name, role) VALUES (?, ?, ?)
		ON CONFLICT (org, user_name) DO UPDATE SET role = excluded.role`, m.Org, m.User, m.Role)
}

// DeleteMembership implements store.Tenancy.
func (s *Store) DeleteMembership(ctx context.Context, org, user string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM memberships WHERE org = ? AND user_name = ?`), org, user)
	return affected(res, err, "membership of "+user+" in "+org)
}

func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

func scanMembership(row interface{ Scan(...any) error }) (store.Membership, error) {
	var m store.Membership
	err := row.Scan(&m.Org, &m.User, &m.Role)
	return m, err
}

// Memberships implements store.Tenancy.
func (s *Store) Memberships(ctx context.Context, user string) ([]store.Membership, error) {
	return queryAll(ctx, s, s.db, scanMembership, `SELECT org, user_name, role FROM memberships WHERE user_name = ? ORDER BY org`, user)
}

// OrgMembers implements store.Tenancy.
func (s *Store) OrgMembers(ctx context.Context, org string) ([]store.Membership, error) {
	return queryAll(ctx, s, s.db, scanMembership, `SELECT org, user_name, role FROM memberships WHERE org = ? ORDER BY user_name`, org)
}

// CreateSession implements store.Tenancy.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	// Expired sessions go with every new one, so the table stays small.
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE expires_at < ?`), time.Now().UnixNano()); err != nil {
		return err
	}
	return s.insert(ctx, "session", `INSERT INTO sessions (token_hash, user_name, expires_at) VALUES (?, ?, ?)`, se.TokenHash, se.User, unix(se.ExpiresAt))
}

// GetSession implements store.Tenancy.
func (s *Store) GetSession(ctx context.Context, tokenHash string) (store.Session, error) {
	var se store.Session
	var exp int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT token_hash, user_name, expires_at FROM sessions WHERE token_hash = ?`), tokenHash).Scan(&se.TokenHash, &se.User, &exp)
	se.ExpiresAt = fromUnix(exp)
	if err != nil {
		return se, notFound(err, "session")
	}
	return se, nil
}

// DeleteSession implements store.Tenancy.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE token_hash = ?`), tokenHash)
	return err
}

// CreateAPIKey implements store.Tenancy.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	nets, _ := json.Marshal(nonNil(k.Networks))
	acts, _ := json.Marshal(nonNil(k.Actions))
	return s.insert(ctx, "API key "+k.ID, `INSERT INTO api_keys (id, org, description, networks, actions, created_by, created_at, expires_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)`, k.ID, k.Org, k.Description, string(nets), string(acts), k.CreatedBy, unix(k.CreatedAt), unix(k.ExpiresAt))
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

//nolint:gosec // column names, not a credential
const apiKeyColumns = `id, org, description, networks, actions, created_by, created_at, expires_at, revoked_at`

func scanAPIKey(row interface{ Scan(...any) error }) (store.APIKey, error) {
	var k store.APIKey
	var nets, acts string
	var created, expires, revoked int64
	if err := row.Scan(&k.ID, &k.Org, &k.Description, &nets, &acts, &k.CreatedBy, &created, &expires, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = fromUnix(created), fromUnix(expires), fromUnix(revoked)
	if err := json.Unmarshal([]byte(nets), &k.Networks); err != nil {
		return k, err
	}
	return k, json.Unmarshal([]byte(acts), &k.Actions)
}

// GetAPIKey implements store.Tenancy.
func (s *Store) GetAPIKey(ctx context.Context, id string) (store.APIKey, error) {
	k, err := scanAPIKey(s.db.QueryRowContext(ctx, s.q(`SELECT `+apiKeyColumns+` FROM api_keys WHERE id = ?`), id))
	if err != nil {
		return k, notFound(err, "API key "+id)
	}
	return k, nil
}

// ListAPIKeys implements store.Tenancy.
func (s *Store) ListAPIKeys(ctx context.Context, org string) ([]store.APIKey, error) {
	return queryAll(ctx, s, s.db, scanAPIKey, `SELECT `+apiKeyColumns+` FROM api_keys WHERE org = ? ORDER BY created_at, id`, org)
}

// RevokeAPIKey implements store.Tenancy.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0`), unix(at), id)
	return affected(res, err, "API key "+id)
}

// UseNonce implements store.Tenancy.
func (s *Store) UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM nonces WHERE expires_at < ?`), time.Now().UnixNano()); err != nil {
		return err
	}
	return s.insert(ctx, "nonce", `INSERT INTO nonces (key_id, nonce, expires_at) VALUES (?, ?, ?)`, keyID, nonce, unix(expires))
}

// AppendAudit implements store.Tenancy.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO audit (time, actor, org, action, resource, result, status, source, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), unix(e.Time), e.Actor, e.Org, e.Action, e.Resource, e.Result, e.Status, e.Source, e.Detail)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// ListAudit implements store.Tenancy.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	query := `SELECT id, time, actor, org, action, resource, result, status, source, detail FROM audit WHERE id > ? AND (? = '' OR actor = ?)`
	args := []any{f.AfterID, f.Actor, f.Actor}
	if f.Orgs != nil {
		if len(f.Orgs) == 0 {
			return nil, nil
		}
		query += ` AND org IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(f.Orgs)), ", ") + `)`
		for _, o := range f.Orgs {
			args = append(args, o)
		}
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, limit)
	return queryAll(ctx, s, s.db, func(row interface{ Scan(...any) error }) (store.AuditEntry, error) {
		var e store.AuditEntry
		var t int64
		err := row.Scan(&e.ID, &t, &e.Actor, &e.Org, &e.Action, &e.Resource, &e.Result, &e.Status, &e.Source, &e.Detail)
		e.Time = fromUnix(t)
		return e, err
	}, query, args...)
}

// CreateConsortium implements store.Tenancy.
func (s *Store) CreateConsortium(ctx context.Context, c store.Consortium) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO consortia (name, owner_org, created_at) VALUES (?, ?, ?)`), c.Name, c.OwnerOrg, unix(c.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("consortium %s: %w", c.Name, store.ErrAlreadyExists)
	}
	if isForeignKey(err) {
		return fmt.Errorf("consortium %s: organization %s: %w", c.Name, c.OwnerOrg, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO consortium_members (consortium, org, joined_at) VALUES (?, ?, ?)`), c.Name, c.OwnerOrg, unix(c.CreatedAt)); err != nil {
		return err
	}
	return tx.Commit()
}

// GetConsortium implements store.Tenancy.
func (s *Store) GetConsortium(ctx context.Context, name string) (store.Consortium, error) {
	var c store.Consortium
	var created int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT name, owner_org, created_at FROM consortia WHERE name = ?`), name).Scan(&c.Name, &c.OwnerOrg, &created)
	if err != nil {
		return c, notFound(err, "consortium "+name)
	}
	c.CreatedAt = fromUnix(created)
	c.Members, err = queryAll(ctx, s, s.db, func(row interface{ Scan(...any) error }) (string, error) {
		var o string
		return o, row.Scan(&o)
	}, `SELECT org FROM consortium_members WHERE consortium = ? ORDER BY org`, name)
	return c, err
}

// ListConsortia implements store.Tenancy.
func (s *Store) ListConsortia(ctx context.Context) ([]store.Consortium, error) {
	names, err := queryAll(ctx, s, s.db, func(row interface{ Scan(...any) error }) (string, error) {
		var n string
		return n, row.Scan(&n)
	}, `SELECT name FROM consortia ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var out []store.Consortium
	for _, n := range names {
		c, err := s.GetConsortium(ctx, n)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// RemoveConsortiumMember implements store.Tenancy.
func (s *Store) RemoveConsortiumMember(ctx context.Context, consortium, org string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM consortium_members WHERE consortium = ? AND org = ?`), consortium, org)
	return affected(res, err, org+" in consortium "+consortium)
}

// CreateInvitation implements store.Tenancy.
func (s *Store) CreateInvitation(ctx context.Context, inv store.Invitation) error {
	return s.insert(ctx, "invitation", `INSERT INTO invitations (id, consortium, org, invited_by, state, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		inv.ID, inv.Consortium, inv.Org, inv.InvitedBy, inv.State, unix(inv.CreatedAt), unix(inv.ExpiresAt))
}

const invitationColumns = `id, consortium, org, invited_by, state, created_at, expires_at, decided_at, decided_by`

func scanInvitation(row interface{ Scan(...any) error }) (store.Invitation, error) {
	var i store.Invitation
	var created, expires, decided int64
	err := row.Scan(&i.ID, &i.Consortium, &i.Org, &i.InvitedBy, &i.State, &created, &expires, &decided, &i.DecidedBy)
	i.CreatedAt, i.ExpiresAt, i.DecidedAt = fromUnix(created), fromUnix(expires), fromUnix(decided)
	return i, err
}

// GetInvitation implements store.Tenancy.
func (s *Store) GetInvitation(ctx context.Context, id string) (store.Invitation, error) {
	i, err := scanInvitation(s.db.QueryRowContext(ctx, s.q(`SELECT `+invitationColumns+` FROM invitations WHERE id = ?`), id))
	if err != nil {
		return i, notFound(err, "invitation "+id)
	}
	return i, nil
}

// ListInvitations implements store.Tenancy.
func (s *Store) ListInvitations(ctx context.Context, org, consortium string) ([]store.Invitation, error) {
	return queryAll(ctx, s, s.db, scanInvitation, `SELECT `+invitationColumns+` FROM invitations
		WHERE (? = '' OR org = ?) AND (? = '' OR consortium = ?) ORDER BY created_at, id`, org, org, consortium, consortium)
}

// DecideInvitation implements store.Tenancy.
func (s *Store) DecideInvitation(ctx context.Context, id, state, by string, at time.Time) (store.Invitation, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Invitation{}, err
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, s.q(`UPDATE invitations SET state = ?, decided_at = ?, decided_by = ? WHERE id = ? AND state = ?`),
		state, unix(at), by, id, store.InvitationPending)
	if err != nil {
		return store.Invitation{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Read through the transaction: SQLite has one connection.
		cur, err := scanInvitation(tx.QueryRowContext(ctx, s.q(`SELECT `+invitationColumns+` FROM invitations WHERE id = ?`), id))
		if err != nil {
			return cur, notFound(err, "invitation "+id)
		}
		return cur, fmt.Errorf("invitation %s is %s, not %s: %w", id, cur.State, store.InvitationPending, store.ErrConflict)
	}
	inv, err := scanInvitation(tx.QueryRowContext(ctx, s.q(`SELECT `+invitationColumns+` FROM invitations WHERE id = ?`), id))
	if err != nil {
		return inv, err
	}
	if state == store.InvitationAccepted {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO consortium_members (consortium, org, joined_at) VALUES (?, ?, ?)
			ON CONFLICT (consortium, org) DO NOTHING`), inv.Consortium, inv.Org, unix(at)); err != nil {
			return inv, err
		}
	}
	return inv, tx.Commit()
}

// AcquireLease implements store.Store.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO leases (name, holder, expires_at, term) VALUES (?, ?, ?, 1)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			term = leases.term + CASE WHEN leases.holder = excluded.holder THEN 0 ELSE 1 END
		WHERE leases.holder = excluded.holder OR leases.expires_at < ?`),
		name, holder, unix(now.Add(ttl)), unix(now))
	if err != nil {
		return false, 0, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, 0, err
	}
	var term int64
	var cur string
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT holder, term FROM leases WHERE name = ?`), name).Scan(&cur, &term); err != nil {
		return false, 0, fmt.Errorf("read lease %s: %w", name, err)
	}
	return n == 1 && cur == holder, term, nil
}

// ReleaseLease implements store.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?`), name, holder)
	return err
}
