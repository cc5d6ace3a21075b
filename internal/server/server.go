// Package server assembles a ChainDock server from its parts (store,
// runtimes, controller, API) and runs it until its context ends.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/clusters"
	"github.com/chaindock/chaindock/internal/controller"
	"github.com/chaindock/chaindock/internal/explorer"
	"github.com/chaindock/chaindock/internal/leader"
	"github.com/chaindock/chaindock/internal/metrics"
	_ "github.com/chaindock/chaindock/internal/plugins" // every chain driver and runtime
	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/secrets"
	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/internal/store/postgres"
	"github.com/chaindock/chaindock/internal/store/sqlite"
)

// Files in the data directory.
const (
	TokenFile   = "admin.token"
	AddressFile = "server.addr"
	KeyringFile = "keyring.json"
	lockFile    = "server.lock"
	idFile      = "server.id"
	dbFile      = "chaindock.db"
)

// Config configures a server.
type Config struct {
	DataDir string
	// Listen is the API's address; port 0 picks a free one, written to
	// DATA_DIR/server.addr.
	Listen string
	// StoreDSN selects PostgreSQL ("postgres://..."); empty means SQLite in
	// the data directory.
	StoreDSN string
	// BinDirs are searched for node programs before PATH.
	BinDirs       []string
	Ports         store.PortRange
	ProbeInterval time.Duration
	// NoController serves the API only, for replicas beside a server that
	// runs the controller.
	NoController bool
	// RateLimit is the API requests per second each caller may make.
	RateLimit float64
	// GatewayRate is the transactions per second each caller may submit
	// to one network; zero for no limit.
	GatewayRate float64
	Log         *slog.Logger
	// Images replace the official image of a node program (by program
	// name) on runtimes that run containers.
	Images map[string]string
	// Ready, if set, is called with the API's address once it listens.
	Ready func(addr string)
}

// Run runs the server until ctx ends. Nodes keep running after it returns:
// the next server re-adopts them.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	token, err := EnsureToken(cfg.DataDir)
	if err != nil {
		return err
	}
	raw, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer raw.Close()
	keys, err := secrets.Load(filepath.Join(cfg.DataDir, KeyringFile))
	if err != nil {
		return err
	}
	st := &secrets.SealedStore{Store: raw, Keys: keys}
	// Finish a rotation a crash interrupted, and seal anything older.
	if n, err := st.Reencrypt(ctx); err != nil {
		return fmt.Errorf("reseal stored secrets: %w", err)
	} else if n > 0 {
		log.Info("resealed stored secrets with the primary key", "count", n, "key", keys.Primary())
	}
	if err := keys.Retire(); err != nil {
		return err
	}

	runtimes := map[string]runtime.Runtime{}
	for _, name := range runtime.Names() {
		rt, err := runtime.New(name, runtime.Config{DataDir: filepath.Join(cfg.DataDir, "runtime", name), BinDirs: cfg.BinDirs,
			Clusters: clusters.Source{Store: st}})
		if err != nil {
			return fmt.Errorf("runtime %s: %w", name, err)
		}
		runtimes[name] = rt
		if c, ok := rt.(io.Closer); ok {
			defer c.Close()
		}
		if r, ok := rt.(chain.Router); ok {
			defer chain.AddRouter(r)()
		}
	}
	m := metrics.New()
	for _, rt := range runtimes {
		// Runtimes that count their own work (requests to clusters).
		if c, ok := rt.(prometheus.Collector); ok {
			m.Registry.MustRegister(c)
		}
	}
	ctrlOpts := controller.Options{
		Store: st, Runtimes: runtimes, Metrics: m, Log: log, Host: "127.0.0.1",
		Ports: cfg.Ports, ProbeInterval: cfg.ProbeInterval, Images: cfg.Images,
	}
	// The controller of the current leadership term, if this server leads.
	var ctrl atomic.Pointer[controller.Controller]
	enqueue := func(name string) {
		if c := ctrl.Load(); c != nil {
			c.Enqueue(name)
		}
	}
	handler := api.New(api.Options{
		Store: st, Keys: st, Token: token, Enqueue: enqueue, Runtimes: runtimes, Metrics: m, Log: log, RateLimit: cfg.RateLimit, GatewayRate: cfg.GatewayRate,
		Registries: apis.Registries{Chains: chain.Names(), Runtimes: runtime.Names()},
		Validate: func(spec *apis.NetworkSpec) apis.ErrorList {
			d, err := chain.Get(spec.Chain)
			if err != nil {
				return nil // ValidateNetwork already names the unknown chain
			}
			return d.Validate(spec)
		},
	})

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	addr := ln.Addr().String()
	if err := writeFile(filepath.Join(cfg.DataDir, AddressFile), []byte("http://"+addr+"\n"), 0o600); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	// controllerDone closes when the controller has stopped and the lease
	// is released; the store must stay open until then.
	controllerDone := make(chan struct{})
	if cfg.NoController {
		close(controllerDone)
	} else {
		// One server at a time runs the controller: trivially with SQLite
		// (one server per data directory), by lease with PostgreSQL.
		el := leader.New(raw, "controller", log)
		// The holder is the data directory's identity: a server restarted
		// on it (kill -9 included) takes its own lease back at once, while
		// another server waits for the lease to expire.
		id, err := ensureID(cfg.DataDir)
		if err != nil {
			return err
		}
		el.Holder = id
		go func() {
			defer close(controllerDone)
			errc <- el.Run(ctx, func(ctx context.Context) error {
				c := controller.New(ctrlOpts)
				ctrl.Store(c)
				defer ctrl.Store(nil)
				// The leader also indexes the chains for the explorer.
				ix := &explorer.Indexer{Store: st, Log: log.With("component", "explorer")}
				var wg sync.WaitGroup
				defer wg.Wait()
				wg.Go(func() { _ = ix.Run(ctx) })
				return c.Start(ctx)
			})
		}()
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve: %w", err)
			return
		}
		errc <- nil
	}()
	log.Info("chaindock server started", "address", "http://"+addr, "data_dir", cfg.DataDir,
		"chains", strings.Join(chain.Names(), ","), "runtimes", strings.Join(runtime.Names(), ","))
	if cfg.Ready != nil {
		cfg.Ready(addr)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	_ = srv.Shutdown(shutdownCtx)
	select {
	case <-controllerDone:
	case <-shutdownCtx.Done():
		log.Warn("the controller did not stop in time")
	}
	log.Info("chaindock server stopped; nodes keep running and are re-adopted by the next server")
	return runErr
}

func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	switch {
	case cfg.StoreDSN == "":
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, dbFile))
	case strings.HasPrefix(cfg.StoreDSN, "postgres://"), strings.HasPrefix(cfg.StoreDSN, "postgresql://"):
		return postgres.Open(ctx, cfg.StoreDSN)
	default:
		return nil, fmt.Errorf("--store-dsn must be a postgres:// URL, or empty for SQLite in the data directory")
	}
}

// EnsureToken returns the admin token of dataDir, creating it (mode 0600)
// on the first start.
func EnsureToken(dataDir string) (string, error) {
	path := filepath.Join(dataDir, TokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%s is readable by others (mode %o); chmod 600 it", path, fi.Mode().Perm())
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("%s holds a token shorter than 32 characters", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := writeFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}

// ensureID returns the data directory's server identity, made on first use.
func ensureID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, idFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	host, _ := os.Hostname()
	id := host + "/" + uuid.NewString()
	if err := writeFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write server identity: %w", err)
	}
	return id, nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// lockDataDir makes sure one server at a time uses a data directory. The
// kernel drops the lock when the process dies, even by kill -9.
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another chaindock server is using the data directory %s", dir)
	}
	return func() { f.Close() }, nil
}
