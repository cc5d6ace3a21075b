// Package app is the ChainDock application: a deterministic ABCI 2.0 state
// machine for CometBFT v0.38 (notarisation of documents and simple assets)
// kept in a goleveldb database, with state-sync snapshots, and the socket
// server that cmd/chaindock-app runs beside each node.
//
// The transaction format, codes, query shapes and proof scheme are those of
// package pkg/apptx. Each block's writes are held in memory from
// FinalizeBlock and written in one synchronous batch at Commit, so a crash
// in between leaves the last committed state and CometBFT replays the block.
// The app hash before the first block is sha256("chaindock-app/v1\x00" ||
// chainID), so the chain ID is covered by every app hash after it.
package app
