// Package aksk signs and verifies ChainDock API requests made with an
// access key (AK) and its secret key (SK). Applications use Sign (or
// Transport) to call ChainDock; the server uses Parse and Verify.
//
// A signed request carries one header:
//
//	Authorization: CD1-HMAC-SHA256 Credential=<AK>, Timestamp=<unix seconds>, Nonce=<nonce>, Signature=<hex>
//
// where Signature is hex(HMAC-SHA256(SK, StringToSign)) and StringToSign is
// these six lines joined by "\n":
//
//	CD1-HMAC-SHA256
//	<METHOD>                      upper case
//	<path>                        as sent, escaped
//	<canonical query>             keys and values escaped, sorted by key then value
//	<timestamp>\n<nonce>          the same values as in the header
//	<hex(SHA-256(body))>          of the empty string when there is no body
//
// The server refuses a timestamp more than five minutes from its clock and
// a nonce it has seen before for the same key.
package aksk

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scheme names the signature scheme in the Authorization header.
const Scheme = "CD1-HMAC-SHA256"

// Credential is what the Authorization header of a signed request says.
type Credential struct {
	AccessKey string
	Timestamp int64
	Nonce     string
	Signature string
}

// CanonicalQuery sorts a raw query by key, then value, re-escaping both.
func CanonicalQuery(rawQuery string) (string, error) {
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("query: %w", err)
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), v[k]...)
		sort.Strings(vals)
		for _, val := range vals {
			parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(val))
		}
	}
	return strings.Join(parts, "&"), nil
}

// StringToSign builds what is signed.
func StringToSign(method, escapedPath, rawQuery string, timestamp int64, nonce string, body []byte) (string, error) {
	q, err := CanonicalQuery(rawQuery)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(body)
	return strings.Join([]string{Scheme, strings.ToUpper(method), escapedPath, q, strconv.FormatInt(timestamp, 10), nonce, hex.EncodeToString(sum[:])}, "\n"), nil
}

// Signature returns hex(HMAC-SHA256(secret, stringToSign)).
func Signature(secret []byte, stringToSign string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(stringToSign))
	return hex.EncodeToString(m.Sum(nil))
}

// Header renders the Authorization header.
func (c Credential) Header() string {
	return fmt.Sprintf("%s Credential=%s, Timestamp=%d, Nonce=%s, Signature=%s", Scheme, c.AccessKey, c.Timestamp, c.Nonce, c.Signature)
}

// Parse reads an Authorization header of the scheme.
func Parse(header string) (Credential, error) {
	rest, ok := strings.CutPrefix(header, Scheme+" ")
	if !ok {
		return Credential{}, fmt.Errorf("authorization is not %s", Scheme)
	}
	var c Credential
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return Credential{}, fmt.Errorf("malformed %s field %q", Scheme, part)
		}
		if seen[k] {
			return Credential{}, fmt.Errorf("%s field %s given twice", Scheme, k)
		}
		seen[k] = true
		switch k {
		case "Credential":
			c.AccessKey = v
		case "Timestamp":
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Credential{}, fmt.Errorf("the timestamp %q is not unix seconds", v)
			}
			c.Timestamp = ts
		case "Nonce":
			if len(v) < 8 || len(v) > 128 {
				return Credential{}, errors.New("the nonce must have 8 to 128 characters")
			}
			c.Nonce = v
		case "Signature":
			c.Signature = v
		default:
			return Credential{}, fmt.Errorf("unknown %s field %q", Scheme, k)
		}
	}
	for _, f := range []string{"Credential", "Timestamp", "Nonce", "Signature"} {
		if !seen[f] {
			return Credential{}, fmt.Errorf("%s header has no %s", Scheme, f)
		}
	}
	return c, nil
}

// Verify checks a credential's signature over a request's parts. It does
// not check the time window or the nonce; the server does.
func Verify(secret []byte, c Credential, method, escapedPath, rawQuery string, body []byte) error {
	sts, err := StringToSign(method, escapedPath, rawQuery, c.Timestamp, c.Nonce, body)
	if err != nil {
		return err
	}
	want := Signature(secret, sts)
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(c.Signature))) {
		return errors.New("the signature does not match the request")
	}
	return nil
}

// Sign signs req with the access key and secret, reading and restoring
// its body.
func Sign(req *http.Request, accessKey, secret string) error {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return err
		}
		_ = req.Body.Close()
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	c := Credential{AccessKey: accessKey, Timestamp: time.Now().Unix(), Nonce: hex.EncodeToString(nonce)}
	sts, err := StringToSign(req.Method, req.URL.EscapedPath(), req.URL.RawQuery, c.Timestamp, c.Nonce, body)
	if err != nil {
		return err
	}
	c.Signature = Signature([]byte(secret), sts)
	req.Header.Set("Authorization", c.Header())
	return nil
}

// Transport signs every request it sends.
type Transport struct {
	AccessKey, Secret string
	// Base sends the signed request; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if err := Sign(req, t.AccessKey, t.Secret); err != nil {
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}
