package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/store"
)

var _ store.Contracts = (*Store)(nil)

// CreatePackage implements store.Contracts.
func (s *Store) CreatePackage(ctx context.Context, p *apis.Package) error {
	files, err := json.Marshal(p.Files)
	if err != nil {
		return fmt.Errorf("package %s: %w", p.Ref(), err)
	}
	var created int64
	if p.CreatedAt != nil {
		created = unix(*p.CreatedAt)
	}
	return s.insert(ctx, "package "+p.Ref().String(), `INSERT INTO packages
		(owner, name, version, chain, kind, description, checksum, files, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.Owner, p.Name, p.Version, p.Chain, p.Kind, p.Description, p.Checksum, files, p.CreatedBy, created)
}

const packageColumns = `owner, name, version, chain, kind, description, checksum, created_by, created_at`

func scanPackage(row interface{ Scan(...any) error }, files *[]byte) (*apis.Package, error) {
	var (
		p       apis.Package
		created int64
	)
	dest := []any{&p.Owner, &p.Name, &p.Version, &p.Chain, &p.Kind, &p.Description, &p.Checksum, &p.CreatedBy, &created}
	if files != nil {
		dest = append(dest, files)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	t := fromUnix(created)
	p.CreatedAt = &t
	return &p, nil
}

// GetPackage implements store.Contracts.
func (s *Store) GetPackage(ctx context.Context, owner, name, version string) (*apis.Package, error) {
	what := fmt.Sprintf("package %s/%s@%s", owner, name, version)
	var files []byte
	p, err := scanPackage(s.db.QueryRowContext(ctx, s.q(`SELECT `+packageColumns+`, files FROM packages
		WHERE owner = ? AND name = ? AND version = ?`), owner, name, version), &files)
	if err != nil {
		return nil, notFound(err, what)
	}
	if err := json.Unmarshal(files, &p.Files); err != nil {
		return nil, fmt.Errorf("%s: decode files: %w", what, err)
	}
	return p, nil
}

// ListPackages implements store.Contracts.
func (s *Store) ListPackages(ctx context.Context, owners []string) ([]*apis.Package, error) {
	q := `SELECT ` + packageColumns + ` FROM packages`
	var args []any
	if owners != nil {
		if len(owners) == 0 {
			return nil, nil
		}
		q += ` WHERE owner IN (?` + strings.Repeat(", ?", len(owners)-1) + `)`
		for _, o := range owners {
			args = append(args, o)
		}
	}
	q += ` ORDER BY owner, name, version`
	out, err := queryAll(ctx, s, s.db, func(row interface{ Scan(...any) error }) (*apis.Package, error) {
		return scanPackage(row, nil)
	}, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list packages: %w", err)
	}
	return out, nil
}

// DeletePackage implements store.Contracts.
func (s *Store) DeletePackage(ctx context.Context, owner, name, version string) error {
	what := fmt.Sprintf("delete package %s/%s@%s", owner, name, version)
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM packages WHERE owner = ? AND name = ? AND version = ?`), owner, name, version)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	} else if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// AddContractRevision implements store.Contracts. The primary key makes
// two writers of the same revision collide; the check of the newest one
// makes a gap impossible.
func (s *Store) AddContractRevision(ctx context.Context, networkUID string, r apis.ContractRevision) error {
	what := fmt.Sprintf("contract %s revision %d on network %s", r.Name, r.Revision, networkUID)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = tx.Rollback() }()
	var newest int64
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(MAX(revision), 0) FROM contract_revisions
		WHERE network_uid = ? AND name = ?`), networkUID, r.Name).Scan(&newest); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if r.Revision != newest+1 {
		return fmt.Errorf("%s: the newest revision is %d: %w", what, newest, store.ErrConflict)
	}
	args := ""
	if len(r.Args) > 0 {
		b, err := json.Marshal(r.Args)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		args = string(b)
	}
	collections := ""
	if len(r.Collections) > 0 {
		b, err := json.Marshal(r.Collections)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		collections = string(b)
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO contract_revisions
		(network_uid, name, revision, action, state, package_owner, package_name, package_version, checksum, ref, tx_hash, height, actor, time, args,
		endorsement_policy, channel, collections)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		networkUID, r.Name, r.Revision, r.Action, r.State, r.Package.Owner, r.Package.Name, r.Package.Version, r.Package.Checksum,
		r.Ref, r.TxHash, r.Height, r.Actor, unix(r.Time), args, r.EndorsementPolicy, r.Channel, collections)
	if isUnique(err) {
		return fmt.Errorf("%s: %w", what, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		if isUnique(err) || isSerialization(err) {
			return fmt.Errorf("%s: %w", what, store.ErrConflict)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// isSerialization reports whether PostgreSQL gave up a transaction that
// raced another.
func isSerialization(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "SQLSTATE 40001") || strings.Contains(err.Error(), "SQLSTATE 40P01"))
}

const revisionColumns = `name, revision, action, state, package_owner, package_name, package_version, checksum, ref, tx_hash, height, actor, time, args, endorsement_policy, channel, collections`

func scanRevision(row interface{ Scan(...any) error }) (apis.ContractRevision, error) {
	var (
		r    apis.ContractRevision
		t    int64
		args string
		cols string
	)
	err := row.Scan(&r.Name, &r.Revision, &r.Action, &r.State, &r.Package.Owner, &r.Package.Name, &r.Package.Version,
		&r.Package.Checksum, &r.Ref, &r.TxHash, &r.Height, &r.Actor, &t, &args, &r.EndorsementPolicy, &r.Channel, &cols)
	r.Time = fromUnix(t)
	if err == nil && args != "" {
		err = json.Unmarshal([]byte(args), &r.Args)
	}
	if err == nil && cols != "" {
		err = json.Unmarshal([]byte(cols), &r.Collections)
	}
	return r, err
}

// ContractRevisions implements store.Contracts.
func (s *Store) ContractRevisions(ctx context.Context, networkUID, name string) ([]apis.ContractRevision, error) {
	out, err := queryAll(ctx, s, s.db, scanRevision, `SELECT `+revisionColumns+` FROM contract_revisions
		WHERE network_uid = ? AND name = ? ORDER BY revision`, networkUID, name)
	if err != nil {
		return nil, fmt.Errorf("history of contract %s on network %s: %w", name, networkUID, err)
	}
	return out, nil
}

// Contracts implements store.Contracts.
func (s *Store) Contracts(ctx context.Context, networkUID string) ([]apis.ContractRevision, error) {
	out, err := queryAll(ctx, s, s.db, scanRevision, `SELECT `+revisionColumns+` FROM contract_revisions c
		WHERE network_uid = ? AND revision = (SELECT MAX(revision) FROM contract_revisions
			WHERE network_uid = c.network_uid AND name = c.name)
		ORDER BY name`, networkUID)
	if err != nil {
		return nil, fmt.Errorf("contracts of network %s: %w", networkUID, err)
	}
	return out, nil
}

// PackageInUse implements store.Contracts.
func (s *Store) PackageInUse(ctx context.Context, ref apis.PackageRef) ([]string, error) {
	out, err := queryAll(ctx, s, s.db, func(row interface{ Scan(...any) error }) (string, error) {
		var uid string
		return uid, row.Scan(&uid)
	}, `SELECT DISTINCT network_uid FROM contract_revisions c
		WHERE package_owner = ? AND package_name = ? AND package_version = ? AND state = ?
		AND revision = (SELECT MAX(revision) FROM contract_revisions
			WHERE network_uid = c.network_uid AND name = c.name)
		ORDER BY network_uid`, ref.Owner, ref.Name, ref.Version, apis.ContractDeployed)
	if err != nil {
		return nil, fmt.Errorf("deployments of package %s: %w", ref, err)
	}
	return out, nil
}
