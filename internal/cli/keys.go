package cli

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/api"
)

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Inspect and rotate the key that seals stored secrets"}
	show := func(cmd *cobra.Command, method, path string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		var ks api.KeyStatus
		if err := c.Do(cmd.Context(), method, path, nil, "", &ks); err != nil {
			return err
		}
		if g.output != "table" {
			return printObject(cmd.OutOrStdout(), g.output, ks)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "primary key: %s\nkeys:        %s\n", ks.Primary, strings.Join(ks.Keys, ", "))
		if method == http.MethodPost {
			fmt.Fprintf(cmd.OutOrStdout(), "resealed:    %d stored secrets\n", ks.Resealed)
		}
		return nil
	}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "Show the key IDs (never the keys)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return show(cmd, http.MethodGet, "/api/v1/admin/keys") },
	}, &cobra.Command{
		Use: "rotate", Short: "Make a new primary key and reseal every stored secret with it, without downtime", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, http.MethodPost, "/api/v1/admin/keys/rotate")
		},
	})
	return cmd
}
