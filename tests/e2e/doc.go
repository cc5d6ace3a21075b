// Package e2e runs the built chaindock binary against real CometBFT nodes.
// The tests need bin/chaindock and bin/cometbft (`make test` builds both and
// sets CHAINDOCK_BIN_DIR); without them they skip and say so.
package e2e
