// Package fabric is the chain driver for Hyperledger Fabric 3.1 networks
// (with channel capabilities 2.5 runs too): an ordering service of Raft
// orderers run by one organisation, peers run by the network's member
// organisations, and one application channel they all join.
//
// Plan issues every identity from the organisations' own CAs (package pki),
// writes each node's local MSP, TLS files and a core.yaml or orderer.yaml of
// ChainDock's own, and builds the channel's genesis block (package
// channel). The nodes are planned Joining: once they run, Bootstrap joins
// each orderer to the channel through its channel participation API and
// each peer through a JoinChain proposal signed by its organisation's
// admin (chain.Bootstrapper). Probe reads a node's operations endpoint:
// /healthz and the channel's ledger height from /metrics. The explorer
// reads the channel from a peer's query system chaincode as its
// organisation's admin (chain.PlanLedger); a block's explorer height is
// its Fabric number plus one. Applications call chaincode through the
// platform's gateway (gateway.go): a JSON call signed by an
// application (client) identity of an organisation, endorsed by a peer
// of each organisation and broadcast to an orderer, or evaluated on one
// peer; identities.go enrols more such identities and revokes them.
//
// Contracts are chaincode as a service, deployed with Fabric's lifecycle
// (package lifecycle) as the organisations' admins (chain.Contracts): the
// package is installed on every peer, approved by each organisation and
// committed, an upgrade at the next sequence. With spec.fabric.templates
// the network has a chaincode host, chaincode-0, that serves the built-in
// templates under the package IDs of the packages its plan keeps.
//
// The binaries (peer, orderer) are the user's: the process runtime finds
// them in the server's bin directories, $FABRIC_BIN or PATH. Peers run
// chaincode through ChainDock's external builder (package builder).
package fabric
