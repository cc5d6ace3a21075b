// Package version holds the build's version, set by the linker.
package version

// Version is set with -ldflags "-X github.com/chaindock/chaindock/internal/version.Version=...".
var Version = "dev"

// CometBFT is the CometBFT release the build installs and the driver targets.
const CometBFT = "v0.38.26"
