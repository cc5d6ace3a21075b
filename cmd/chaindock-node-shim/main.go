// Command chaindock-node-shim supervises one node process for the process
// runtime. It is the same code as "chaindock node-shim", in a binary that
// links nothing else, so that each node's supervisor starts in milliseconds
// and holds little memory.
package main

import (
	"os"

	"github.com/chaindock/chaindock/internal/runtime/process"
)

func main() {
	os.Exit(process.ShimMain(os.Args[1:]))
}
