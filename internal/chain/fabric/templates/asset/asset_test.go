package asset_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/chaindock/chaindock/internal/chain/fabric/templates/asset"
	"github.com/chaindock/chaindock/internal/chain/fabric/templates/templatetest"
)

var start = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// run calls fn in a transaction of mspID and commits it when fn succeeds.
func run[T any](t *testing.T, l *templatetest.Ledger, mspID string, fn func(contractapi.TransactionContextInterface) (T, error)) (T, error) {
	t.Helper()
	tx := l.Begin(mspID)
	v, err := fn(tx.Ctx())
	if err == nil {
		tx.Commit()
	}
	return v, err
}

func TestLifecycle(t *testing.T) {
	l := templatetest.NewLedger(start)
	c := asset.New()
	ctxOf := func(msp string) contractapi.TransactionContextInterface { return l.Begin(msp).Ctx() }

	a, err := run(t, l, "Org1MSP", func(ctx contractapi.TransactionContextInterface) (*asset.Asset, error) {
		return c.Create(ctx, "car-1", "Org1MSP", 100)
	})
	if err != nil {
		t.Fatal(err)
	}
	if *a != (asset.Asset{ID: "car-1", Owner: "Org1MSP", Value: 100}) {
		t.Errorf("Create returned %+v", *a)
	}
	a, err = run(t, l, "Org1MSP", func(ctx contractapi.TransactionContextInterface) (*asset.Asset, error) {
		return c.Transfer(ctx, "car-1", "Org2MSP")
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.Owner != "Org2MSP" {
		t.Errorf("Transfer returned %+v", *a)
	}
	// The new owner can pass it on; the old one no longer can.
	if _, err := run(t, l, "Org1MSP", func(ctx contractapi.TransactionContextInterface) (*asset.Asset, error) {
		return c.Transfer(ctx, "car-1", "Org3MSP")
	}); err == nil || !strings.Contains(err.Error(), "asset car-1 is owned by Org2MSP: a client of Org1MSP may not transfer it") {
		t.Errorf("Transfer by the former owner: %v", err)
	}
	if _, err := run(t, l, "Org2MSP", func(ctx contractapi.TransactionContextInterface) (*asset.Asset, error) {
		return c.Transfer(ctx, "car-1", "Org3MSP")
	}); err != nil {
		t.Fatal(err)
	}

	got, err := c.Read(ctxOf("Org1MSP"), "car-1")
	if err != nil {
		t.Fatal(err)
	}
	if *got != (asset.Asset{ID: "car-1", Owner: "Org3MSP", Value: 100}) {
		t.Errorf("Read returned %+v", *got)
	}

	hist, err := c.History(ctxOf("Org1MSP"), "car-1")
	if err != nil {
		t.Fatal(err)
	}
	var owners, txs, times []string
	for _, e := range hist {
		if e.Deleted || e.Asset.ID != "car-1" || e.Asset.Value != 100 {
			t.Errorf("history entry %+v", e)
		}
		owners = append(owners, e.Asset.Owner)
		txs = append(txs, e.TxID)
		times = append(times, e.Timestamp)
	}
	// Newest first; the refused transfer (tx0003) left no trace.
	if want := []string{"Org3MSP", "Org2MSP", "Org1MSP"}; !slices.Equal(owners, want) {
		t.Errorf("history owners %q, want %q", owners, want)
	}
	if want := []string{"tx0004", "tx0002", "tx0001"}; !slices.Equal(txs, want) {
		t.Errorf("history transactions %q, want %q", txs, want)
	}
	if want := []string{"2026-12-04T12:00:03Z", "2026-12-04T12:00:01Z", "2026-12-04T12:00:00Z"}; !slices.Equal(times, want) {
		t.Errorf("history times %q, want %q", times, want)
	}
}

func TestRefusals(t *testing.T) {
	l := templatetest.NewLedger(start)
	c := asset.New()
	if _, err := run(t, l, "Org1MSP", func(ctx contractapi.TransactionContextInterface) (*asset.Asset, error) {
		return c.Create(ctx, "gold", "Org1MSP", 5)
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msp  string
		call func(contractapi.TransactionContextInterface) error
		want string
	}{
		{"create twice", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Create(ctx, "gold", "Org1MSP", 7)
			return err
		}, "asset gold already exists"},
		{"create in another organisation's name", "Org2MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Create(ctx, "silver", "Org1MSP", 1)
			return err
		}, `owner "Org1MSP" is not the submitter's organisation "Org2MSP"`},
		{"negative value", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Create(ctx, "debt", "Org1MSP", -1)
			return err
		}, "value -1 is negative"},
		{"empty id", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Create(ctx, "", "Org1MSP", 1)
			return err
		}, "must be 1 to 128 characters"},
		{"id with a zero byte", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Create(ctx, "\x00gold", "Org1MSP", 1)
			return err
		}, "is not a letter, digit"},
		{"id too long", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Read(ctx, strings.Repeat("a", 129))
			return err
		}, "must be 1 to 128 characters"},
		{"transfer by another organisation", "Org2MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Transfer(ctx, "gold", "Org2MSP")
			return err
		}, "asset gold is owned by Org1MSP: a client of Org2MSP may not transfer it"},
		{"transfer to the owner", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Transfer(ctx, "gold", "Org1MSP")
			return err
		}, "already owned by Org1MSP"},
		{"transfer to a malformed MSP ID", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Transfer(ctx, "gold", "Org 2")
			return err
		}, `owner "Org 2" is not an MSP ID`},
		{"transfer to nobody", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Transfer(ctx, "gold", "")
			return err
		}, "must be an MSP ID"},
		{"transfer a missing asset", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Transfer(ctx, "ghost", "Org2MSP")
			return err
		}, "asset ghost does not exist"},
		{"read a missing asset", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.Read(ctx, "ghost")
			return err
		}, "asset ghost does not exist"},
		{"history of a missing asset", "Org1MSP", func(ctx contractapi.TransactionContextInterface) error {
			_, err := c.History(ctx, "ghost")
			return err
		}, "asset ghost has no history"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := l.Begin(tt.msp)
			err := tt.call(tx.Ctx())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
	got, err := c.Read(l.Begin("Org2MSP").Ctx(), "gold")
	if err != nil {
		t.Fatal(err)
	}
	if *got != (asset.Asset{ID: "gold", Owner: "Org1MSP", Value: 5}) {
		t.Errorf("refusals changed the asset to %+v", *got)
	}
}

// TestThroughContractAPI invokes the contract as the peer does: the
// contract API parses the arguments (value as an integer), reads the
// submitter's MSP from the proposal's creator and returns JSON.
func TestThroughContractAPI(t *testing.T) {
	cc, err := contractapi.NewChaincode(asset.New())
	if err != nil {
		t.Fatal(err)
	}
	l := templatetest.NewLedger(start)
	ok := func(msp, fn string, args ...string) []byte {
		t.Helper()
		resp := l.Invoke(cc, msp, fn, args...)
		if resp.Status != shim.OK {
			t.Fatalf("%s %q: %d %s", fn, args, resp.Status, resp.Message)
		}
		return resp.Payload
	}
	ok("Org1MSP", "Create", "bond-7", "Org1MSP", "250")
	ok("Org1MSP", "asset:Transfer", "bond-7", "Org2MSP")
	if resp := l.Invoke(cc, "Org1MSP", "Transfer", "bond-7", "Org1MSP"); resp.Status == shim.OK || !strings.Contains(resp.Message, "may not transfer") {
		t.Errorf("Transfer by the former owner: %d %q", resp.Status, resp.Message)
	}
	if resp := l.Invoke(cc, "Org1MSP", "Create", "bond-8", "Org1MSP", "lots"); resp.Status == shim.OK {
		t.Errorf("Create with a value that is not a number succeeded: %s", resp.Payload)
	}

	var a map[string]any
	if err := json.Unmarshal(ok("Org3MSP", "Read", "bond-7"), &a); err != nil {
		t.Fatal(err)
	}
	if a["id"] != "bond-7" || a["owner"] != "Org2MSP" || a["value"] != float64(250) {
		t.Errorf("Read returned %v", a)
	}
	var hist []asset.HistoryEntry
	if err := json.Unmarshal(ok("Org3MSP", "History", "bond-7"), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Asset.Owner != "Org2MSP" || hist[1].Asset.Owner != "Org1MSP" || hist[1].TxID != "tx0001" {
		t.Errorf("History returned %+v", hist)
	}
}
