package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/chaindock/chaindock/internal/store"
)

var _ store.Explorer = (*Store)(nil)

// Page sizes of Blocks and Txs.
const (
	defaultPage = 100
	maxPage     = 1000
)

func pageSize(limit int) int {
	switch {
	case limit <= 0:
		return defaultPage
	case limit > maxPage:
		return maxPage
	}
	return limit
}

// PutBlocks implements store.Explorer. A transaction takes its network,
// height and time from its block, and its index must be its place in the
// block's list, so that no two of a block's transactions can share a key
// and one be dropped as already stored.
func (s *Store) PutBlocks(ctx context.Context, blocks []store.Block) error {
	if len(blocks) == 0 {
		return nil
	}
	first, last := blocks[0], blocks[len(blocks)-1]
	what := fmt.Sprintf("put blocks %d-%d of network %s", first.Height, last.Height, first.NetworkUID)
	for _, b := range blocks {
		if b.NetworkUID == "" || b.Height < 1 {
			return fmt.Errorf("%s: block %d of network %q: a block needs a network and a height of 1 or more", what, b.Height, b.NetworkUID)
		}
		for i, t := range b.Txs {
			if t.Index != i {
				return fmt.Errorf("%s: transaction %d of block %d has index %d", what, i, b.Height, t.Index)
			}
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = tx.Rollback() }()
	// Batches hold hundreds of blocks and thousands of transactions: parse
	// each statement once.
	putBlock, err := tx.PrepareContext(ctx, s.q(`INSERT INTO blocks (network_uid, height, hash, time, proposer, app_hash, num_txs)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (network_uid, height) DO NOTHING`))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer putBlock.Close()
	putTx, err := tx.PrepareContext(ctx, s.q(`INSERT INTO txs (network_uid, height, idx, hash, time, code, log, type, data, events)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (network_uid, height, idx) DO NOTHING`))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer putTx.Close()
	for _, b := range blocks {
		res, err := putBlock.ExecContext(ctx, b.NetworkUID, b.Height, b.Hash, unix(b.Time), b.Proposer, b.AppHash, b.NumTxs)
		if err != nil {
			return fmt.Errorf("%s: block %d: %w", what, b.Height, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("%s: block %d: %w", what, b.Height, err)
		}
		if n == 0 {
			// Stored before, with its transactions in the same commit.
			continue
		}
		for _, t := range b.Txs {
			data := t.Data
			if data == nil {
				data = []byte{}
			}
			events, err := encodeEvents(t.Events)
			if err != nil {
				return fmt.Errorf("%s: transaction %s: %w", what, t.Hash, err)
			}
			if _, err := putTx.ExecContext(ctx, b.NetworkUID, b.Height, t.Index, t.Hash, unix(b.Time), int64(t.Code), t.Log, t.Type, data, events); err != nil {
				return fmt.Errorf("%s: transaction %s: %w", what, t.Hash, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// IndexedHeight implements store.Explorer. It is the highest stored
// height, which has every lower block below it because PutBlocks' callers
// write blocks in order from IndexedHeight+1 (see store.Explorer); a
// chain whose initial height is above 1 is covered as well.
func (s *Store) IndexedHeight(ctx context.Context, networkUID string) (int64, error) {
	var h int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COALESCE(MAX(height), 0) FROM blocks WHERE network_uid = ?`), networkUID).Scan(&h)
	if err != nil {
		return 0, fmt.Errorf("indexed height of network %s: %w", networkUID, err)
	}
	return h, nil
}

const blockColumns = `network_uid, height, hash, time, proposer, app_hash, num_txs`

func scanBlock(row interface{ Scan(...any) error }) (store.Block, error) {
	var b store.Block
	var t int64
	err := row.Scan(&b.NetworkUID, &b.Height, &b.Hash, &t, &b.Proposer, &b.AppHash, &b.NumTxs)
	b.Time = fromUnix(t)
	return b, err
}

// BlockByHeight implements store.Explorer.
func (s *Store) BlockByHeight(ctx context.Context, networkUID string, height int64) (*store.Block, error) {
	b, err := scanBlock(s.db.QueryRowContext(ctx, s.q(`SELECT `+blockColumns+` FROM blocks WHERE network_uid = ? AND height = ?`), networkUID, height))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("block %d of network %s", height, networkUID))
	}
	return &b, nil
}

// BlockByHash implements store.Explorer.
func (s *Store) BlockByHash(ctx context.Context, networkUID, hash string) (*store.Block, error) {
	// No ORDER BY: with one, SQLite walks the primary key in its order
	// instead of seeking blocks_by_hash. A chain's block hashes are unique.
	b, err := scanBlock(s.db.QueryRowContext(ctx, s.q(`SELECT `+blockColumns+` FROM blocks WHERE network_uid = ? AND hash = ? LIMIT 1`), networkUID, hash))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("block %s of network %s", hash, networkUID))
	}
	return &b, nil
}

// Blocks implements store.Explorer.
func (s *Store) Blocks(ctx context.Context, networkUID string, before int64, limit int) ([]store.Block, error) {
	if before <= 0 {
		// A bound rather than "? = 0 OR", which would keep the database
		// from seeking to the page.
		before = math.MaxInt64
	}
	out, err := queryAll(ctx, s, s.db, scanBlock, `SELECT `+blockColumns+` FROM blocks
		WHERE network_uid = ? AND height < ? ORDER BY height DESC LIMIT ?`, networkUID, before, pageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("list blocks of network %s before %d: %w", networkUID, before, err)
	}
	return out, nil
}

const txColumns = `network_uid, height, idx, hash, time, code, log, type, data, events`

func scanTx(row interface{ Scan(...any) error }) (store.Tx, error) {
	var t store.Tx
	var at, code int64
	var events string
	err := row.Scan(&t.NetworkUID, &t.Height, &t.Index, &t.Hash, &at, &code, &t.Log, &t.Type, &t.Data, &events)
	t.Time, t.Code = fromUnix(at), uint32(code) //nolint:gosec // stored from a uint32
	if err == nil && events != "" {
		if err = json.Unmarshal([]byte(events), &t.Events); err != nil {
			err = fmt.Errorf("events of transaction %s: %w", t.Hash, err)
		}
	}
	return t, err
}

// encodeEvents is a transaction's events as stored: a JSON array, or
// nothing for none.
func encodeEvents(events []store.Event) (string, error) {
	if len(events) == 0 {
		return "", nil
	}
	b, err := json.Marshal(events)
	if err != nil {
		return "", fmt.Errorf("events: %w", err)
	}
	return string(b), nil
}

// TxByHash implements store.Explorer. A transaction included twice is
// found at its newest place.
func (s *Store) TxByHash(ctx context.Context, networkUID, hash string) (*store.Tx, error) {
	what := fmt.Sprintf("transaction %s of network %s", hash, networkUID)
	// The newest is picked here rather than by an ORDER BY, for which
	// SQLite would walk the primary key instead of seeking txs_by_hash.
	txs, err := queryAll(ctx, s, s.db, scanTx, `SELECT `+txColumns+` FROM txs WHERE network_uid = ? AND hash = ?`, networkUID, hash)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(txs) == 0 {
		return nil, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	newest := txs[0]
	for _, t := range txs[1:] {
		if t.Height > newest.Height || t.Height == newest.Height && t.Index > newest.Index {
			newest = t
		}
	}
	return &newest, nil
}

// Txs implements store.Explorer.
func (s *Store) Txs(ctx context.Context, networkUID string, height int64, before *store.TxCursor, limit int) ([]store.Tx, error) {
	// No block is at the largest height, so (MaxInt64, 0) is above every
	// transaction; a bound keeps the query an index seek.
	cur := store.TxCursor{Height: math.MaxInt64}
	if before != nil {
		cur = *before
	}
	query := `SELECT ` + txColumns + ` FROM txs WHERE network_uid = ? AND (height, idx) < (?, ?)`
	args := []any{networkUID, cur.Height, cur.Index}
	if height > 0 {
		query += ` AND height = ?`
		args = append(args, height)
	}
	query += ` ORDER BY height DESC, idx DESC LIMIT ?`
	args = append(args, pageSize(limit))
	out, err := queryAll(ctx, s, s.db, scanTx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list transactions of network %s: %w", networkUID, err)
	}
	return out, nil
}

// forgetChunk is about how many rows, blocks and transactions, one step
// of ForgetChain deletes. On SQLite, whose one connection every call
// shares, a step then holds the database for tens of milliseconds rather
// than the seconds a chain of millions of rows takes. Each deleted
// transaction dirties a page of the index by hash, at random, and every
// step writes its dirty pages out: smaller steps cost more in all (a
// million transactions: about a minute against 8 s in one statement).
// PostgreSQL only marks the rows, and takes bigger steps.
func (s *Store) forgetChunk() int64 {
	if s.dialect == Postgres {
		return 5000
	}
	return 1000
}

// ForgetChain implements store.Explorer. It deletes the chain from its
// first block up, about forgetChunk rows per transaction so that other
// calls run between the steps, and its last step takes everything from
// where it has got to up, blocks written meanwhile included.
//
// Until that step the chain's top stays, and IndexedHeight with it: an
// indexer goes on writing the chain's new blocks on top, as it would
// anyway, and mostly waits for them. Deleting from the top down would make
// IndexedHeight fall and the indexer chase it, always with a batch on the
// way, and that batch, written after the last step from a height read
// before it, would be left above a gap. Now only a batch of new blocks on
// the way at that moment is, as after a deletion in one statement.
// Readers see the chain's newest blocks, fewer and fewer, each with all
// its transactions. Cut short (a cancelled context), it leaves such newest
// blocks, and calling it again finishes the job.
func (s *Store) ForgetChain(ctx context.Context, networkUID string) error {
	what := fmt.Sprintf("forget chain of network %s", networkUID)
	// Transactions too, so that any without their block (none should be)
	// go as well.
	var lows, tops [2]sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT
			(SELECT MIN(height) FROM blocks WHERE network_uid = ?), (SELECT MAX(height) FROM blocks WHERE network_uid = ?),
			(SELECT MIN(height) FROM txs WHERE network_uid = ?), (SELECT MAX(height) FROM txs WHERE network_uid = ?)`),
		networkUID, networkUID, networkUID, networkUID).Scan(&lows[0], &tops[0], &lows[1], &tops[1])
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !lows[0].Valid && !lows[1].Valid {
		return nil
	}
	from, top := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range lows {
		if lows[i].Valid {
			from, top = min(from, lows[i].Int64), max(top, tops[i].Int64)
		}
	}
	// The heights a step takes, set from the rows of the last so that the
	// next holds about forgetChunk.
	span := s.forgetChunk() / 10
	for done := false; !done; {
		if from, done, err = s.forgetStep(ctx, networkUID, from, top, &span); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// forgetStep deletes in one transaction the blocks, with their
// transactions, at the *span heights from from on (fewer when those hold
// well over forgetChunk rows), or once those reach top at every height
// from from on. It sets *span for the next step and returns the height
// that step starts from, or that there is none.
//
// The ranges start above what earlier steps deleted: PostgreSQL keeps
// those rows in its indexes until a vacuum, and a range over them would
// go over them again at every step, as would a walk of the index with
// ORDER BY and OFFSET (which, with stale statistics, PostgreSQL plans as
// a sort of the whole chain).
func (s *Store) forgetStep(ctx context.Context, networkUID string, from, top int64, span *int64) (int64, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = tx.Rollback() }()
	// Rows are counted from the blocks' num_txs, which PutBlocks' callers
	// set to the transactions they write: cheaper than counting those.
	var to, rows int64
	for {
		to = top
		if *span <= top-from {
			to = from + *span - 1
		}
		err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) + COALESCE(SUM(num_txs), 0) FROM blocks
			WHERE network_uid = ? AND height BETWEEN ? AND ?`), networkUID, from, to).Scan(&rows)
		if err != nil {
			return 0, false, err
		}
		if rows <= 2*s.forgetChunk() || *span == 1 {
			break
		}
		*span = nextSpan(*span, rows, s.forgetChunk())
	}
	last, upTo := to == top, to
	if last {
		upTo = math.MaxInt64 // and what was written on top meanwhile
	}
	// A block goes in the same commit as its transactions: one left
	// without them would stay so, as PutBlocks skips the transactions of a
	// block it finds stored.
	for _, q := range []string{
		`DELETE FROM txs WHERE network_uid = ? AND height BETWEEN ? AND ?`,
		`DELETE FROM blocks WHERE network_uid = ? AND height BETWEEN ? AND ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.q(q), networkUID, from, upTo); err != nil {
			return 0, false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, false, err
	}
	*span = nextSpan(*span, rows, s.forgetChunk())
	return to + 1, last, nil
}

// nextSpan is the number of heights that hold about chunk rows when span
// heights held rows, grown at most fourfold: heights with no rows say
// little of the next ones.
func nextSpan(span, rows, chunk int64) int64 {
	f := float64(span) * min(float64(chunk)/float64(max(rows, 1)), 4)
	return int64(max(1, min(f, math.MaxInt64/8)))
}

// ledgerKeys are the keys of the network with uid's ledgers (see
// store.LedgerKey): uid, and every uid/channel with rows. A network's
// keys sort next to each other, after uid, in any collation (a UID is a
// UUID, so two networks' keys differ within it): they are found by
// stepping from uid to the next key, an index seek each, until one is
// another network's.
func (s *Store) ledgerKeys(ctx context.Context, uid string) ([]string, error) {
	out := []string{uid}
	prefix := uid + "/"
	for _, table := range []string{"blocks", "txs"} {
		for last := uid; ; {
			var key string
			err := s.db.QueryRowContext(ctx, s.q(`SELECT network_uid FROM `+table+` WHERE network_uid > ? ORDER BY network_uid LIMIT 1`), last).Scan(&key)
			if errors.Is(err, sql.ErrNoRows) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("ledgers of network %s: %w", uid, err)
			}
			if !strings.HasPrefix(key, prefix) {
				break
			}
			if !slices.Contains(out, key) {
				out = append(out, key)
			}
			last = key
		}
	}
	return out, nil
}
