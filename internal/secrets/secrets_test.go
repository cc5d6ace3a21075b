package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/store/sqlite"
)

func TestSealOpen(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	r := NewStatic("k1", key)
	secret := []byte("validator private key material")
	sealed, err := r.Seal(secret, []byte("net-a/plan"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed value holds the plaintext")
	}
	if pt, err := r.Open(sealed, []byte("net-a/plan")); err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := r.Open(sealed, []byte("net-b/plan")); err == nil {
		t.Fatal("a value opened under another owner's AAD")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := r.Open(sealed, []byte("net-a/plan")); err == nil {
		t.Fatal("a tampered value opened")
	}
	other := NewStatic("k2", key)
	s2, _ := other.Seal(secret, nil)
	if _, err := r.Open(s2, nil); err == nil || !strings.Contains(err.Error(), "k2") {
		t.Fatalf("a value sealed with an unknown key: %v", err)
	}
}

func TestKeyringFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	r, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file: %v %v", err, fi.Mode())
	}
	sealed, _ := r.Seal([]byte("x"), nil)
	r2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := r2.Open(sealed, nil); err != nil || string(pt) != "x" {
		t.Fatalf("reloaded ring: %q %v", pt, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("a world-readable keyring was accepted: %v", err)
	}
	t.Setenv(EnvKey, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	env, err := Load(path)
	if err != nil || env.Primary() != "env" {
		t.Fatalf("key from the environment: %v %v", env, err)
	}
	if _, err := env.Rotate(); err == nil {
		t.Fatal("a key from the environment was rotated")
	}
	t.Setenv(EnvKey, "c2hvcnQ=")
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "want 32") {
		t.Fatalf("a short key was accepted: %v", err)
	}
}

// TestRotateWithoutDowntime: after a rotation every blob opens, is sealed
// with the new key, and the old key is gone from the ring and the file.
func TestRotateWithoutDowntime(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := Load(filepath.Join(dir, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	old := keys.Primary()
	s := &SealedStore{Store: db, Keys: keys}
	ctx := t.Context()
	for _, u := range []string{"a", "b", "c"} {
		if err := s.PutBlob(ctx, u, "plan", []byte("secret of "+u)); err != nil {
			t.Fatal(err)
		}
	}
	// A blob from before sealing existed, stored in clear.
	if err := db.PutBlob(ctx, "legacy", "plan", []byte("legacy secret")); err != nil {
		t.Fatal(err)
	}
	id, n, err := s.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id == old || n != 4 {
		t.Fatalf("rotate: new key %s (old %s), %d resealed, want 4", id, old, n)
	}
	for _, u := range []string{"a", "b", "c", "legacy"} {
		raw, _ := db.GetBlob(ctx, u, "plan")
		if kid, err := KeyID(raw); err != nil || kid != id {
			t.Errorf("%s is sealed with %q (%v), want %s", u, kid, err, id)
		}
		if bytes.Contains(raw, []byte("secret")) {
			t.Errorf("%s is stored in clear", u)
		}
	}
	if pt, err := s.GetBlob(ctx, "b", "plan"); err != nil || string(pt) != "secret of b" {
		t.Fatalf("after rotation: %q %v", pt, err)
	}
	if ids := keys.IDs(); len(ids) != 1 || ids[0] != id {
		t.Fatalf("old keys not retired: %v", ids)
	}
	reloaded, err := Load(filepath.Join(dir, "keyring.json"))
	if err != nil || reloaded.Primary() != id || len(reloaded.IDs()) != 1 {
		t.Fatalf("saved ring: %v %v", reloaded.IDs(), err)
	}
}
