package asset

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// TransientKey is the key of the transient map under which
// CreatePrivateAsset takes its asset, as JSON: the asset's fields never
// appear in the transaction's arguments, only in the member peers'
// private data stores (the channel keeps their hash).
const TransientKey = "asset"

// DefaultCollection is the collection the template's package ships (see
// its collections.json): every organisation of the channel is a member.
const DefaultCollection = "assetCollection"

// implicitPrefix begins the name of Fabric's implicit collection of an
// organisation, which every chaincode has without configuring it: the
// organisation's own peers keep its data.
const implicitPrefix = "_implicit_org_"

// PrivateAsset is an asset kept in a private data collection. Owner is
// the MSP ID of the organisation that created it.
type PrivateAsset struct {
	ID      string `json:"id"`
	Owner   string `json:"owner"`
	Value   int    `json:"value"`
	Details string `json:"details,omitempty"`
}

// privateInput is what CreatePrivateAsset reads from the transient map.
type privateInput struct {
	ID      string `json:"id"`
	Value   int    `json:"value"`
	Details string `json:"details"`
}

// CreatePrivateAsset writes the asset in the transient map under
// TransientKey ({"id", "value", "details"}) to collection, owned by the
// submitter's organisation; an empty collection is the submitter's
// organisation's implicit collection. It returns nothing: what a
// transaction returns is recorded on the channel.
func (c *Contract) CreatePrivateAsset(ctx contractapi.TransactionContextInterface, collection string) error {
	msp, err := submitter(ctx)
	if err != nil {
		return err
	}
	if collection == "" {
		collection = implicitPrefix + msp
	}
	var in privateInput
	if err := transientJSON(ctx, &in, `the asset there as JSON {"id", "value", "details"}`, `{"id": STRING, "value": NUMBER, "details": STRING}`); err != nil {
		return err
	}
	if err := checkPrivateID(in.ID); err != nil {
		return err
	}
	if in.Value < 0 {
		return errors.New("the asset's value is negative")
	}
	// The hash is on every peer of the channel, member or not.
	hash, err := ctx.GetStub().GetPrivateDataHash(collection, in.ID)
	if err != nil {
		return fmt.Errorf("read the asset's hash in collection %s: %w", collection, err)
	}
	if hash != nil {
		return fmt.Errorf("the asset already exists in collection %s", collection)
	}
	data, err := json.Marshal(PrivateAsset{ID: in.ID, Owner: msp, Value: in.Value, Details: in.Details})
	if err != nil {
		return err
	}
	if err := ctx.GetStub().PutPrivateData(collection, in.ID, data); err != nil {
		return fmt.Errorf("write the asset to collection %s: %w", collection, err)
	}
	return nil
}

// ReadPrivateAsset returns asset id of collection (empty: the
// submitter's organisation's implicit collection). Only a peer of a
// member organisation has it; read it with a query, so that the answer
// is not recorded in a transaction.
func (c *Contract) ReadPrivateAsset(ctx contractapi.TransactionContextInterface, collection string, id string) (*PrivateAsset, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	collection, err := orImplicit(ctx, collection)
	if err != nil {
		return nil, err
	}
	data, err := ctx.GetStub().GetPrivateData(collection, id)
	if err != nil {
		return nil, fmt.Errorf("read asset %s in collection %s: %w", id, collection, err)
	}
	if data == nil {
		return nil, fmt.Errorf("asset %s is not in collection %s on this peer", id, collection)
	}
	var a PrivateAsset
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("asset %s in collection %s is corrupt: %w", id, collection, err)
	}
	return &a, nil
}

// VerifyPrivateAsset reports whether the asset in the transient map under
// TransientKey, as JSON {"id", "owner", "value", "details"}, is the one
// collection (empty: the submitter's organisation's implicit collection)
// holds: whether its hash is the hash every peer of the channel keeps.
// A peer of an organisation that is no member of the collection answers
// too, without seeing the asset; the caller shows what it claims. Call
// it as a query: a transaction would carry the claim to the endorsers
// only, but record nothing worth having.
func (c *Contract) VerifyPrivateAsset(ctx contractapi.TransactionContextInterface, collection string) (bool, error) {
	collection, err := orImplicit(ctx, collection)
	if err != nil {
		return false, err
	}
	var claim PrivateAsset
	if err := transientJSON(ctx, &claim, `the asset there as JSON {"id", "owner", "value", "details"}`, `{"id": STRING, "owner": STRING, "value": NUMBER, "details": STRING}`); err != nil {
		return false, err
	}
	if err := checkPrivateID(claim.ID); err != nil {
		return false, err
	}
	hash, err := ctx.GetStub().GetPrivateDataHash(collection, claim.ID)
	if err != nil {
		return false, fmt.Errorf("read the asset's hash in collection %s: %w", collection, err)
	}
	if hash == nil {
		return false, fmt.Errorf("the asset is not in collection %s", collection)
	}
	// CreatePrivateAsset stores the asset as json.Marshal writes it.
	data, err := json.Marshal(claim)
	if err != nil {
		return false, err
	}
	sum := sha256.Sum256(data)
	return bytes.Equal(sum[:], hash), nil
}

// PurgePrivateAsset removes for good the asset whose ID the transient
// map has under TransientKey, as JSON {"id"}, from collection (empty: the
// submitter's organisation's implicit collection): its value from the
// member peers' private stores, its hash from every peer's state, and
// both from their history, where a delete would keep them (Fabric 2.5's
// PurgePrivateData). Only the organisation that owns it may, through
// endorsers that are members of the collection, which read its owner.
func (c *Contract) PurgePrivateAsset(ctx contractapi.TransactionContextInterface, collection string) error {
	msp, err := submitter(ctx)
	if err != nil {
		return err
	}
	if collection == "" {
		collection = implicitPrefix + msp
	}
	var in struct {
		ID string `json:"id"`
	}
	if err := transientJSON(ctx, &in, `the asset's ID there as JSON {"id"}`, `{"id": STRING}`); err != nil {
		return err
	}
	if err := checkPrivateID(in.ID); err != nil {
		return err
	}
	data, err := ctx.GetStub().GetPrivateData(collection, in.ID)
	if err != nil {
		return fmt.Errorf("read the asset in collection %s: %w", collection, err)
	}
	if data == nil {
		return fmt.Errorf("the asset is not in collection %s on this peer", collection)
	}
	var a PrivateAsset
	if err := json.Unmarshal(data, &a); err != nil {
		return fmt.Errorf("the asset in collection %s is corrupt: %w", collection, err)
	}
	if a.Owner != msp {
		return fmt.Errorf("the asset is owned by %s: only its owner purges it", a.Owner)
	}
	if err := ctx.GetStub().PurgePrivateData(collection, in.ID); err != nil {
		return fmt.Errorf("purge the asset from collection %s: %w", collection, err)
	}
	return nil
}

// orImplicit is collection, or the submitter's organisation's implicit
// collection when it is empty.
func orImplicit(ctx contractapi.TransactionContextInterface, collection string) (string, error) {
	if collection != "" {
		return collection, nil
	}
	msp, err := submitter(ctx)
	if err != nil {
		return "", err
	}
	return implicitPrefix + msp, nil
}

// transientJSON decodes the transient map's TransientKey, JSON of the
// form shape and of no other field, into v; give says what to give there
// when it is missing. The messages quote none of it: it is private.
func transientJSON(ctx contractapi.TransactionContextInterface, v any, give, shape string) error {
	transient, err := ctx.GetStub().GetTransient()
	if err != nil {
		return fmt.Errorf("read the transient map: %w", err)
	}
	raw, ok := transient[TransientKey]
	if !ok || len(raw) == 0 {
		return fmt.Errorf("the transient map has no %q: give %s", TransientKey, give)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("transient %q is not JSON %s", TransientKey, shape)
	}
	return nil
}

// checkPrivateID checks an asset ID from the transient map as checkID
// does, without quoting it: messages reach the peers' logs and the
// caller, and the ID is private.
func checkPrivateID(id string) error {
	if checkID(id) != nil {
		return errors.New("the asset ID in the transient map must be 1 to 128 letters, digits, '.', '_', '-' or ':'")
	}
	return nil
}
