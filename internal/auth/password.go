// Package auth decides who a request comes from and what it may do: local
// accounts with argon2id password hashes, session tokens, API keys, and the
// permission rules that every API call passes through (deny by default).
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters (RFC 9106's second recommended option, with a
// smaller memory to suit a 2-core server: 64 MiB, 3 passes).
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
	// MinPasswordLength is the shortest password accepted.
	MinPasswordLength = 12
)

// HashPassword returns a PHC-format argon2id hash of pw.
func HashPassword(pw string) (string, error) {
	if len(pw) < MinPasswordLength {
		return "", fmt.Errorf("password must have at least %d characters", MinPasswordLength)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches hash, in constant time.
func CheckPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	if len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want))) //nolint:gosec // bounded just above
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when a user does not exist, so that a
// login takes as long for a wrong name as for a wrong password. It is made
// on first use: hashing at start-up would cost every chaindock command,
// the CLI's included, a second.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("no-such-user-password")
	return h
})

// CheckMissingUser spends the time a real check would.
func CheckMissingUser(pw string) { _ = CheckPassword(dummyHash(), pw) }

// SessionPrefix marks session tokens, so they are told from admin tokens.
const SessionPrefix = "cds_"

// NewToken returns a new session token and the hash it is stored under.
func NewToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = SessionPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is what a token is stored and looked up by.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewAPIKey returns a new access key ID and secret.
func NewAPIKey() (id, secret string, err error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		return "", "", err
	}
	return "AK" + strings.ToUpper(hex.EncodeToString(b)), base64.RawURLEncoding.EncodeToString(s), nil
}

// ErrDenied is returned for every refused action.
var ErrDenied = errors.New("permission denied")
