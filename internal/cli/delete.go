package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newDeleteCmd(g *globals) *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete resources",
	}
	net := &cobra.Command{
		Use:   "network NAME",
		Short: "Stop a network's nodes and remove all their files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if _, err := c.DeleteNetwork(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "network/%s deleting\n", args[0])
			if !wait {
				return nil
			}
			return waitDeleted(cmd.Context(), c, args[0], timeout, cmd.OutOrStdout())
		},
	}
	net.Flags().BoolVar(&wait, "wait", false, "wait until every node is stopped and removed")
	net.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	cmd.AddCommand(net)
	return cmd
}
