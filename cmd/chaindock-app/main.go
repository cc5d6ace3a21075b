// Command chaindock-app is the ChainDock ABCI application, run beside a
// CometBFT v0.38 node whose proxy_app is --addr. Its state is in
// --home/data/chaindock-app.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/chaindock/chaindock/internal/app"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("chaindock-app", flag.ContinueOnError)
	home := fs.String("home", "", "node home directory; the state is kept in HOME/data/chaindock-app")
	addr := fs.String("addr", "tcp://127.0.0.1:26658", "ABCI socket address to listen on")
	interval := fs.Uint64("snapshot-interval", 100, "take a state-sync snapshot every N blocks (0 disables)")
	keep := fs.Int("snapshot-keep", 2, "number of snapshots to keep")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *home == "" {
		fmt.Fprintln(os.Stderr, "chaindock-app: --home is required")
		return 2
	}
	if *keep < 1 {
		fmt.Fprintln(os.Stderr, "chaindock-app: --snapshot-keep must be at least 1")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := app.Listen(app.ServerConfig{Home: *home, Addr: *addr, SnapshotInterval: *interval, SnapshotKeep: *keep}, logger)
	if err != nil {
		logger.Error("start", "err", err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		logger.Error("stop", "err", err)
		return 1
	}
	return 0
}
