package app

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/chaindock/chaindock/internal/version"
	"github.com/chaindock/chaindock/pkg/apptx"
)

var _ abci.Application = (*App)(nil)

// AppVersion is the application protocol version reported by Info.
const AppVersion uint64 = 1

// DefaultChunkSize is the size of snapshot chunks.
const DefaultChunkSize = 1 << 20

// Config configures an App.
type Config struct {
	// Dir holds the database (Dir/state.db) and the snapshots
	// (Dir/snapshots); it is created if missing.
	Dir string
	// SnapshotInterval takes a snapshot at every height that is a multiple
	// of it; 0 disables snapshots.
	SnapshotInterval uint64
	// SnapshotKeep is how many snapshots are kept (at least 1).
	SnapshotKeep int
	// ChunkSize is the snapshot chunk size; 0 means DefaultChunkSize.
	ChunkSize int
	Logger    *slog.Logger
}

// App is the ChainDock application. Its methods are safe for concurrent use;
// CometBFT's socket server calls them one at a time anyway.
type App struct {
	mu     sync.Mutex
	cfg    Config
	log    *slog.Logger
	db     *dbm.GoLevelDB
	closed bool

	// Committed state.
	chainID string
	height  int64
	appHash []byte

	pending *pendingBlock // finalized, not yet committed
	check   *overlay      // CheckTx's view: committed state plus mempool txs

	snaps     *snapshotStore
	snapWG    sync.WaitGroup
	restoring *restore
}

type pendingBlock struct {
	height  int64
	writes  *overlay
	record  *blockRecord // nil if the block changed nothing
	appHash []byte
}

// Open opens (or creates) the application's state in cfg.Dir.
func Open(cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.SnapshotKeep < 1 {
		cfg.SnapshotKeep = 1
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	db, err := dbm.NewGoLevelDB("state", cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("open state database in %s: %w", cfg.Dir, err)
	}
	a := &App{cfg: cfg, log: cfg.Logger, db: db,
		snaps: &snapshotStore{dir: filepath.Join(cfg.Dir, "snapshots"), keep: cfg.SnapshotKeep, chunkSize: cfg.ChunkSize}}
	if err := a.loadMeta(); err != nil {
		_ = db.Close()
		return nil, err
	}
	a.check = newOverlay(dbReader{db})
	a.log.Info("state opened", "dir", cfg.Dir, "height", a.height, "app_hash", fmt.Sprintf("%X", a.appHash), "chain", a.chainID)
	return a, nil
}

func (a *App) loadMeta() error {
	h, err := a.db.Get([]byte(keyHeight))
	if err != nil {
		return fmt.Errorf("read height: %w", err)
	}
	a.height = 0
	if len(h) == 8 {
		a.height = int64(binary.BigEndian.Uint64(h)) //nolint:gosec // written from a non-negative int64
	}
	if a.appHash, err = a.db.Get([]byte(keyAppHash)); err != nil {
		return fmt.Errorf("read app hash: %w", err)
	}
	id, err := a.db.Get([]byte(keyChainID))
	if err != nil {
		return fmt.Errorf("read chain ID: %w", err)
	}
	a.chainID = string(id)
	return nil
}

// Close waits for a snapshot being written and closes the database.
func (a *App) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.snapWG.Wait()
	return a.db.Close()
}

var errClosed = errors.New("application closed")

// lock takes the mutex unless the app is closed.
func (a *App) lock() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return errClosed
	}
	return nil
}

// Info reports the committed height and app hash, from which CometBFT's
// handshake replays the blocks the application lacks.
func (a *App) Info(_ context.Context, _ *abci.RequestInfo) (*abci.ResponseInfo, error) {
	if err := a.lock(); err != nil {
		return nil, err
	}
	defer a.mu.Unlock()
	res := &abci.ResponseInfo{Data: "chaindock-app", Version: version.Version, AppVersion: AppVersion,
		LastBlockHeight: a.height}
	if a.height > 0 {
		res.LastBlockAppHash = a.appHash
	}
	return res, nil
}

// InitChain records the chain ID and returns the genesis app hash, which
// commits to it.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	if err := a.lock(); err != nil {
		return nil, err
	}
	defer a.mu.Unlock()
	if a.height != 0 {
		return nil, fmt.Errorf("init chain: the state is already at height %d", a.height)
	}
	if req.ChainId == "" {
		return nil, errors.New("init chain: empty chain ID")
	}
	appHash := genesisAppHash(req.ChainId)
	b := a.db.NewBatch()
	defer b.Close()
	for k, v := range map[string][]byte{keyChainID: []byte(req.ChainId), keyAppHash: appHash, keyHeight: be64(0)} {
		if err := b.Set([]byte(k), v); err != nil {
			return nil, fmt.Errorf("init chain: %w", err)
		}
	}
	if err := b.WriteSync(); err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	a.chainID, a.appHash, a.pending = req.ChainId, appHash, nil
	a.check = newOverlay(dbReader{a.db})
	a.log.Info("chain initialised", "chain", req.ChainId, "initial_height", req.InitialHeight, "app_hash", fmt.Sprintf("%X", appHash))
	return &abci.ResponseInitChain{AppHash: appHash}, nil
}

// CheckTx applies the transaction to the mempool's view of the state, so
// that a sender's consecutive nonces are accepted before they are in a block.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	if err := a.lock(); err != nil {
		return nil, err
	}
	defer a.mu.Unlock()
	res := execTx(a.check, req.Tx, txContext{chainID: a.chainID, height: a.height + 1})
	return &abci.ResponseCheckTx{Code: res.Code, Log: res.Log, Codespace: res.Codespace}, nil
}

// PrepareProposal keeps the mempool's order, within the size limit.
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	txs := make([][]byte, 0, len(req.Txs))
	var total int64
	for _, tx := range req.Txs {
		total += int64(len(tx))
		if total > req.MaxTxBytes {
			break
		}
		txs = append(txs, tx)
	}
	return &abci.ResponsePrepareProposal{Txs: txs}, nil
}

// ProcessProposal accepts every proposal: FinalizeBlock checks each
// transaction again and refuses the bad ones with a code, which a proposer
// cannot use to halt the chain.
func (a *App) ProcessProposal(context.Context, *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

func (a *App) ExtendVote(context.Context, *abci.RequestExtendVote) (*abci.ResponseExtendVote, error) {
	return &abci.ResponseExtendVote{}, nil
}

func (a *App) VerifyVoteExtension(context.Context, *abci.RequestVerifyVoteExtension) (*abci.ResponseVerifyVoteExtension, error) {
	return &abci.ResponseVerifyVoteExtension{Status: abci.ResponseVerifyVoteExtension_ACCEPT}, nil
}

// FinalizeBlock applies the block's transactions in order, each against the
// state left by the ones before it, and computes the new app hash. Nothing
// is written until Commit.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	if err := a.lock(); err != nil {
		return nil, err
	}
	defer a.mu.Unlock()
	if a.chainID == "" {
		return nil, errors.New("finalize block: InitChain has not been called")
	}
	if a.height != 0 && req.Height != a.height+1 {
		return nil, fmt.Errorf("finalize block: height %d, but the committed height is %d", req.Height, a.height)
	}
	blk := newOverlay(dbReader{a.db})
	tc := txContext{chainID: a.chainID, height: req.Height, time: req.Time}
	results := make([]*abci.ExecTxResult, len(req.Txs))
	for i, tx := range req.Txs {
		results[i] = execTx(blk, tx, tc)
	}
	p := &pendingBlock{height: req.Height, writes: blk, appHash: a.appHash}
	if len(blk.writes) > 0 {
		leaves := blk.leaves()
		p.appHash = apptx.NextAppHash(a.appHash, merkleRoot(leaves))
		p.record = &blockRecord{PrevAppHash: a.appHash, AppHash: p.appHash, Leaves: leaves}
	}
	a.pending = p
	return &abci.ResponseFinalizeBlock{TxResults: results, AppHash: p.appHash}, nil
}

// Commit writes the finalized block in one synchronous batch and, at the
// snapshot interval, starts a snapshot of the state just committed.
func (a *App) Commit(_ context.Context, _ *abci.RequestCommit) (*abci.ResponseCommit, error) {
	if err := a.lock(); err != nil {
		return nil, err
	}
	defer a.mu.Unlock()
	p := a.pending
	if p == nil {
		return nil, errors.New("commit: no finalized block")
	}
	b := a.db.NewBatch()
	defer b.Close()
	set := func(k, v []byte) error { return b.Set(k, v) }
	var err error
	for k, v := range p.writes.writes {
		err = errors.Join(err, set([]byte(k), v))
	}
	if p.record != nil {
		err = errors.Join(err, set(blockKey(p.height), p.record.encode()))
	}
	err = errors.Join(err, set([]byte(keyHeight), be64(heightU(p.height))), set([]byte(keyAppHash), p.appHash))
	if err == nil {
		err = b.WriteSync()
	}
	if err != nil {
		return nil, fmt.Errorf("commit height %d: %w", p.height, err)
	}
	a.height, a.appHash, a.pending = p.height, p.appHash, nil
	a.check = newOverlay(dbReader{a.db})
	if iv := a.cfg.SnapshotInterval; iv > 0 && heightU(a.height)%iv == 0 {
		a.startSnapshot()
	}
	return &abci.ResponseCommit{}, nil
}

func merkleRoot(leaves [][]byte) []byte { return merkle.HashFromByteSlices(leaves) }
