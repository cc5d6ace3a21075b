package fabric

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/chain"
)

func TestParseCall(t *testing.T) {
	tests := []struct {
		name, body string
		want       Call
		say        []string // in the error; none for a good body
	}{
		{name: "notarise", body: `{"chaincode":"notary","function":"Notarize","args":["9f86d0","a note"]}`,
			want: Call{Chaincode: "notary", Function: "Notarize", Args: []string{"9f86d0", "a note"}}},
		{name: "no arguments, a nonce", body: `{"chaincode":"asset-v2","function":"List","nonce":"2"}`,
			want: Call{Chaincode: "asset-v2", Function: "List", Nonce: "2"}},
		{name: "not json", body: `Notarize 9f86d0`, say: []string{`the body must be a JSON object {"chaincode": NAME`}},
		{name: "a number argument", body: `{"chaincode":"notary","function":"Notarize","args":[1]}`, say: []string{"cannot unmarshal number"}},
		{name: "an unknown field", body: `{"chaincode":"notary","function":"Get","chanel":"other"}`, say: []string{`unknown field "chanel"`}},
		{name: "a bad channel", body: `{"chaincode":"notary","function":"Get","channel":"Other_One"}`, say: []string{`channel: "Other_One" is not a channel name`}},
		{name: "two objects", body: `{"chaincode":"notary","function":"Get"} {}`, say: []string{"one JSON object"}},
		{name: "empty", body: `{}`, say: []string{"chaincode: required", "function: required"}},
		{name: "system chaincode", body: `{"chaincode":"_lifecycle","function":"InstallChaincode"}`, say: []string{`"_lifecycle" is a system chaincode`}},
		{name: "channel config", body: `{"chaincode":"cscc","function":"JoinChain"}`, say: []string{`"cscc" is a system chaincode`}},
		{name: "bad names", body: `{"chaincode":"no tary","function":"Get/x"}`, say: []string{`chaincode: "no tary" is no chaincode name`, `function: "Get/x" is no function name`}},
		{name: "too many arguments", body: `{"chaincode":"notary","function":"Get","args":[` + strings.Repeat(`"a",`, 64) + `"a"]}`, say: []string{"args: 65 arguments, at most 64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCall([]byte(tt.body))
			if len(tt.say) == 0 {
				if err != nil || got.Chaincode != tt.want.Chaincode || got.Function != tt.want.Function || !slices.Equal(got.Args, tt.want.Args) || got.Nonce != tt.want.Nonce {
					t.Fatalf("ParseCall = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, chain.ErrMalformed) {
				t.Fatalf("error %v; want chain.ErrMalformed", err)
			}
			for _, s := range tt.say {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name, path, data string
		want             Call
		say              string
	}{
		{name: "get", path: "/notary/Get", data: `["9f86d0"]`, want: Call{Chaincode: "notary", Function: "Get", Args: []string{"9f86d0"}}},
		{name: "no data", path: "/asset/List", want: Call{Chaincode: "asset", Function: "List"}},
		{name: "on a channel", path: "/pair/notary/Get", data: `["9f86d0"]`, want: Call{Channel: "pair", Chaincode: "notary", Function: "Get", Args: []string{"9f86d0"}}},
		{name: "no function", path: "/notary", say: "/CHAINCODE/FUNCTION"},
		{name: "no slash", path: "notary/Get", say: "/CHAINCODE/FUNCTION"},
		{name: "data not an array", path: "/notary/Get", data: `"9f86d0"`, say: "JSON array of the function's arguments"},
		{name: "data an object of other fields", path: "/notary/Get", data: `{"hash":"9f86d0"}`, say: `unknown field "hash"`},
		{name: "system chaincode", path: "/qscc/GetChainInfo", data: `["mychannel"]`, say: "system chaincode"},
		{name: "four parts", path: "/pair/notary/Get/more", say: `or /CHANNEL/CHAINCODE/FUNCTION`},
		{name: "a bad channel", path: "/Pair/notary/Get", say: `channel: "Pair" is not a channel name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseQuery(tt.path, []byte(tt.data))
			if tt.say == "" {
				if err != nil || got.Chaincode != tt.want.Chaincode || got.Function != tt.want.Function || !slices.Equal(got.Args, tt.want.Args) {
					t.Fatalf("ParseQuery = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, chain.ErrMalformed) || !strings.Contains(err.Error(), tt.say) {
				t.Fatalf("error %v; want chain.ErrMalformed saying %q", err, tt.say)
			}
		})
	}
}

// A malformed call is refused before any node is asked: the ledger has
// no plan to sign with here, and the error is still the call's.
func TestLedgerRefusesMalformedFirst(t *testing.T) {
	l := New().LedgerWith(&chain.Plan{ChainID: "ch"})
	node := chain.PlannedNode{Name: "org1-peer-0", Role: "full", Organization: "org1"}
	if _, err := l.Submit(t.Context(), node, []byte(`{"chaincode":"lscc","function":"install"}`)); !errors.Is(err, chain.ErrMalformed) {
		t.Errorf("Submit: %v; want chain.ErrMalformed", err)
	}
	if _, err := l.Query(t.Context(), node, "/notary", nil); !errors.Is(err, chain.ErrMalformed) {
		t.Errorf("Query: %v; want chain.ErrMalformed", err)
	}
	if _, err := l.Submit(t.Context(), node, []byte(`{"chaincode":"notary","function":"Get"}`)); err == nil || errors.Is(err, chain.ErrMalformed) {
		t.Errorf("Submit without the plan's keys: %v; want an error of the plan", err)
	}
}

func TestTxContract(t *testing.T) {
	if ref, ok := New().TxContract(nil, []byte(`{"chaincode":"notary","function":"Get","args":["x"]}`)); !ok || ref != "notary" {
		t.Errorf("TxContract(notary call) = %q, %v; want notary", ref, ok)
	}
	if ref, ok := New().TxContract(nil, []byte(`not a call`)); ok {
		t.Errorf("TxContract(not a call) = %q; want none", ref)
	}
}
