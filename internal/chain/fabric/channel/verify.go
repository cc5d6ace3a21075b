package channel

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// verifyECDSA checks an ASN.1 ECDSA signature over SHA-256(msg) and that
// its S is in the lower half of the curve order, which Fabric requires to
// rule out malleable signatures.
func verifyECDSA(cert *x509.Certificate, msg, sig []byte) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("a %T key, not ECDSA", cert.PublicKey)
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 {
		return errors.New("signature is not an ASN.1 ECDSA signature")
	}
	half := new(big.Int).Rsh(pub.Curve.Params().N, 1)
	if rs.S.Cmp(half) > 0 {
		return errors.New("signature has a high S, which Fabric refuses")
	}
	digest := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return errors.New("signature does not verify")
	}
	return nil
}
