package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	abciserver "github.com/cometbft/cometbft/abci/server"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/libs/service"
)

// ServerConfig configures the process that cmd/chaindock-app runs.
type ServerConfig struct {
	// Home is the node's home; the state is in Home/data/chaindock-app.
	Home string
	// Addr is the ABCI socket address, e.g. tcp://127.0.0.1:26658.
	Addr             string
	SnapshotInterval uint64
	SnapshotKeep     int
}

// StateDir is where a server with that home keeps its state.
func StateDir(home string) string { return filepath.Join(home, "data", "chaindock-app") }

// Server is the application behind a CometBFT ABCI socket server.
type Server struct {
	app       *App
	srv       service.Service
	log       *slog.Logger
	closeOnce sync.Once
	closeErr  error
}

// Listen opens the state and starts serving ABCI on cfg.Addr: when it
// returns, the address accepts connections.
func Listen(cfg ServerConfig, logger *slog.Logger) (*Server, error) {
	if cfg.Home == "" || cfg.Addr == "" {
		return nil, errors.New("listen: home and addr are required")
	}
	a, err := Open(Config{Dir: StateDir(cfg.Home), SnapshotInterval: cfg.SnapshotInterval,
		SnapshotKeep: cfg.SnapshotKeep, Logger: logger})
	if err != nil {
		return nil, err
	}
	srv := abciserver.NewSocketServer(cfg.Addr, a)
	srv.SetLogger(cmtLogger{logger.With("module", "abci-server")})
	if err := srv.Start(); err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	logger.Info("serving ABCI", "addr", cfg.Addr)
	return &Server{app: a, srv: srv, log: logger}, nil
}

// App is the served application.
func (s *Server) App() *App { return s.app }

// Run serves until ctx is cancelled, then closes the server.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	return s.Close()
}

// Close stops the server, then closes the state; it is safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if err := s.srv.Stop(); err != nil && !errors.Is(err, service.ErrAlreadyStopped) {
			errs = append(errs, fmt.Errorf("stop ABCI server: %w", err))
		}
		if err := s.app.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close state: %w", err))
		}
		s.closeErr = errors.Join(errs...)
		s.log.Info("stopped")
	})
	return s.closeErr
}

// cmtLogger gives CometBFT's server our slog logger.
type cmtLogger struct{ l *slog.Logger }

func (c cmtLogger) Debug(msg string, kv ...any)  { c.l.Debug(msg, kv...) }
func (c cmtLogger) Info(msg string, kv ...any)   { c.l.Info(msg, kv...) }
func (c cmtLogger) Error(msg string, kv ...any)  { c.l.Error(msg, kv...) }
func (c cmtLogger) With(kv ...any) cmtlog.Logger { return cmtLogger{c.l.With(kv...)} }
