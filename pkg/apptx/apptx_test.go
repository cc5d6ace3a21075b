package apptx_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/pkg/apptx"
)

func testKey(t *testing.T, seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

func TestSignEncodeDecode(t *testing.T) {
	pub, priv := testKey(t, 1)
	doc := sha256.Sum256([]byte("contract"))
	txs := []*apptx.Tx{
		apptx.Notarize("c1", pub, 1, hex.EncodeToString(doc[:]), []string{"a<b"}, map[string]string{"z": "1", "a": "2"}),
		apptx.Issue("c1", pub, 2, "EUR", 100),
		apptx.Transfer("c1", pub, 3, "EUR", strings.Repeat("ab", 20), 5),
	}
	for _, tx := range txs {
		t.Run(string(tx.Type), func(t *testing.T) {
			if err := apptx.Sign(tx, priv); err != nil {
				t.Fatal(err)
			}
			bz, err := apptx.Encode(tx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := apptx.Decode(bz)
			if err != nil {
				t.Fatalf("decode %s: %v", bz, err)
			}
			if err := got.ValidateBasic(); err != nil {
				t.Fatal(err)
			}
			if err := got.VerifySignature(); err != nil {
				t.Fatal(err)
			}
			again, err := apptx.Encode(got)
			if err != nil || !bytes.Equal(again, bz) {
				t.Fatalf("re-encoding differs:\n%s\n%s", bz, again)
			}
		})
	}
}

func TestSignBytesAreDocumentedForm(t *testing.T) {
	pub, _ := testKey(t, 1)
	tx := apptx.Notarize("c1", pub, 7, strings.Repeat("0", 64), []string{"x&y"}, map[string]string{"b": "2", "a": "1"})
	sb, err := apptx.SignBytes(tx)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"chainID":"c1","type":"notarize","from":"` + hex.EncodeToString(pub) + `","nonce":7,"body":{"hash":"` +
		strings.Repeat("0", 64) + `","tags":["x&y"],"meta":{"a":"1","b":"2"}}}`
	if string(sb) != want {
		t.Fatalf("sign bytes\n got %s\nwant %s", sb, want)
	}
}

func TestHashIsCometBFTs(t *testing.T) {
	sum := sha256.Sum256([]byte("tx"))
	if got, want := apptx.Hash([]byte("tx")), strings.ToUpper(hex.EncodeToString(sum[:])); got != want {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
}

func TestDecodeRefusals(t *testing.T) {
	from := strings.Repeat("ab", 32)
	tests := []struct {
		name, tx string
		code     uint32
		field    string
	}{
		{"not json", `nope`, apptx.CodeMalformed, ""},
		{"trailing", `{"type":"issue","body":{"asset":"AB","amount":1}} {}`, apptx.CodeMalformed, "trailing"},
		{"unknown field", `{"type":"issue","color":1,"body":{}}`, apptx.CodeMalformed, "color"},
		{"nonce type", `{"type":"issue","nonce":"1","body":{}}`, apptx.CodeMalformed, "nonce"},
		{"negative nonce", `{"type":"issue","nonce":-1,"body":{}}`, apptx.CodeMalformed, "nonce"},
		{"unknown type", `{"type":"burn","body":{}}`, apptx.CodeUnknownType, "type"},
		{"no body", `{"type":"issue"}`, apptx.CodeInvalidBody, "body"},
		{"negative amount", `{"type":"issue","body":{"asset":"AB","amount":-5}}`, apptx.CodeInvalidBody, "body.amount"},
		{"amount too big", `{"type":"issue","body":{"asset":"AB","amount":18446744073709551616}}`, apptx.CodeInvalidBody, "body.amount"},
		{"body unknown field", `{"type":"transfer","body":{"asset":"AB","too":"x"}}`, apptx.CodeInvalidBody, "too"},
		{"bad sig encoding", `{"type":"issue","from":"` + from + `","body":{"asset":"AB","amount":1},"sig":"!!"}`, apptx.CodeMalformed, "sig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apptx.Decode([]byte(tt.tx))
			if code := apptx.CodeOf(err); code != tt.code {
				t.Fatalf("code %d (%v), want %d", code, err, tt.code)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %q", err, tt.field)
			}
		})
	}
}

func TestValidateBasic(t *testing.T) {
	pub, priv := testKey(t, 1)
	self := apptx.Address(pub)
	tests := []struct {
		name string
		tx   *apptx.Tx
		code uint32
	}{
		{"short hash", apptx.Notarize("c", pub, 1, "abc", nil, nil), apptx.CodeInvalidBody},
		{"upper hash", apptx.Notarize("c", pub, 1, strings.Repeat("A", 64), nil, nil), apptx.CodeInvalidBody},
		{"too many tags", apptx.Notarize("c", pub, 1, strings.Repeat("a", 64), make([]string, 17), nil), apptx.CodeInvalidBody},
		{"long tag", apptx.Notarize("c", pub, 1, strings.Repeat("a", 64), []string{strings.Repeat("t", 65)}, nil), apptx.CodeInvalidBody},
		{"big meta", apptx.Notarize("c", pub, 1, strings.Repeat("a", 64), nil, map[string]string{"k": strings.Repeat("v", 257)}), apptx.CodeInvalidBody},
		{"bad symbol", apptx.Issue("c", pub, 1, "eur", 1), apptx.CodeInvalidBody},
		{"zero amount", apptx.Issue("c", pub, 1, "EUR", 0), apptx.CodeInvalidBody},
		{"bad to", apptx.Transfer("c", pub, 1, "EUR", "xyz", 1), apptx.CodeInvalidBody},
		{"self transfer", apptx.Transfer("c", pub, 1, "EUR", self, 1), apptx.CodeSelfTransfer},
		{"bad from", &apptx.Tx{Type: apptx.TypeIssue, From: "00", Body: apptx.IssueBody{Asset: "EUR", Amount: 1}}, apptx.CodeInvalidSender},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.tx.From != "00" {
				if err := apptx.Sign(tt.tx, priv); err != nil {
					t.Fatal(err)
				}
			}
			if code := apptx.CodeOf(tt.tx.ValidateBasic()); code != tt.code {
				t.Fatalf("code %d (%v), want %d", code, tt.tx.ValidateBasic(), tt.code)
			}
		})
	}
	unsigned := apptx.Issue("c", pub, 1, "EUR", 1)
	if code := apptx.CodeOf(unsigned.ValidateBasic()); code != apptx.CodeUnsigned {
		t.Fatalf("unsigned: code %d", code)
	}
	_, otherPriv := testKey(t, 2)
	forged := apptx.Issue("c", pub, 1, "EUR", 1)
	sb, _ := apptx.SignBytes(forged)
	forged.Sig = ed25519.Sign(otherPriv, sb)
	if code := apptx.CodeOf(forged.VerifySignature()); code != apptx.CodeBadSignature {
		t.Fatalf("forged: code %d", code)
	}
}

func TestLeafRoundTrip(t *testing.T) {
	leaf := apptx.EncodeLeaf([]byte("doc/ab"), []byte(`{"x":1}`))
	k, v, err := apptx.DecodeLeaf(leaf)
	if err != nil || string(k) != "doc/ab" || string(v) != `{"x":1}` {
		t.Fatalf("DecodeLeaf = %q %q %v", k, v, err)
	}
	if _, _, err := apptx.DecodeLeaf(append(leaf, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	if _, _, err := apptx.DecodeLeaf(leaf[:len(leaf)-1]); err == nil {
		t.Fatal("short leaf accepted")
	}
}
