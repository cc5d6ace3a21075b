// Package builder is ChainDock's external builder for Fabric peers that run
// chaincode as a service, so a peer needs neither Docker nor Fabric's own
// ccaas_builder programs.
//
// A peer finds external builders through chaincode.externalBuilders in its
// core.yaml: a directory whose bin/ holds detect, build and release. Files
// returns those three as shell scripts that run the chaindock binary's
// hidden fabric-builder command, which calls Main, which calls Detect, Build
// or Release.
//
// The peer extracts a package's code.tar.gz into CHAINCODE_SOURCE_DIR and
// writes its metadata.json into CHAINCODE_METADATA_DIR before it runs
// detect. For a package of type ccaas the source holds connection.json (how
// the peer dials the chaincode server) and, optionally, CouchDB index
// definitions under META-INF. Build checks both strictly, so that a bad
// package fails at install with a message naming the field at fault rather
// than at the first invoke, and copies them into BUILD_OUTPUT_DIR. Release
// puts connection.json where the peer reads it,
// RELEASE_OUTPUT_DIR/chaincode/server/connection.json, and the indexes under
// RELEASE_OUTPUT_DIR/statedb/couchdb. Neither step leaves partial output
// when it fails.
package builder
