package apptx_test

import (
	"testing"

	"github.com/chaindock/chaindock/pkg/apptx"
)

// FuzzDecodeTx checks that no input makes decoding, validation or signature
// checking panic, and that a decoded transaction re-encodes to something
// that decodes again.
func FuzzDecodeTx(f *testing.F) {
	from := "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737"
	for _, s := range []string{
		`{"chainID":"c","type":"notarize","from":"` + from + `","nonce":1,"body":{"hash":"` +
			"0000000000000000000000000000000000000000000000000000000000000000" + `","tags":["a"],"meta":{"k":"v"}},"sig":"AAAA"}`,
		`{"chainID":"c","type":"issue","from":"` + from + `","nonce":2,"body":{"asset":"EUR","amount":5}}`,
		`{"chainID":"c","type":"transfer","from":"` + from + `","nonce":3,"body":{"asset":"EUR","to":"00","amount":18446744073709551615}}`,
		`{"type":"transfer","body":null}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, bz []byte) {
		tx, err := apptx.Decode(bz)
		if err != nil {
			if apptx.CodeOf(err) == apptx.CodeOK {
				t.Fatalf("error without code: %v", err)
			}
			return
		}
		_ = tx.ValidateBasic()
		_ = tx.VerifySignature()
		_ = tx.Sender()
		out, err := apptx.Encode(tx)
		if err != nil {
			t.Fatalf("encode decoded tx: %v", err)
		}
		if _, err := apptx.Decode(out); err != nil {
			t.Fatalf("re-encoded tx does not decode: %v\n%s", err, out)
		}
	})
}
