package cli

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/server"
	"github.com/chaindock/chaindock/internal/store"
)

func newServerCmd(g *globals) *cobra.Command {
	var (
		listen        string
		storeDSN      string
		binDirs       []string
		portRange     string
		probeInterval time.Duration
		rateLimit     float64
		gatewayRate   float64
		controller    bool
		logLevel      string
		logFormat     string
		images        []string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API, the store and the controller",
		Long: `Run the ChainDock server: the REST API, the store (SQLite in the data
directory) and the controller that deploys, heals and deletes networks.

Nodes run in their own sessions and keep running when the server stops; the
next server started on the same data directory re-adopts them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			var h slog.Handler
			switch logFormat {
			case "text":
				h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
			case "json":
				h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
			default:
				return fmt.Errorf("--log-format must be text or json, not %q", logFormat)
			}
			ports, err := parsePortRange(portRange)
			if err != nil {
				return err
			}
			if len(binDirs) == 0 {
				if exe, err := os.Executable(); err == nil {
					binDirs = []string{filepath.Dir(exe)}
				}
			}
			// Fabric's binaries are the user's own build or release,
			// rarely beside chaindock's.
			if d := os.Getenv("FABRIC_BIN"); d != "" {
				binDirs = append(binDirs, d)
			}
			dataDir, err := filepath.Abs(g.resolveDataDir())
			if err != nil {
				return err
			}
			imageMap := map[string]string{}
			for _, im := range images {
				prog, ref, ok := strings.Cut(im, "=")
				if !ok || prog == "" || ref == "" || strings.ContainsAny(ref, " \t") {
					return fmt.Errorf("--image %q: want PROGRAM=IMAGE, such as cometbft=registry.example/cometbft:v0.38.26", im)
				}
				imageMap[prog] = ref
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return server.Run(ctx, server.Config{
				DataDir: dataDir, Listen: listen, StoreDSN: storeDSN, BinDirs: binDirs, Ports: ports,
				ProbeInterval: probeInterval, RateLimit: rateLimit, GatewayRate: gatewayRate, NoController: !controller, Log: slog.New(h),
				Images: imageMap,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:7400", "API address (port 0 picks a free port)")
	f.StringVar(&storeDSN, "store-dsn", os.Getenv("CHAINDOCK_STORE_DSN"), "PostgreSQL URL (postgres://user:pass@host:5432/db); empty: SQLite in the data directory ($CHAINDOCK_STORE_DSN)")
	f.StringSliceVar(&binDirs, "bin-dir", nil, "directories searched for node programs before PATH (default: the directory of this binary); $FABRIC_BIN is searched after them")
	f.StringVar(&portRange, "port-range", "30000-39999", "host ports handed to nodes")
	f.DurationVar(&probeInterval, "probe-interval", 2*time.Second, "how often running nodes are probed")
	f.BoolVar(&controller, "controller", true, "run the controller; false serves the API only (a replica beside a server that runs it)")
	f.Float64Var(&gatewayRate, "gateway-rate", 0, "transactions per second each caller may submit to one network through the gateway, with bursts of twice that; 0 for no limit beyond --rate-limit")
	f.Float64Var(&rateLimit, "rate-limit", 100, "API requests per second each caller (user, API key or token) may make, with bursts of twice that; 0 for no limit")
	f.StringArrayVar(&images, "image", nil, "PROGRAM=IMAGE: the container image of a node program (cometbft, geth, chaindock-app) on the kubernetes runtime, instead of the official one; repeat for each")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

func parsePortRange(s string) (store.PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || a < 1024 || b > 65535 || a > b {
		return store.PortRange{}, fmt.Errorf("--port-range must be LOW-HIGH within 1024-65535, not %q", s)
	}
	return store.PortRange{Low: a, High: b}, nil
}
