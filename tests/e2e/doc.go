// Package e2e runs the built chaindock binary against real CometBFT and
// geth nodes. The tests need bin/chaindock and the node binaries (`make
// test` builds them and sets CHAINDOCK_BIN_DIR); without them they skip and
// say so.
package e2e
