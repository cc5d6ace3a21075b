package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/api"
)

// SessionFile holds the CLI's session token in the data directory.
const SessionFile = "session.token"

func newLoginCmd(g *globals) *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "login --user NAME",
		Short: "Log in as a user; the password is read from standard input",
		Long: `Log in as a user. The password is read from the first line of standard input,
so it never appears in the shell's history or the process list. The session token is
kept in DATA_DIR/session.token (mode 0600) and used by later commands until it
expires or "chaindock logout" ends it.`,
		Example: `  read -rs PW; echo "$PW" | chaindock login --user alice`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return errors.New("--user is required")
			}
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && line == "" {
				return errors.New("no password on standard input")
			}
			body, _ := json.Marshal(api.LoginRequest{User: user, Password: strings.TrimRight(line, "\r\n")})
			c, err := g.anonymousClient()
			if err != nil {
				return err
			}
			var lr api.LoginResponse
			if err := c.Do(cmd.Context(), http.MethodPost, "/api/v1/login", body, "application/json", &lr); err != nil {
				return err
			}
			dir := g.resolveDataDir()
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, SessionFile), []byte(lr.Token+"\n"), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in as %s until %s\n", lr.User, lr.ExpiresAt.Local().Format("2006-01-02 15:04"))
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "user name")
	return cmd
}

func newLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the session started by login",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := filepath.Join(g.resolveDataDir(), SessionFile)
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return errors.New("not logged in")
			}
			if c, err := g.client(); err == nil {
				if resp, err := c.Raw(cmd.Context(), http.MethodPost, "/api/v1/logout", nil, ""); err == nil {
					resp.Body.Close()
				}
			}
			if err := os.Remove(path); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "logged out")
			return nil
		},
	}
}

func newWhoamiCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the CLI acts as, and its roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var w api.Whoami
			if err := c.Do(cmd.Context(), http.MethodGet, "/api/v1/whoami", nil, "", &w); err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s", w.Kind, w.Name)
			if w.PlatformAdmin {
				fmt.Fprint(cmd.OutOrStdout(), " (platform administrator)")
			}
			fmt.Fprintln(cmd.OutOrStdout())
			for org, role := range w.Roles {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s: %s\n", org, role)
			}
			return nil
		},
	}
}
