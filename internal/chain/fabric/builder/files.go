package builder

import (
	"fmt"
	"path"
	"strings"

	"github.com/chaindock/chaindock/internal/runtime"
)

// Name is the builder's name in a peer's chaincode.externalBuilders.
const Name = "chaindock-ccaas"

// Steps are the programs a peer runs from the builder's bin directory.
var Steps = []string{"detect", "build", "release"}

// Files returns bin/detect, bin/build and bin/release: scripts that run
// chaindockPath's fabric-builder command. Put them in a directory and name
// that directory (the parent of bin) in the peer's
// chaincode.externalBuilders. chaindockPath should be absolute: the peer
// runs builders with only PATH, LD_LIBRARY_PATH, LIBPATH and TMPDIR from
// its environment, in a working directory of its own.
func Files(chaindockPath string) []runtime.File {
	files := make([]runtime.File, 0, len(Steps))
	for _, step := range Steps {
		script := fmt.Sprintf("#!/bin/sh\n# ChainDock's external builder for chaincode-as-a-service: the peer runs this\n# %s step with its arguments.\nexec %s %s %s \"$@\"\n",
			step, shellQuote(chaindockPath), Command, step)
		files = append(files, runtime.File{Path: path.Join("bin", step), Data: []byte(script), Mode: 0o755})
	}
	return files
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
