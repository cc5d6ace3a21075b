package notary_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/chaindock/chaindock/internal/chain/fabric/templates/notary"
	"github.com/chaindock/chaindock/internal/chain/fabric/templates/templatetest"
)

var start = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestNotarizeAndGet(t *testing.T) {
	l := templatetest.NewLedger(start)
	c := notary.New()
	h := digest("contract.pdf")

	tx := l.Begin("Org1MSP")
	rec, err := c.Notarize(tx.Ctx(), strings.ToUpper(h), "signed contract")
	if err != nil {
		t.Fatal(err)
	}
	want := notary.Record{Hash: h, Note: "signed contract", Submitter: "Org1MSP", TxID: "tx0001", Timestamp: "2026-12-04T12:00:00Z"}
	if *rec != want {
		t.Errorf("Notarize returned %+v, want %+v", *rec, want)
	}
	// Fabric shows a transaction the state before it, never its own
	// writes: nothing is readable until the transaction commits.
	if _, err := c.Get(tx.Ctx(), h); err == nil {
		t.Error("Get saw an uncommitted notarisation")
	}
	tx.Commit()

	got, err := c.Get(l.Begin("Org2MSP").Ctx(), h)
	if err != nil {
		t.Fatal(err)
	}
	if *got != want {
		t.Errorf("Get returned %+v, want %+v", *got, want)
	}
}

func TestNotarizeRefuses(t *testing.T) {
	l := templatetest.NewLedger(start)
	c := notary.New()
	h := digest("invoice")
	tx := l.Begin("Org1MSP")
	if _, err := c.Notarize(tx.Ctx(), h, "first"); err != nil {
		t.Fatal(err)
	}
	tx.Commit()

	tests := []struct {
		name, hash, note, want string
	}{
		{"short", h[:63], "", "not a SHA-256 digest: want 64 hexadecimal digits, got 63"},
		{"long", h + "0", "", "got 65"},
		{"not hex", strings.Repeat("g", 64), "", "not a SHA-256 digest"},
		{"empty", "", "", "not a SHA-256 digest"},
		{"with prefix", "0x" + h[:62], "", "not a SHA-256 digest"},
		{"second time", h, "again", "hash " + h + " is already notarised, by Org1MSP in transaction tx0001 at 2026-12-04T12:00:00Z"},
		{"second time in upper case", strings.ToUpper(h), "again", "already notarised"},
		{"note too long", digest("other"), strings.Repeat("x", notary.MaxNoteBytes+1), "note is 4097 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := l.Begin("Org2MSP")
			_, err := c.Notarize(tx.Ctx(), tt.hash, tt.note)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Notarize: %v, want an error saying %q", err, tt.want)
			}
			tx.Commit()
		})
	}
	// The first record stands.
	got, err := c.Get(l.Begin("Org1MSP").Ctx(), h)
	if err != nil {
		t.Fatal(err)
	}
	if got.Note != "first" || got.Submitter != "Org1MSP" {
		t.Errorf("record became %+v", got)
	}
}

func TestGetRefuses(t *testing.T) {
	l := templatetest.NewLedger(start)
	c := notary.New()
	if _, err := c.Get(l.Begin("Org1MSP").Ctx(), digest("never")); err == nil || !strings.Contains(err.Error(), "is not notarised") {
		t.Errorf("Get of an unknown hash: %v", err)
	}
	if _, err := c.Get(l.Begin("Org1MSP").Ctx(), "abc"); err == nil || !strings.Contains(err.Error(), "not a SHA-256 digest") {
		t.Errorf("Get of a malformed hash: %v", err)
	}
}

// TestThroughContractAPI invokes the contract as the peer does, through
// the contract API's router and JSON serializer, with the submitter read
// from the proposal's creator.
func TestThroughContractAPI(t *testing.T) {
	cc, err := contractapi.NewChaincode(notary.New())
	if err != nil {
		t.Fatal(err)
	}
	l := templatetest.NewLedger(start)
	h := digest("deed")

	resp := l.Invoke(cc, "Org1MSP", "Notarize", h, "title deed")
	if resp.Status != shim.OK {
		t.Fatalf("Notarize: %d %s", resp.Status, resp.Message)
	}
	resp = l.Invoke(cc, "Org2MSP", "notary:Get", h)
	if resp.Status != shim.OK {
		t.Fatalf("Get: %d %s", resp.Status, resp.Message)
	}
	var got map[string]any
	if err := json.Unmarshal(resp.Payload, &got); err != nil {
		t.Fatalf("Get returned %q: %v", resp.Payload, err)
	}
	want := map[string]any{"hash": h, "note": "title deed", "submitter": "Org1MSP", "txId": "tx0001", "timestamp": "2026-12-04T12:00:00Z"}
	if len(got) != len(want) {
		t.Errorf("Get returned %s, want the fields of %v", resp.Payload, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Get returned %s=%v, want %v", k, got[k], v)
		}
	}

	resp = l.Invoke(cc, "Org2MSP", "Notarize", h, "mine")
	if resp.Status == shim.OK || !strings.Contains(resp.Message, "already notarised") {
		t.Errorf("second Notarize: %d %q", resp.Status, resp.Message)
	}
	resp = l.Invoke(cc, "Org2MSP", "Notarize", "nothex", "x")
	if resp.Status == shim.OK || !strings.Contains(resp.Message, "not a SHA-256 digest") {
		t.Errorf("Notarize of a malformed hash: %d %q", resp.Status, resp.Message)
	}
}
