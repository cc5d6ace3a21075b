package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/runtime/process"
)

func newShimCmd() *cobra.Command {
	return &cobra.Command{
		Use:                process.ShimCommand,
		Short:              "Supervise one node process (started by the process runtime)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			os.Exit(process.ShimMain(args))
			return nil
		},
	}
}
