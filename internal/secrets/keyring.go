// Package secrets seals what ChainDock keeps that must stay secret (node
// private keys in plans, and later kubeconfigs and API secrets) with
// AES-256-GCM under a key-encryption key the store never sees. Keys have
// IDs, so that a rotation adds a key, makes it primary and re-encrypts at
// leisure while every sealed value stays readable.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sealed values start with this byte, so a value sealed by another
// format version is recognised.
const formatV1 byte = 1

// ErrNoKey means a value was sealed with a key the ring no longer has.
var ErrNoKey = errors.New("sealed with a key that is not in the keyring")

// Keyring holds the key-encryption keys.
type Keyring struct {
	mu      sync.RWMutex
	path    string // where the ring is saved; empty for a ring from the environment
	primary string
	keys    map[string][]byte
}

type keyringFile struct {
	Primary string            `json:"primary"`
	Keys    map[string]string `json:"keys"` // id → base64 of 32 bytes
}

// EnvKey holds a base64 AES-256 key; when set it is the only key.
const EnvKey = "CHAINDOCK_KEK"

// Load returns the keyring: the key in $CHAINDOCK_KEK if set, else the
// keyring file at path, created with a new random key on first use (mode
// 0600; a file readable by others is refused).
func Load(path string) (*Keyring, error) {
	if v := os.Getenv(EnvKey); v != "" {
		k, err := decodeKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKey, err)
		}
		return &Keyring{primary: "env", keys: map[string][]byte{"env": k}}, nil
	}
	r := &Keyring{path: path, keys: map[string][]byte{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := r.Rotate(); err != nil {
			return nil, err
		}
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keyring %s is readable by others (mode %o); chmod 600 it", path, fi.Mode().Perm())
	}
	var f keyringFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	for id, v := range f.Keys {
		k, err := decodeKey(v)
		if err != nil {
			return nil, fmt.Errorf("keyring %s key %s: %w", path, id, err)
		}
		r.keys[id] = k
	}
	if _, ok := r.keys[f.Primary]; !ok {
		return nil, fmt.Errorf("keyring %s: primary key %q is not in it", path, f.Primary)
	}
	r.primary = f.Primary
	return r, nil
}

// NewStatic returns a keyring of one key, for tests.
func NewStatic(id string, key []byte) *Keyring {
	return &Keyring{primary: id, keys: map[string][]byte{id: key}}
}

func decodeKey(v string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return nil, errors.New("not base64")
	}
	if len(k) != 32 {
		return nil, fmt.Errorf("key is %d bytes, want 32 (AES-256)", len(k))
	}
	return k, nil
}

// Primary is the ID of the key new values are sealed with.
func (r *Keyring) Primary() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.primary
}

// IDs lists the key IDs in the ring.
func (r *Keyring) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Rotate adds a new random key, makes it primary and saves the ring. Values
// sealed with older keys stay readable until Retire removes those keys.
func (r *Keyring) Rotate() (string, error) {
	if r.path == "" {
		return "", fmt.Errorf("the key comes from %s and cannot be rotated here: set a new one and restart", EnvKey)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	id := "k" + time.Now().UTC().Format("20060102T150405.000000000")
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.primary
	r.keys[id] = k
	r.primary = id
	if err := r.saveLocked(); err != nil {
		delete(r.keys, id)
		r.primary = old
		return "", err
	}
	return id, nil
}

// Retire removes every key but the primary; call it once nothing is sealed
// with them any more.
func (r *Keyring) Retire() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path == "" {
		return nil
	}
	for id := range r.keys {
		if id != r.primary {
			delete(r.keys, id)
		}
	}
	return r.saveLocked()
}

func (r *Keyring) saveLocked() error {
	f := keyringFile{Primary: r.primary, Keys: map[string]string{}}
	for id, k := range r.keys {
		f.Keys[id] = base64.StdEncoding.EncodeToString(k)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.path)
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext with the primary key. aad binds the value to
// where it is kept (its owner and name), so it cannot be moved elsewhere.
func (r *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	r.mu.RLock()
	id, key := r.primary, r.keys[r.primary]
	r.mu.RUnlock()
	a, err := gcm(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := make([]byte, 0, 2+len(id)+len(nonce)+len(plaintext)+a.Overhead())
	out = append(out, formatV1, byte(len(id)))
	out = append(out, id...)
	out = append(out, nonce...)
	return a.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a value Seal made, with whichever key of the ring sealed it.
func (r *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	id, nonceAndCT, err := split(sealed)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	key, ok := r.keys[id]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("key %q: %w", id, ErrNoKey)
	}
	a, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if len(nonceAndCT) < a.NonceSize() {
		return nil, errors.New("sealed value is truncated")
	}
	pt, err := a.Open(nil, nonceAndCT[:a.NonceSize()], nonceAndCT[a.NonceSize():], aad)
	if err != nil {
		return nil, errors.New("sealed value does not authenticate (tampered, or sealed for another place)")
	}
	return pt, nil
}

// KeyID returns the ID of the key a value was sealed with.
func KeyID(sealed []byte) (string, error) {
	id, _, err := split(sealed)
	return id, err
}

func split(sealed []byte) (string, []byte, error) {
	if len(sealed) < 2 || sealed[0] != formatV1 {
		return "", nil, errors.New("not a sealed value")
	}
	n := int(sealed[1])
	if len(sealed) < 2+n {
		return "", nil, errors.New("sealed value is truncated")
	}
	return string(sealed[2 : 2+n]), sealed[2+n:], nil
}
