// Package notary is ChainDock's built-in notarisation chaincode: it records
// that a document with a given SHA-256 digest existed, with a note, who
// submitted it and when, once and for good.
package notary

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// Name is the contract's name in the chaincode, and the template's.
const Name = "notary"

// MaxNoteBytes bounds a note: the ledger keeps it forever on every peer.
const MaxNoteBytes = 4096

// Record is one notarised digest.
type Record struct {
	// Hash is the SHA-256 digest, 64 lower-case hexadecimal digits.
	Hash string `json:"hash"`
	Note string `json:"note"`
	// Submitter is the MSP ID of the client that notarised it.
	Submitter string `json:"submitter"`
	TxID      string `json:"txId"`
	// Timestamp is the transaction's time (RFC 3339, UTC), which the
	// client sets and every endorser sees alike.
	Timestamp string `json:"timestamp"`
}

// Contract is the notarisation contract.
type Contract struct {
	contractapi.Contract
}

// New returns the contract, named Name.
func New() *Contract {
	c := &Contract{}
	c.Name = Name
	c.Info.Title = "ChainDock notarisation"
	c.Info.Version = "1.0.0"
	return c
}

// Notarize records hash (a hex SHA-256 digest, in either case) with note.
// A digest is notarised once: a second time is refused, so the first
// record stands.
func (c *Contract) Notarize(ctx contractapi.TransactionContextInterface, hash string, note string) (*Record, error) {
	key, err := normalizeHash(hash)
	if err != nil {
		return nil, err
	}
	if len(note) > MaxNoteBytes {
		return nil, fmt.Errorf("note is %d bytes, more than the %d allowed", len(note), MaxNoteBytes)
	}
	stub := ctx.GetStub()
	existing, err := c.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return nil, fmt.Errorf("hash %s is already notarised, by %s in transaction %s at %s", key, existing.Submitter, existing.TxID, existing.Timestamp)
	}
	msp, err := ctx.GetClientIdentity().GetMSPID()
	if err != nil {
		return nil, fmt.Errorf("read the submitter's MSP ID: %w", err)
	}
	ts, err := stub.GetTxTimestamp()
	if err != nil {
		return nil, fmt.Errorf("read the transaction time: %w", err)
	}
	rec := &Record{
		Hash:      key,
		Note:      note,
		Submitter: msp,
		TxID:      stub.GetTxID(),
		Timestamp: ts.AsTime().UTC().Format(time.RFC3339Nano),
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if err := stub.PutState(key, data); err != nil {
		return nil, fmt.Errorf("write record of %s: %w", key, err)
	}
	return rec, nil
}

// Get returns the record of hash, or an error when it was never notarised.
func (c *Contract) Get(ctx contractapi.TransactionContextInterface, hash string) (*Record, error) {
	key, err := normalizeHash(hash)
	if err != nil {
		return nil, err
	}
	rec, err := c.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("hash %s is not notarised", key)
	}
	return rec, nil
}

// get reads a record, nil when there is none.
func (c *Contract) get(ctx contractapi.TransactionContextInterface, key string) (*Record, error) {
	data, err := ctx.GetStub().GetState(key)
	if err != nil {
		return nil, fmt.Errorf("read record of %s: %w", key, err)
	}
	if data == nil {
		return nil, nil
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("record of %s is corrupt: %w", key, err)
	}
	return &rec, nil
}

// normalizeHash checks that hash is a hex SHA-256 digest and lower-cases
// it, so that one digest has one key whatever case it is written in.
func normalizeHash(hash string) (string, error) {
	if len(hash) != 64 {
		return "", fmt.Errorf("hash %q is not a SHA-256 digest: want 64 hexadecimal digits, got %d characters", hash, len(hash))
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return "", fmt.Errorf("hash %q is not a SHA-256 digest: want 64 hexadecimal digits", hash)
	}
	return strings.ToLower(hash), nil
}
