// Package lifecycle deploys chaincode-as-a-service on a Fabric channel
// through the peers' _lifecycle system chaincode, as Fabric's peer CLI
// does, without the CLI.
//
// Package makes the ccaas package a peer installs: metadata.json and a
// code.tar.gz holding the connection.json that ChainDock's external
// builder (package builder) checks and releases. Its bytes depend only on
// its input, so the same chaincode server gives the same package ID on
// every peer and after every restart.
//
// The steps follow Fabric's lifecycle: each organisation's admin installs
// the package on its peers (Install) and approves a definition for its
// organisation (Approve); once enough organisations approved
// (CheckCommitReadiness), one admin commits the definition with
// endorsements from the approving organisations' peers (Commit), and
// Committed reads what the channel runs. An upgrade is the same steps
// with a new package and the next sequence. An organisation that joins
// the channel later catches up with the same steps at the committed
// sequence: Definitions lists what the channel runs, Approved reads a
// member organisation's approval with its package, InstalledPackageBytes
// copies that package from a member peer.
//
// A definition's endorsement policy is the channel's default, another
// channel policy, or a signature policy: ParseSignaturePolicy reads the
// peer CLI's expressions (OR('Org1MSP.peer', ...)), RulePolicy writes ANY,
// MAJORITY or ALL of some organisations as one, and
// SignatureValidationParameter gives the bytes every approval and the
// commit carry.
//
// Every step takes its peer and orderer connections (Dial makes them),
// the admin's signing identity and the channel explicitly, sends signed
// proposals to the peer's Endorser service and, for approvals and commits,
// the endorsed transaction to the orderer's AtomicBroadcast service. The
// steps are idempotent, so a controller can repeat one after a failure:
// a package already installed, a definition already approved or already
// committed is not sent again. None of them waits for a transaction to
// be committed: the caller polls Committed (or CheckCommitReadiness)
// and requeues.
package lifecycle
