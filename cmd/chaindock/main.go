// Command chaindock is the ChainDock server and command line.
package main

import (
	"os"

	"github.com/chaindock/chaindock/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
