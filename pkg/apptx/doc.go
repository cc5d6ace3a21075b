// Package apptx is the client side of the ChainDock application (the ABCI
// application run beside each CometBFT node by cmd/chaindock-app): how to
// build, sign and encode its transactions, the codes it answers with, the
// shapes of its query responses, and how to verify a notarisation proof
// against a block header.
//
// # Transactions
//
// A transaction is one JSON object:
//
//	{"chainID":"test-chain","type":"notarize","from":"<hex ed25519 public key>",
//	 "nonce":1,"body":{...},"sig":"<base64 ed25519 signature>"}
//
// type is "notarize", "issue" or "transfer"; the body is, by type:
//
//	notarize {"hash":"<64 lower-case hex, sha256 of the document>","tags":["..."],"meta":{"k":"v"}}
//	issue    {"asset":"<[A-Z0-9]{2,12}>","amount":N}
//	transfer {"asset":"<symbol>","to":"<address>","amount":N}
//
// nonce starts at 1 and is the sender's previous nonce plus one. Unknown
// fields are refused. An address is the lower-case hex of the first 20 bytes
// of sha256(public key) (see Address).
//
// # Sign bytes
//
// The signature is ed25519 over the canonical sign bytes: the envelope
// without "sig", encoded as compact JSON (no spaces) with the keys in this
// order: chainID, type, from, nonce, body. The body's keys are in the order
// listed above; empty tags and meta are left out; meta keys are sorted;
// strings use JSON escapes only for '"', '\\' and control characters (no
// HTML escaping). SignBytes computes them; Sign and Encode produce
// exactly the sign bytes with ,"sig":"..." added before the closing brace.
// The application re-derives the sign bytes from the decoded transaction, so
// a transaction re-encoded with other whitespace or key order still verifies
// (but has another hash).
//
// # Queries
//
// ABCI queries take a path and parameters, given either in the path
// ("/account?address=...") or as a JSON object in the query data
// ({"address":"..."}). Values are JSON; a refused query has a non-zero code
// (CodeNotFound, CodeBadQuery, CodeUnknownPath) and a log saying why. All
// queries read the last committed state.
//
//	/account        address              -> Account
//	/notary/doc     hash                 -> NotaryRecord
//	/notary/proof   hash                 -> NotaryProof
//	/asset/balance  address, asset       -> Balance
//	/asset/history  address[, limit, after] -> History (newest last; limit 1..500, default 100;
//	                                         after: the seq of the last entry already seen)
//	/asset/info     symbol               -> AssetInfo
//	/info                                -> Info
//
// # App hash and proofs
//
// Every block that changes the state has a list of leaves, one per key it
// wrote, EncodeLeaf(key, new value), sorted by key. Its root is
// merkle.HashFromByteSlices(leaves) (CometBFT's crypto/merkle) and
//
//	AppHash_H = sha256(AppHash_{H-1} || root_H)
//
// A block that changes nothing keeps the previous app hash; before the first
// block the app hash commits to the chain ID (see the application). A
// NotaryProof carries the leaf of the document's record, its merkle proof,
// the root and the app hash before and after the block, so VerifyProof can
// check the record against a trusted app hash. CometBFT puts the app hash of
// the state after block H in the header of block H+1: verify a proof of
// height H against header(H+1).AppHash.
package apptx
