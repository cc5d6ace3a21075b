package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/chain/fabric/builder"
)

func newFabricBuilderCmd() *cobra.Command {
	return &cobra.Command{
		Use:                builder.Command + " detect|build|release ARGS...",
		Short:              "Run a step of the external builder a Fabric peer uses for chaincode-as-a-service packages",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			os.Exit(builder.Main(args, os.Stderr))
			return nil
		},
	}
}
