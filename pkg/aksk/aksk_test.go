package aksk

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

const exampleSignature = "8f3502c35d8fab903963b0c0f0b79791114347ec015b9c39cf4a3b51d631b514"

// The worked example of docs/api-keys.md, checked so the document stays true.
func TestWorkedExample(t *testing.T) {
	sts, err := StringToSign("POST", "/api/v1/networks", "b=2&a=1&a=0", 1795435200, "3f9a1c2e7b4d5a60", []byte(`{"hello":"world"}`))
	if err != nil {
		t.Fatal(err)
	}
	wantSTS := "CD1-HMAC-SHA256\nPOST\n/api/v1/networks\na=0&a=1&b=2\n1795435200\n3f9a1c2e7b4d5a60\n93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588"
	if sts != wantSTS {
		t.Fatalf("string to sign:\n%q\nwant\n%q", sts, wantSTS)
	}
	got := Signature([]byte("sk-example-secret"), sts)
	t.Logf("signature: %s", got)
	if got != exampleSignature {
		t.Fatalf("signature %s, want %s", got, exampleSignature)
	}
}

func TestSignVerify(t *testing.T) {
	body := []byte("apiVersion: chaindock/v1\n")
	req, _ := http.NewRequest("POST", "http://127.0.0.1:7400/api/v1/networks?dry=true&x=a%20b", bytes.NewReader(body))
	if err := Sign(req, "AKTEST", "secret"); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(req.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	sent, _ := io.ReadAll(req.Body)
	if !bytes.Equal(sent, body) {
		t.Fatal("Sign lost the body")
	}
	if err := Verify([]byte("secret"), c, "POST", "/api/v1/networks", "x=a+b&dry=true", body); err != nil {
		t.Fatalf("verify with the query reordered: %v", err)
	}
	for name, check := range map[string]func() error{
		"tampered body": func() error {
			return Verify([]byte("secret"), c, "POST", "/api/v1/networks", "dry=true&x=a%20b", []byte("other"))
		},
		"wrong secret": func() error { return Verify([]byte("guess"), c, "POST", "/api/v1/networks", "dry=true&x=a%20b", body) },
		"other path": func() error {
			return Verify([]byte("secret"), c, "POST", "/api/v1/networks/x", "dry=true&x=a%20b", body)
		},
		"other method": func() error {
			return Verify([]byte("secret"), c, "DELETE", "/api/v1/networks", "dry=true&x=a%20b", body)
		},
		"tampered query": func() error {
			return Verify([]byte("secret"), c, "POST", "/api/v1/networks", "dry=false&x=a%20b", body)
		},
		"other timestamp": func() error {
			c2 := c
			c2.Timestamp++
			return Verify([]byte("secret"), c2, "POST", "/api/v1/networks", "dry=true&x=a%20b", body)
		},
		"other nonce": func() error {
			c2 := c
			c2.Nonce += "0"
			return Verify([]byte("secret"), c2, "POST", "/api/v1/networks", "dry=true&x=a%20b", body)
		},
	} {
		if err := check(); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, h := range []string{
		"", "Bearer x", Scheme, Scheme + " Credential=a",
		Scheme + " Credential=a, Timestamp=1, Nonce=12345678",
		Scheme + " Credential=a, Timestamp=x, Nonce=12345678, Signature=s",
		Scheme + " Credential=a, Timestamp=1, Nonce=short, Signature=s",
		Scheme + " Credential=a, Credential=b, Timestamp=1, Nonce=12345678, Signature=s",
		Scheme + " Credential=a, Timestamp=1, Nonce=12345678, Signature=s, Extra=1",
		Scheme + " Credential=, Timestamp=1, Nonce=12345678, Signature=s",
	} {
		if _, err := Parse(h); err == nil {
			t.Errorf("Parse(%q) accepted it", h)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(Scheme+" Credential=AK, Timestamp=1795435200, Nonce=3f9a1c2e7b4d5a60, Signature=00", "POST", "/api/v1/networks", "a=1", []byte("{}"))
	f.Add("garbage", "GET", "/", "%zz", []byte(nil))
	f.Fuzz(func(t *testing.T, header, method, path, query string, body []byte) {
		c, err := Parse(header)
		if err != nil {
			return
		}
		// A signature made over the request verifies; any other does not.
		sts, err := StringToSign(method, path, query, c.Timestamp, c.Nonce, body)
		if err != nil {
			return
		}
		good := c
		good.Signature = Signature([]byte("k"), sts)
		if err := Verify([]byte("k"), good, method, path, query, body); err != nil {
			t.Fatalf("a correct signature failed: %v", err)
		}
		if strings.EqualFold(c.Signature, good.Signature) {
			return
		}
		if err := Verify([]byte("k"), c, method, path, query, body); err == nil {
			t.Fatalf("signature %q verified for %q", c.Signature, sts)
		}
	})
}
