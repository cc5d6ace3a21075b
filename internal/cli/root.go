// Package cli is the chaindock command line: the server and the client
// commands that talk to it.
package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/internal/server"
)

// Environment variables the CLI reads.
const (
	EnvServer  = "CHAINDOCK_SERVER"
	EnvToken   = "CHAINDOCK_TOKEN"
	EnvDataDir = "CHAINDOCK_DATA_DIR"
)

type globals struct {
	server    string
	tokenFile string
	dataDir   string
	output    string
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "chaindock",
		Short:         "ChainDock runs permissioned blockchain networks for a consortium",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&g.server, "server", "", "server address (default: $"+EnvServer+", else DATA_DIR/server.addr)")
	f.StringVar(&g.tokenFile, "token-file", "", "file holding the API token (default: $"+EnvToken+", else DATA_DIR/session.token after login, else DATA_DIR/admin.token)")
	f.StringVar(&g.dataDir, "data-dir", "", "data directory (default: $"+EnvDataDir+", else ~/.chaindock)")
	f.StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml")
	root.AddCommand(
		newServerCmd(g),
		newApplyCmd(g),
		newGetCmd(g),
		newDeleteCmd(g),
		newScaleCmd(g),
		newChannelCmd(g),
		newCertificatesCmd(g),
		newClusterCmd(g),
		newLogsCmd(g),
		newSearchCmd(g),
		newSubmitCmd(g),
		newQueryCmd(g),
		newPackageCmd(g),
		newContractCmd(g),
		newIdentitiesCmd(g),
		newKeysCmd(g),
		newLoginCmd(g),
		newLogoutCmd(g),
		newWhoamiCmd(g),
		newVersionCmd(),
		newShimCmd(),
		newFabricBuilderCmd(),
	)
	return root
}

// Main runs the CLI and returns the process exit code.
func Main(args []string) int {
	root := NewRoot()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var ee exitError
		if errors.As(err, &ee) {
			return int(ee)
		}
		return 1
	}
	return 0
}

// exitError carries a specific exit code.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

func (g *globals) resolveDataDir() string {
	if g.dataDir != "" {
		return g.dataDir
	}
	if d := os.Getenv(EnvDataDir); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".chaindock"
	}
	return filepath.Join(home, ".chaindock")
}

func (g *globals) serverAddr() (string, error) {
	addr := g.server
	if addr == "" {
		addr = os.Getenv(EnvServer)
	}
	if addr == "" {
		b, err := os.ReadFile(filepath.Join(g.resolveDataDir(), server.AddressFile))
		if err != nil {
			return "", fmt.Errorf("no server address: pass --server, set %s, or start a server with --data-dir %s", EnvServer, g.resolveDataDir())
		}
		addr = strings.TrimSpace(string(b))
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return addr, nil
}

// anonymousClient talks to the server without credentials (for login).
func (g *globals) anonymousClient() (*client.Client, error) {
	addr, err := g.serverAddr()
	if err != nil {
		return nil, err
	}
	return client.New(addr, ""), nil
}

func (g *globals) client() (*client.Client, error) {
	addr, err := g.serverAddr()
	if err != nil {
		return nil, err
	}
	var token string
	switch {
	case g.tokenFile != "":
		b, err := os.ReadFile(g.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("read token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	case os.Getenv(EnvToken) != "":
		token = strings.TrimSpace(os.Getenv(EnvToken))
	default:
		dir := g.resolveDataDir()
		b, err := os.ReadFile(filepath.Join(dir, SessionFile))
		if err != nil {
			b, err = os.ReadFile(filepath.Join(dir, server.TokenFile))
		}
		if err != nil {
			return nil, fmt.Errorf("no API token: log in, pass --token-file, set %s, or read %s (%w)", EnvToken, filepath.Join(dir, server.TokenFile), err)
		}
		token = strings.TrimSpace(string(b))
	}
	return client.New(addr, token), nil
}
