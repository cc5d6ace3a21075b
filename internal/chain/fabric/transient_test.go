package fabric

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

func TestParseCallTransient(t *testing.T) {
	body := `{"chaincode":"asset","function":"CreatePrivateAsset","args":["org1Private"],` +
		`"transient":{"asset":{"text":"{\"id\":\"ring-1\"}"},"blob":"AAEC/w==","raw":{"base64":"aGk="}}}`
	c, err := ParseCall([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	m := c.transientMap()
	if string(m["asset"]) != `{"id":"ring-1"}` || !bytes.Equal(m["blob"], []byte{0, 1, 2, 0xff}) || string(m["raw"]) != "hi" || len(m) != 3 {
		t.Errorf("transient map %q", m)
	}
	if (Call{Chaincode: "a", Function: "b"}).transientMap() != nil {
		t.Error("a call without transient data has a transient map")
	}

	for _, bad := range []struct{ transient, say string }{
		{`{"k":"not base64!"}`, "given as a string is base64"},
		{`{"k":{"text":"a","base64":"YQ=="}}`, `{"text": STRING} or {"base64": STRING}`},
		{`{"k":{"txt":"secret-value"}}`, `{"text": STRING} or {"base64": STRING}`},
		{`{"k":7}`, `{"text": STRING} or {"base64": STRING}`},
		{`{"":"YQ=="}`, `transient: "" is no key`},
		{`{"k":{"text":"` + strings.Repeat("x", maxTransientBytes) + `"}}`, "transient: 262145 bytes, at most 262144"},
	} {
		_, err := ParseCall([]byte(`{"chaincode":"asset","function":"F","transient":` + bad.transient + `}`))
		if !errors.Is(err, chain.ErrMalformed) || !strings.Contains(err.Error(), bad.say) {
			t.Errorf("%.60s: %v; want ErrMalformed saying %q", bad.transient, err, bad.say)
		}
		if err != nil && strings.Contains(err.Error(), "secret-value") {
			t.Errorf("the error quotes the value: %v", err)
		}
	}
}

// The transaction ID tells calls with different transient data apart,
// and is the same for the same body; the hash of the body, which has the
// data, is not in it.
func TestCallNonce(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := channel.Signer{MSPID: "Org1MSP", Key: key}
	nonce := func(body string) []byte {
		t.Helper()
		c, err := ParseCall([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		n, err := callNonce([]byte(body), c, signer)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	plain := `{"chaincode":"asset","function":"CreatePrivateAsset"}`
	a := `{"chaincode":"asset","function":"CreatePrivateAsset","transient":{"asset":{"text":"one"}}}`
	b := `{"chaincode":"asset","function":"CreatePrivateAsset","transient":{"asset":{"text":"two"}}}`
	if !bytes.Equal(nonce(a), nonce(a)) {
		t.Error("the same body gives another nonce")
	}
	if bytes.Equal(nonce(a), nonce(b)) {
		t.Error("different transient data give the same nonce")
	}
	// The public part is the hash of the call without its transient data.
	if !bytes.Equal(nonce(a)[:32], nonce(b)[:32]) {
		t.Error("the public part of the nonce depends on the transient data")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, _ := ParseCall([]byte(a))
	n2, _ := callNonce([]byte(a), c, channel.Signer{MSPID: "Org1MSP", Key: other})
	if bytes.Equal(n2[32:], nonce(a)[32:]) {
		t.Error("the MAC does not depend on the signer's key")
	}
	if len(nonce(plain)) != 32 {
		t.Error("a call without transient data changed its nonce")
	}
}
