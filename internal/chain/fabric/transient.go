package fabric

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// Bounds on a call's transient map.
const (
	maxTransientKeys  = 32
	maxTransientBytes = 256 << 10
)

// TransientValue is one value of a call's transient map: in JSON, a
// string holds its base64, as Fabric's peer CLI takes it, and
// {"text": STRING} its UTF-8 text (or {"base64": STRING}).
type TransientValue []byte

// UnmarshalJSON implements json.Unmarshaler. Its errors never quote the
// value, which is private.
func (v *TransientValue) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return errors.New("a transient value given as a string is base64; write {\"text\": ...} for text")
		}
		*v = raw
		return nil
	}
	var o struct {
		Text   *string `json:"text"`
		Base64 *string `json:"base64"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil || (o.Text == nil) == (o.Base64 == nil) {
		return errors.New(`a transient value is a base64 string, {"text": STRING} or {"base64": STRING}`)
	}
	if o.Text != nil {
		*v = []byte(*o.Text)
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(*o.Base64)
	if err != nil {
		return errors.New("a transient value's base64 does not decode")
	}
	*v = raw
	return nil
}

// MarshalJSON implements json.Marshaler: the base64 string.
func (v TransientValue) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.StdEncoding.EncodeToString(v))
}

// checkTransient says what is wrong with a call's transient map, without
// its values.
func checkTransient(t map[string]TransientValue) []string {
	var problems []string
	if len(t) > maxTransientKeys {
		problems = append(problems, fmt.Sprintf("transient: %d keys, at most %d", len(t), maxTransientKeys))
	}
	total := 0
	for _, k := range slices.Sorted(maps.Keys(t)) {
		if k == "" || len(k) > maxFunctionName || strings.ContainsAny(k, "\x00") {
			problems = append(problems, fmt.Sprintf("transient: %q is no key (1 to %d characters, no NUL)", k, maxFunctionName))
		}
		total += len(k) + len(t[k])
	}
	if total > maxTransientBytes {
		problems = append(problems, fmt.Sprintf("transient: %d bytes, at most %d", total, maxTransientBytes))
	}
	return problems
}

// transientMap is the call's transient map as the proposal carries it.
func (c Call) transientMap() map[string][]byte {
	if len(c.Transient) == 0 {
		return nil
	}
	out := make(map[string][]byte, len(c.Transient))
	for k, v := range c.Transient {
		out[k] = []byte(v)
	}
	return out
}

// callNonce is the nonce of the transaction of body, a call signed by
// signer, from which Fabric makes the transaction ID (the hash of the
// nonce and the signer's identity), and which the channel records: the
// same body gives the same transaction. A call without transient data
// has the hash of its body. One with it has the hash of the call without
// it, followed by a MAC of the transient map under a key derived from
// the signer's private key: the ID then tells two calls with different
// private data apart, and tells nothing of the data to whoever reads the
// channel.
func callNonce(body []byte, c Call, signer channel.Signer) ([]byte, error) {
	if len(c.Transient) == 0 {
		sum := sha256.Sum256(body)
		return sum[:], nil
	}
	public := c
	public.Transient = nil
	b, err := json.Marshal(public)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(signer.Key)
	if err != nil {
		return nil, fmt.Errorf("transient data key: %w", err)
	}
	key := sha256.Sum256(append([]byte("chaindock fabric transient nonce\x00"), der...))
	mac := hmac.New(sha256.New, key[:])
	for _, k := range slices.Sorted(maps.Keys(c.Transient)) {
		_, _ = fmt.Fprintf(mac, "%d:%s%d:", len(k), k, len(c.Transient[k]))
		_, _ = mac.Write(c.Transient[k])
	}
	sum := sha256.Sum256(b)
	return append(sum[:], mac.Sum(nil)...), nil
}
