// Package plugins links in every chain driver and runtime this binary ships.
// Adding one is a new package and one import line here.
package plugins

import (
	_ "github.com/chaindock/chaindock/internal/chain/cometbft"     // chain: cometbft
	_ "github.com/chaindock/chaindock/internal/chain/ethereum"     // chain: ethereum
	_ "github.com/chaindock/chaindock/internal/chain/fabric"       // chain: fabric
	_ "github.com/chaindock/chaindock/internal/runtime/kubernetes" // runtime: kubernetes
	_ "github.com/chaindock/chaindock/internal/runtime/process"    // runtime: process
)
