// Package templates holds the Solidity contract templates that ship with the
// Ethereum driver, Notary and Token, together with their build artifacts.
//
// The artifacts under build/ are checked in: compile.js produces them with
// solc-js 0.8.26 for the London EVM (the chain's genesis fork, so there is
// no PUSH0), optimizer on at 200 runs. `make contracts` regenerates them;
// the package tests check they are reproducible when CHAINDOCK_SOLC_DIR
// names a solc-js module (scripts/solc.sh installs one and prints it).
package templates

import (
	"embed"
	"fmt"
)

//go:embed *.sol build/*.json
var files embed.FS

// names are the template contract names.
var names = map[string]bool{"Notary": true, "Token": true}

// Source returns the Solidity source of a template by contract name
// ("Notary" or "Token"); error for an unknown name.
func Source(name string) ([]byte, error) {
	if !names[name] {
		return nil, fmt.Errorf("templates: unknown contract template %q", name)
	}
	return files.ReadFile(name + ".sol")
}

// BuildJSON returns the checked-in build artifact (build/<name>.json) for a
// known name; nil for unknown.
func BuildJSON(name string) []byte {
	if !names[name] {
		return nil
	}
	b, err := files.ReadFile("build/" + name + ".json")
	if err != nil {
		return nil
	}
	return b
}
