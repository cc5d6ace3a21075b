package app

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/chaindock/chaindock/pkg/apptx"
)

func TestNotarizeAndVerifyProofs(t *testing.T) {
	c := newTestChain(t, Config{})
	alice, bob := newUser(t, 1), newUser(t, 2)
	owner := map[string]*user{}
	n := 0
	for b := 0; b < 8; b++ {
		var txs [][]byte
		for range b % 4 { // some blocks hold several documents, some none
			u := alice
			if n%2 == 1 {
				u = bob
			}
			txs = append(txs, u.notarize(docName(n), "batch"))
			owner[docName(n)] = u
			n++
		}
		c.mustBlock(txs...)
	}
	for i := range n {
		doc := docName(i)
		var rec apptx.NotaryRecord
		c.get(apptx.PathNotaryDoc, map[string]string{"hash": docHash(doc)}, &rec)
		if rec.Owner != owner[doc].addr || rec.Meta["doc"] != doc || len(rec.Tags) != 1 || !rec.Time.Equal(blockTime(rec.Height)) {
			t.Fatalf("record of %q: %+v", doc, rec)
		}
		var p apptx.NotaryProof
		c.get(apptx.PathNotaryProof, map[string]string{"hash": docHash(doc)}, &p)
		if err := apptx.VerifyProof(&p, c.hashes[p.Height]); err != nil {
			t.Fatalf("proof of %q at %d: %v", doc, p.Height, err)
		}
		if p.TxHash != rec.TxHash || p.DocHash != docHash(doc) {
			t.Fatalf("proof of %q names tx %s doc %s", doc, p.TxHash, p.DocHash)
		}
	}

	var p apptx.NotaryProof
	c.get(apptx.PathNotaryProof+"?hash="+docHash(docName(3)), nil, &p)
	trusted := c.hashes[p.Height]
	tampered := map[string]func(p *apptx.NotaryProof) []byte{
		"leaf byte": func(p *apptx.NotaryProof) []byte { p.Leaf[len(p.Leaf)-2] ^= 1; return trusted },
		"aunt":      func(p *apptx.NotaryProof) []byte { p.Proof.Aunts[0][0] ^= 1; return trusted },
		"index":     func(p *apptx.NotaryProof) []byte { p.Proof.Index ^= 1; return trusted },
		"root":      func(p *apptx.NotaryProof) []byte { p.Root[0] ^= 1; return trusted },
		"prev hash": func(p *apptx.NotaryProof) []byte { p.PrevAppHash[0] ^= 1; return trusted },
		"app hash":  func(*apptx.NotaryProof) []byte { return c.hashes[p.Height-1] },
		"other doc": func(p *apptx.NotaryProof) []byte { p.DocHash = docHash(docName(4)); return trusted },
		"height":    func(p *apptx.NotaryProof) []byte { p.Height++; return trusted },
		"leaf of another document": func(p *apptx.NotaryProof) []byte {
			var q apptx.NotaryProof
			c.get(apptx.PathNotaryProof, map[string]string{"hash": docHash(docName(4))}, &q)
			p.Leaf = q.Leaf
			return trusted
		},
	}
	for name, tamper := range tampered {
		t.Run(name, func(t *testing.T) {
			q := cloneProof(t, &p)
			if err := apptx.VerifyProof(q, tamper(q)); err == nil {
				t.Fatal("tampered proof verified")
			}
		})
	}
}

func cloneProof(t *testing.T, p *apptx.NotaryProof) *apptx.NotaryProof {
	t.Helper()
	bz, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q apptx.NotaryProof
	if err := json.Unmarshal(bz, &q); err != nil {
		t.Fatal(err)
	}
	return &q
}

func TestRefusedTransactionsChangeNothing(t *testing.T) {
	c := newTestChain(t, Config{})
	alice, bob, mallory := newUser(t, 1), newUser(t, 2), newUser(t, 3)
	notarized := alice.notarize(docName(0))
	c.mustBlock(notarized, alice.issue("EUR", 100), bob.notarize(docName(1)), mallory.notarize(docName(2)))
	c.mustBlock(alice.issue("MAX", math.MaxUint64))

	signedBy := func(u *user, tx *apptx.Tx) []byte { return u.sign(tx) }
	from := func(u *user) string { return hex.EncodeToString(u.pub) }
	forged := apptx.Issue(testChain, alice.pub, alice.nonce+1, "EUR", 1)
	sb, err := apptx.SignBytes(forged)
	if err != nil {
		t.Fatal(err)
	}
	forged.Sig = ed25519.Sign(mallory.priv, sb)
	forgedBytes, err := apptx.Encode(forged)
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err := apptx.Encode(apptx.Issue(testChain, alice.pub, alice.nonce+1, "EUR", 1))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		tx   []byte
		code uint32
		log  string
	}{
		{"malformed", []byte(`{"chainID":`), apptx.CodeMalformed, "malformed"},
		{"unknown type", []byte(`{"chainID":"` + testChain + `","type":"mint","from":"` + from(alice) + `","nonce":3,"body":{}}`), apptx.CodeUnknownType, "type"},
		{"negative amount", []byte(`{"chainID":"` + testChain + `","type":"issue","from":"` + from(alice) + `","nonce":3,"body":{"asset":"EUR","amount":-1}}`), apptx.CodeInvalidBody, "body.amount"},
		{"amount past uint64", []byte(`{"chainID":"` + testChain + `","type":"issue","from":"` + from(alice) + `","nonce":3,"body":{"asset":"EUR","amount":18446744073709551616}}`), apptx.CodeInvalidBody, "body.amount"},
		{"unsigned", unsigned, apptx.CodeUnsigned, "sig"},
		{"bad signature", forgedBytes, apptx.CodeBadSignature, "sig"},
		{"wrong chain", signedBy(alice, apptx.Issue("other-chain", alice.pub, alice.nonce+1, "EUR", 1)), apptx.CodeWrongChain, "chainID"},
		{"replay", notarized, apptx.CodeBadNonce, "nonce"},
		{"nonce gap", signedBy(alice, apptx.Issue(testChain, alice.pub, alice.nonce+2, "EUR", 1)), apptx.CodeBadNonce, "nonce"},
		{"duplicate document", signedBy(bob, apptx.Notarize(testChain, bob.pub, bob.nonce+1, docHash(docName(0)), nil, nil)), apptx.CodeDocExists, "body.hash"},
		{"not issuer", signedBy(bob, apptx.Issue(testChain, bob.pub, bob.nonce+1, "EUR", 1)), apptx.CodeNotIssuer, "body.asset"},
		{"supply overflow", signedBy(alice, apptx.Issue(testChain, alice.pub, alice.nonce+1, "MAX", 1)), apptx.CodeSupplyOverflow, "body.amount"},
		{"over-spend", signedBy(alice, apptx.Transfer(testChain, alice.pub, alice.nonce+1, "EUR", bob.addr, 101)), apptx.CodeInsufficientFunds, "body.amount"},
		{"no funds", signedBy(mallory, apptx.Transfer(testChain, mallory.pub, mallory.nonce+1, "EUR", bob.addr, 1)), apptx.CodeInsufficientFunds, "body.amount"},
		{"unknown asset", signedBy(alice, apptx.Transfer(testChain, alice.pub, alice.nonce+1, "USD", bob.addr, 1)), apptx.CodeUnknownAsset, "body.asset"},
		{"self transfer", signedBy(alice, apptx.Transfer(testChain, alice.pub, alice.nonce+1, "EUR", alice.addr, 1)), apptx.CodeSelfTransfer, "body.to"},
		{"bad recipient", signedBy(alice, apptx.Transfer(testChain, alice.pub, alice.nonce+1, "EUR", "ABCD", 1)), apptx.CodeInvalidBody, "body.to"},
		{"zero amount", signedBy(alice, apptx.Issue(testChain, alice.pub, alice.nonce+1, "EUR", 0)), apptx.CodeInvalidBody, "body.amount"},
		{"bad sender key", []byte(`{"chainID":"` + testChain + `","type":"issue","from":"abcd","nonce":3,"body":{"asset":"EUR","amount":1},"sig":"AAAA"}`), apptx.CodeInvalidSender, "from"},
		{"too large", append(bytes.Repeat([]byte(" "), apptx.MaxTxBytes), unsigned...), apptx.CodeTooLarge, "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, nonceBefore := c.info().LastBlockAppHash, c.account(alice.addr).Nonce
			check, err := c.app.CheckTx(t.Context(), &abci.RequestCheckTx{Tx: tt.tx})
			if err != nil {
				t.Fatal(err)
			}
			if check.Code != tt.code || !strings.Contains(check.Log, tt.log) {
				t.Fatalf("CheckTx: code %d %q, want %d naming %q", check.Code, check.Log, tt.code, tt.log)
			}
			res := c.block(tt.tx)
			if r := res.TxResults[0]; r.Code != tt.code || !strings.Contains(r.Log, tt.log) {
				t.Fatalf("FinalizeBlock: code %d %q, want %d naming %q", r.Code, r.Log, tt.code, tt.log)
			}
			if !bytes.Equal(res.AppHash, before) || !bytes.Equal(c.info().LastBlockAppHash, before) {
				t.Fatal("a refused transaction changed the app hash")
			}
			if got := c.account(alice.addr).Nonce; got != nonceBefore {
				t.Fatalf("nonce %d, was %d", got, nonceBefore)
			}
		})
	}
}
