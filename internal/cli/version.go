package cli

import (
	"fmt"
	goruntime "runtime"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/version"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "chaindock %s (%s, %s/%s; cometbft %s)\n", version.Version, goruntime.Version(), goruntime.GOOS, goruntime.GOARCH, version.CometBFT)
		},
	}
}
