// Package asset is ChainDock's built-in asset-transfer chaincode: assets
// owned by organisations, which only the owning organisation can transfer,
// with their history, and private assets kept in private data collections
// (private.go).
package asset

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// Name is the contract's name in the chaincode, and the template's.
const Name = "asset"

// Asset is one asset. Owner is the MSP ID of the organisation that owns
// it: ownership is checked against the submitting client's MSP, which the
// peer has verified, not against a name the client could claim.
type Asset struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
	Value int    `json:"value"`
}

// HistoryEntry is one committed change of an asset.
type HistoryEntry struct {
	TxID string `json:"txId"`
	// Timestamp is the transaction's time (RFC 3339, UTC).
	Timestamp string `json:"timestamp"`
	Deleted   bool   `json:"deleted"`
	// Asset is the asset as the transaction left it; empty when deleted.
	Asset Asset `json:"asset"`
}

// Contract is the asset-transfer contract.
type Contract struct {
	contractapi.Contract
}

// New returns the contract, named Name.
func New() *Contract {
	c := &Contract{}
	c.Name = Name
	c.Info.Title = "ChainDock asset transfer"
	c.Info.Version = "1.0.0"
	return c
}

// Create makes asset id owned by owner, an MSP ID, worth value. An
// organisation creates assets in its own name only, so owner must be the
// submitter's MSP ID.
func (c *Contract) Create(ctx contractapi.TransactionContextInterface, id string, owner string, value int) (*Asset, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if value < 0 {
		return nil, fmt.Errorf("value %d is negative", value)
	}
	msp, err := submitter(ctx)
	if err != nil {
		return nil, err
	}
	if owner != msp {
		return nil, fmt.Errorf("owner %q is not the submitter's organisation %q: an organisation creates assets in its own name", owner, msp)
	}
	existing, err := c.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return nil, fmt.Errorf("asset %s already exists", id)
	}
	a := &Asset{ID: id, Owner: owner, Value: value}
	return a, c.put(ctx, a)
}

// Transfer gives asset id to newOwner, an MSP ID. Only a client of the
// current owner's MSP may transfer it.
func (c *Contract) Transfer(ctx contractapi.TransactionContextInterface, id string, newOwner string) (*Asset, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if err := checkMSPID(newOwner); err != nil {
		return nil, err
	}
	a, err := c.Read(ctx, id)
	if err != nil {
		return nil, err
	}
	msp, err := submitter(ctx)
	if err != nil {
		return nil, err
	}
	if msp != a.Owner {
		return nil, fmt.Errorf("asset %s is owned by %s: a client of %s may not transfer it", id, a.Owner, msp)
	}
	if newOwner == a.Owner {
		return nil, fmt.Errorf("asset %s is already owned by %s", id, newOwner)
	}
	a.Owner = newOwner
	return a, c.put(ctx, a)
}

// Read returns asset id, or an error when there is none.
func (c *Contract) Read(ctx contractapi.TransactionContextInterface, id string) (*Asset, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	a, err := c.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("asset %s does not exist", id)
	}
	return a, nil
}

// History returns every committed change of asset id, newest first, as
// Fabric's history database gives them; it needs the peer's
// core.ledger.history.enableHistoryDatabase, which is on by default.
func (c *Contract) History(ctx contractapi.TransactionContextInterface, id string) ([]HistoryEntry, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	it, err := ctx.GetStub().GetHistoryForKey(id)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", id, err)
	}
	defer it.Close()
	entries := []HistoryEntry{}
	for it.HasNext() {
		m, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("read history of %s: %w", id, err)
		}
		e := HistoryEntry{TxID: m.GetTxId(), Deleted: m.GetIsDelete()}
		if ts := m.GetTimestamp(); ts != nil {
			e.Timestamp = ts.AsTime().UTC().Format(time.RFC3339Nano)
		}
		if !e.Deleted {
			if err := json.Unmarshal(m.GetValue(), &e.Asset); err != nil {
				return nil, fmt.Errorf("asset %s in transaction %s is corrupt: %w", id, e.TxID, err)
			}
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("asset %s has no history: it was never created", id)
	}
	return entries, nil
}

func (c *Contract) read(ctx contractapi.TransactionContextInterface, id string) (*Asset, error) {
	data, err := ctx.GetStub().GetState(id)
	if err != nil {
		return nil, fmt.Errorf("read asset %s: %w", id, err)
	}
	if data == nil {
		return nil, nil
	}
	var a Asset
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("asset %s is corrupt: %w", id, err)
	}
	return &a, nil
}

func (c *Contract) put(ctx contractapi.TransactionContextInterface, a *Asset) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := ctx.GetStub().PutState(a.ID, data); err != nil {
		return fmt.Errorf("write asset %s: %w", a.ID, err)
	}
	return nil
}

func submitter(ctx contractapi.TransactionContextInterface) (string, error) {
	msp, err := ctx.GetClientIdentity().GetMSPID()
	if err != nil {
		return "", fmt.Errorf("read the submitter's MSP ID: %w", err)
	}
	return msp, nil
}

const (
	mspIDChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
	idChars    = mspIDChars + ":"
)

// checkID accepts 1 to 128 letters, digits and . _ - : characters. Keys
// starting with a zero byte are Fabric's composite keys, which these
// characters exclude.
func checkID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("asset ID %q must be 1 to 128 characters", id)
	}
	if i := strings.IndexFunc(id, func(r rune) bool { return !strings.ContainsRune(idChars, r) }); i >= 0 {
		return fmt.Errorf("asset ID %q: %q is not a letter, digit, '.', '_', '-' or ':'", id, []rune(id[i:])[0])
	}
	return nil
}

// checkMSPID accepts what Fabric accepts as an organisation's MSP ID in
// practice: letters, digits, '.', '_' and '-'.
func checkMSPID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("owner %q must be an MSP ID of 1 to 128 characters", id)
	}
	if i := strings.IndexFunc(id, func(r rune) bool { return !strings.ContainsRune(mspIDChars, r) }); i >= 0 {
		return fmt.Errorf("owner %q is not an MSP ID: %q is not a letter, digit, '.', '_' or '-'", id, []rune(id[i:])[0])
	}
	return nil
}
