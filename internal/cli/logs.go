package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
)

func newLogsCmd(g *globals) *cobra.Command {
	var (
		follow bool
		tail   int
	)
	cmd := &cobra.Command{
		Use:   "logs NETWORK/NODE",
		Short: "Print a node's output",
		Example: `  chaindock logs demo/validator-0 --tail 20
  chaindock logs network/demo/validator-0 -f`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := strings.TrimPrefix(args[0], "network/")
			network, node, ok := strings.Cut(ref, "/")
			if !ok || network == "" || node == "" {
				return fmt.Errorf("name a node as NETWORK/NODE (for example demo/validator-0), not %q", args[0])
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return c.Logs(ctx, network, node, tail, follow, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep streaming new output")
	cmd.Flags().IntVar(&tail, "tail", 0, "start with the last N lines (0: all)")
	return cmd
}
