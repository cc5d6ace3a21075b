package apptx

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"io"
)

// AddressLen is the length in bytes of an address.
const AddressLen = 20

// GenerateKey returns a new ed25519 key pair; rand nil means crypto/rand.
func GenerateKey(rand io.Reader) (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand)
}

// Address is the lower-case hex of the first 20 bytes of sha256(pub).
func Address(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:AddressLen])
}
