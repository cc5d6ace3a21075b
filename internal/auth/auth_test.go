package auth

import (
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/store"
)

func TestPasswords(t *testing.T) {
	if _, err := HashPassword("short"); err == nil {
		t.Fatal("a short password was accepted")
	}
	h, err := HashPassword("a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") || strings.Contains(h, "a long enough password") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := HashPassword("a long enough password")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if !CheckPassword(h, "a long enough password") || CheckPassword(h, "a long enough passwore") {
		t.Fatal("CheckPassword is wrong")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=x$AA$AA", "$argon2id$v=19$m=1,t=1,p=1$!!$AA"} {
		if CheckPassword(bad, "anything") {
			t.Errorf("a malformed hash %q matched", bad)
		}
	}
}

func TestTokensAndKeys(t *testing.T) {
	tok, hash, err := NewToken()
	if err != nil || !strings.HasPrefix(tok, SessionPrefix) || HashToken(tok) != hash || strings.Contains(hash, tok) {
		t.Fatalf("token %q hash %q: %v", tok, hash, err)
	}
	id, secret, err := NewAPIKey()
	if err != nil || !strings.HasPrefix(id, "AK") || len(secret) < 40 {
		t.Fatalf("key %q %q: %v", id, secret, err)
	}
}

func TestAllowAPIKeyScope(t *testing.T) {
	k := &Principal{Kind: KindAPIKey, Name: "AK1", Key: &store.APIKey{ID: "AK1", Org: "org1", Actions: []string{"network.read"}, Networks: []string{"a"}}}
	for _, tc := range []struct {
		action Action
		scope  Scope
		ok     bool
	}{
		{NetworkRead, Scope{Org: "org1", Network: "a"}, true},
		{NetworkRead, Scope{Org: "org1", Network: "b"}, false},
		{NetworkRead, Scope{Org: "org2", Network: "a"}, false},
		{NetworkRead, Scope{Org: "org2", Members: []string{"org1"}, Network: "a"}, true},
		{NetworkWrite, Scope{Org: "org1", Network: "a"}, false},
		{OrgRead, Scope{Org: "org1"}, false},
		{PlatformManage, Scope{}, false},
	} {
		if err := Allow(k, tc.action, tc.scope); (err == nil) != tc.ok {
			t.Errorf("%s on %+v: %v, want allowed=%v", tc.action, tc.scope, err, tc.ok)
		}
	}
	if Allow(nil, NetworkRead, Scope{}) == nil {
		t.Error("no principal was allowed")
	}
}
