package fabric

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/chain"
)

func TestParseCallEndorsingOrganizations(t *testing.T) {
	c, err := ParseCall([]byte(`{"chaincode":"asset","function":"CreatePrivateAsset","args":["org1Private"],
		"transient":{"asset":{"text":"{}"}},"endorsingOrganizations":["org1","org2"]}`))
	if err != nil || !slices.Equal(c.EndorsingOrganizations, []string{"org1", "org2"}) {
		t.Fatalf("ParseCall = %+v, %v; want endorsingOrganizations [org1 org2]", c, err)
	}
	for _, tt := range []struct{ name, orgs, say string }{
		{"a duplicate", `["org1","org2","org1"]`, `endorsingOrganizations[2]: "org1" is endorsingOrganizations[0] too`},
		{"an empty name", `["org1",""]`, `endorsingOrganizations[1]: empty`},
		{"not a list", `"org1"`, `"endorsingOrganizations": [NAME, ...]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCall([]byte(`{"chaincode":"asset","function":"F","endorsingOrganizations":` + tt.orgs + `}`))
			if !errors.Is(err, chain.ErrMalformed) || !strings.Contains(err.Error(), tt.say) {
				t.Fatalf("error %v; want chain.ErrMalformed saying %q", err, tt.say)
			}
		})
	}
}

func TestEndorsingMSPs(t *testing.T) {
	plan := &chain.Plan{ChainID: "ch", Nodes: []chain.PlannedNode{
		{Name: "orderer-0", Role: "orderer", Organization: "ord"},
		{Name: "org1-peer-0", Role: "full", Organization: "org1"},
		{Name: "org2-peer-0", Role: "full", Organization: "org2"},
	}}
	l := &ledger{plan: plan}
	ch, _ := planChannel(plan, "")
	got, err := l.endorsingMSPs(Call{EndorsingOrganizations: []string{"org2", "org1"}}, ch)
	if err != nil || !slices.Equal(got, []string{"Org2MSP", "Org1MSP"}) {
		t.Fatalf("endorsingMSPs = %v, %v; want [Org2MSP Org1MSP]", got, err)
	}
	if got, err := l.endorsingMSPs(Call{}, ch); err != nil || got != nil {
		t.Fatalf("endorsingMSPs of none = %v, %v; want none", got, err)
	}
	_, err = l.endorsingMSPs(Call{EndorsingOrganizations: []string{"org9", "org1", "ord"}}, ch)
	if !errors.Is(err, chain.ErrMalformed) {
		t.Fatalf("error %v; want chain.ErrMalformed", err)
	}
	for _, say := range []string{`endorsingOrganizations[0]: "org9" is no peer organisation`, `endorsingOrganizations[2]: "ord" is no peer organisation`} {
		if !strings.Contains(err.Error(), say) {
			t.Errorf("error %q does not say %q", err, say)
		}
	}
	// A channel org2 is no member of.
	_, err = l.endorsingMSPs(Call{EndorsingOrganizations: []string{"org2"}}, fabricChannel{name: "pair", orgs: []string{"org1"}})
	if err == nil || !strings.Contains(err.Error(), `endorsingOrganizations[0]: "org2" is no member of channel pair (its members: org1)`) {
		t.Errorf("org2 on channel pair: %v", err)
	}
}

func TestParseQueryTransient(t *testing.T) {
	c, err := ParseQuery("/asset/VerifyPrivateAsset", []byte(`{"args":["org1Private"],"transient":{"asset":{"text":"{\"id\":\"ring-1\"}"},"k":"AAE="}}`))
	if err != nil || !slices.Equal(c.Args, []string{"org1Private"}) || string(c.Transient["asset"]) != `{"id":"ring-1"}` || string(c.Transient["k"]) != "\x00\x01" {
		t.Fatalf("ParseQuery = %+v, %v", c, err)
	}
	if m := c.transientMap(); len(m) != 2 {
		t.Errorf("transient map %v; want 2 keys", m)
	}
	for _, tt := range []struct{ name, data, say string }{
		{"not base64", `{"transient":{"asset":"secret value!"}}`, "base64"},
		{"an empty key", `{"transient":{"":"AA=="}}`, `transient: "" is no key`},
		{"too many keys", `{"transient":{"k":"AA=="` + manyKeys(32) + `}}`, "keys, at most 32"},
		{"an unknown field", `{"args":[],"private":{}}`, `unknown field "private"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseQuery("/asset/F", []byte(tt.data))
			if !errors.Is(err, chain.ErrMalformed) || !strings.Contains(err.Error(), tt.say) {
				t.Fatalf("error %v; want chain.ErrMalformed saying %q", err, tt.say)
			}
			if strings.Contains(err.Error(), "secret value") {
				t.Errorf("the error quotes the transient value: %v", err)
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(`,"k` + strings.Repeat("x", i+1) + `":"AA=="`)
	}
	return b.String()
}
