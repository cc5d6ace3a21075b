package asset_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/chain/fabric/templates/asset"
	"github.com/chaindock/chaindock/internal/chain/fabric/templates/templatetest"
)

func TestPrivateAsset(t *testing.T) {
	l := templatetest.NewLedger(start)
	l.DefineCollection("org1Only", true, "Org1MSP")
	l.DefineCollection("shared", false, "Org1MSP", "Org2MSP")
	c := asset.New()
	create := func(msp, collection string, transient map[string][]byte) error {
		t.Helper()
		tx := l.Begin(msp).WithTransient(transient)
		err := c.CreatePrivateAsset(tx.Ctx(), collection)
		if err == nil {
			tx.Commit()
		}
		return err
	}
	read := func(msp, collection, id string) (*asset.PrivateAsset, error) {
		return c.ReadPrivateAsset(l.Begin(msp).Ctx(), collection, id)
	}
	secret := []byte(`{"id": "ring-1", "value": 5000, "details": "appraised by Smith"}`)

	if err := create("Org1MSP", "org1Only", map[string][]byte{asset.TransientKey: secret}); err != nil {
		t.Fatal(err)
	}
	got, err := read("Org1MSP", "org1Only", "ring-1")
	if err != nil {
		t.Fatal(err)
	}
	if *got != (asset.PrivateAsset{ID: "ring-1", Owner: "Org1MSP", Value: 5000, Details: "appraised by Smith"}) {
		t.Errorf("ReadPrivateAsset = %+v", *got)
	}
	var stored asset.PrivateAsset
	if err := json.Unmarshal(l.PrivateData("org1Only", "ring-1"), &stored); err != nil || stored.Owner != "Org1MSP" {
		t.Errorf("stored %+v, %v", stored, err)
	}
	// Nothing of it is in the public state.
	if v := l.State("ring-1"); v != nil {
		t.Errorf("public state has %q", v)
	}
	if _, err := read("Org2MSP", "org1Only", "ring-1"); err == nil || !strings.Contains(err.Error(), "does not have read access") {
		t.Errorf("Org2MSP reads org1Only: %v, want a refusal", err)
	}
	if err := create("Org1MSP", "org1Only", map[string][]byte{asset.TransientKey: secret}); err == nil || !strings.Contains(err.Error(), "already exists") || strings.Contains(err.Error(), "ring-1") {
		t.Errorf("created twice: %v", err)
	}

	// A shared collection: both organisations read what one wrote.
	if err := create("Org2MSP", "shared", map[string][]byte{asset.TransientKey: []byte(`{"id": "car-9", "value": 7}`)}); err != nil {
		t.Fatal(err)
	}
	for _, msp := range []string{"Org1MSP", "Org2MSP"} {
		if a, err := read(msp, "shared", "car-9"); err != nil || a.Owner != "Org2MSP" || a.Value != 7 {
			t.Errorf("%s reads car-9: %+v, %v", msp, a, err)
		}
	}

	// No collection named: the submitter's implicit collection, which
	// other organisations' peers do not keep.
	if err := create("Org2MSP", "", map[string][]byte{asset.TransientKey: []byte(`{"id": "own-1", "value": 1}`)}); err != nil {
		t.Fatal(err)
	}
	if a, err := read("Org2MSP", "", "own-1"); err != nil || a.Owner != "Org2MSP" {
		t.Errorf("Org2MSP reads its implicit collection: %+v, %v", a, err)
	}
	if _, err := read("Org1MSP", "_implicit_org_Org2MSP", "own-1"); err == nil || !strings.Contains(err.Error(), "not in collection") {
		t.Errorf("Org1MSP reads Org2MSP's implicit collection: %v", err)
	}

	for _, tc := range []struct {
		name      string
		transient map[string][]byte
		want      string
	}{
		{"no transient", nil, `has no "asset"`},
		{"not JSON", map[string][]byte{asset.TransientKey: []byte("ring")}, "is not JSON"},
		{"unknown field", map[string][]byte{asset.TransientKey: []byte(`{"id": "x", "owner": "Org2MSP"}`)}, "is not JSON"},
		{"bad id", map[string][]byte{asset.TransientKey: []byte(`{"id": "a secret"}`)}, "must be 1 to 128 letters"},
		{"negative", map[string][]byte{asset.TransientKey: []byte(`{"id": "n", "value": -1}`)}, "negative"},
		{"no collection", map[string][]byte{asset.TransientKey: []byte(`{"id": "z"}`)}, "could not be found"},
	} {
		col := "org1Only"
		if tc.name == "no collection" {
			col = "nowhere"
		}
		err := create("Org1MSP", col, tc.transient)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if strings.Contains(err.Error(), "5000") || strings.Contains(err.Error(), "Smith") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error quotes private data: %v", tc.name, err)
		}
	}
}

func TestVerifyPrivateAsset(t *testing.T) {
	l := templatetest.NewLedger(start)
	l.DefineCollection("org1Only", true, "Org1MSP")
	c := asset.New()
	tx := l.Begin("Org1MSP").WithTransient(map[string][]byte{asset.TransientKey: []byte(`{"id": "ring-1", "value": 5000, "details": "appraised by Smith"}`)})
	if err := c.CreatePrivateAsset(tx.Ctx(), "org1Only"); err != nil {
		t.Fatal(err)
	}
	tx.Commit()
	verify := func(msp, claim string) (bool, error) {
		return c.VerifyPrivateAsset(l.Begin(msp).WithTransient(map[string][]byte{asset.TransientKey: []byte(claim)}).Ctx(), "org1Only")
	}
	for _, tc := range []struct {
		name, msp, claim string
		want             bool
		err              string
	}{
		{"the asset, by a member", "Org1MSP", `{"id": "ring-1", "owner": "Org1MSP", "value": 5000, "details": "appraised by Smith"}`, true, ""},
		// A non-member has the hash, not the asset.
		{"the asset, by a non-member", "Org2MSP", `{"details": "appraised by Smith", "value": 5000, "owner": "Org1MSP", "id": "ring-1"}`, true, ""},
		{"another value", "Org2MSP", `{"id": "ring-1", "owner": "Org1MSP", "value": 4999, "details": "appraised by Smith"}`, false, ""},
		{"another owner", "Org2MSP", `{"id": "ring-1", "owner": "Org2MSP", "value": 5000, "details": "appraised by Smith"}`, false, ""},
		{"no such asset", "Org2MSP", `{"id": "ring-2", "owner": "Org1MSP", "value": 5000}`, false, "is not in collection"},
		{"not JSON", "Org2MSP", `ring`, false, "is not JSON"},
		{"unknown field", "Org2MSP", `{"id": "ring-1", "price": 1}`, false, "is not JSON"},
	} {
		got, err := verify(tc.msp, tc.claim)
		if got != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, %v; want %v, error %q", tc.name, got, err, tc.want, tc.err)
		}
		if err != nil && (strings.Contains(err.Error(), "5000") || strings.Contains(err.Error(), "Smith")) {
			t.Errorf("%s: the error quotes private data: %v", tc.name, err)
		}
	}
	if _, err := c.VerifyPrivateAsset(l.Begin("Org2MSP").Ctx(), "org1Only"); err == nil || !strings.Contains(err.Error(), `has no "asset"`) {
		t.Errorf("no transient: %v", err)
	}
}

// TestPurgePrivateAsset: the owner purges an asset, which leaves no value
// nor hash behind; another member may not, and an ID that is not there,
// or badly given, is refused without being quoted.
func TestPurgePrivateAsset(t *testing.T) {
	l := templatetest.NewLedger(start)
	l.DefineCollection("shared", false, "Org1MSP", "Org2MSP")
	c := asset.New()
	run := func(msp string, transient map[string][]byte, f func(*templatetest.Tx) error) error {
		t.Helper()
		tx := l.Begin(msp).WithTransient(transient)
		err := f(tx)
		if err == nil {
			tx.Commit()
		}
		return err
	}
	id := map[string][]byte{asset.TransientKey: []byte(`{"id": "deed-7"}`)}
	if err := run("Org1MSP", map[string][]byte{asset.TransientKey: []byte(`{"id": "deed-7", "value": 90}`)}, func(tx *templatetest.Tx) error {
		return c.CreatePrivateAsset(tx.Ctx(), "shared")
	}); err != nil {
		t.Fatal(err)
	}
	purge := func(msp string, transient map[string][]byte) error {
		return run(msp, transient, func(tx *templatetest.Tx) error { return c.PurgePrivateAsset(tx.Ctx(), "shared") })
	}
	if err := purge("Org2MSP", id); err == nil || !strings.Contains(err.Error(), "owned by Org1MSP") {
		t.Errorf("Org2MSP purges Org1MSP's asset: %v", err)
	}
	if l.PrivateData("shared", "deed-7") == nil {
		t.Fatal("a refused purge removed the asset")
	}
	if err := purge("Org1MSP", id); err != nil {
		t.Fatal(err)
	}
	tx := l.Begin("Org2MSP")
	if v, hash := l.PrivateData("shared", "deed-7"), must(tx.GetPrivateDataHash("shared", "deed-7")); v != nil || hash != nil {
		t.Errorf("after the purge: value %q, hash %x", v, hash)
	}
	for _, tc := range []struct {
		name      string
		transient map[string][]byte
		want      string
	}{
		{"gone", id, "not in collection shared"},
		{"no transient", nil, `has no "asset"`},
		{"more than an ID", map[string][]byte{asset.TransientKey: []byte(`{"id": "deed-7", "value": 1}`)}, "is not JSON"},
		{"bad id", map[string][]byte{asset.TransientKey: []byte(`{"id": "a secret"}`)}, "must be 1 to 128 letters"},
	} {
		err := purge("Org1MSP", tc.transient)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		} else if strings.Contains(err.Error(), "deed-7") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error quotes private data: %v", tc.name, err)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
