package builder

import (
	"errors"
	"fmt"
	"io"
)

// Command is the hidden subcommand of the chaindock binary that runs Main.
const Command = "fabric-builder"

// Exit codes of Main. Detect's 1 is also what Fabric reads as "not mine".
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

const usage = `usage: chaindock ` + Command + ` detect CHAINCODE_SOURCE_DIR CHAINCODE_METADATA_DIR
       chaindock ` + Command + ` build CHAINCODE_SOURCE_DIR CHAINCODE_METADATA_DIR BUILD_OUTPUT_DIR
       chaindock ` + Command + ` release BUILD_OUTPUT_DIR RELEASE_OUTPUT_DIR`

// Main runs one step with the arguments the peer passes and returns the
// exit code the peer expects: 0 when detect claims the package or build or
// release succeeds, 1 otherwise (with the reason on stderr), 2 for a wrong
// command line.
func Main(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return ExitUsage
	}
	step, args := args[0], args[1:]
	var want int
	var run func() error
	switch step {
	case "detect":
		want, run = 2, func() error { return Detect(args[0], args[1]) }
	case "build":
		want, run = 3, func() error { return Build(args[0], args[1], args[2]) }
	case "release":
		want, run = 2, func() error { return Release(args[0], args[1]) }
	default:
		fmt.Fprintf(stderr, "unknown step %q\n%s\n", step, usage)
		return ExitUsage
	}
	if len(args) != want {
		fmt.Fprintf(stderr, "%s takes %d arguments, got %d\n%s\n", step, want, len(args), usage)
		return ExitUsage
	}
	if err := run(); err != nil {
		msg := err.Error()
		if step != "detect" {
			// One problem a line: the peer logs the builder's stderr line
			// by line.
			msg = describe(err)
		}
		fmt.Fprintf(stderr, "chaindock %s %s: %s\n", Command, step, msg)
		return ExitFailed
	}
	return ExitOK
}

// describe spells out every problem of a validation error on its own line.
func describe(err error) string {
	var out string
	var walk func(error)
	walk = func(err error) {
		var joined interface{ Unwrap() []error }
		if errors.As(err, &joined) {
			for _, e := range joined.Unwrap() {
				walk(e)
			}
			return
		}
		var ve *ValidationError
		if errors.As(err, &ve) {
			out += "\n  invalid " + ve.File + ":"
			for _, p := range ve.Problems {
				out += "\n    " + p.Error()
			}
			return
		}
		out += "\n  " + err.Error()
	}
	walk(err)
	return "the package is refused:" + out
}
