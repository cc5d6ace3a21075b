package api

import (
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/store"
)

// TestSignsFor checks whom the platform signs as for a caller on a chain
// whose organisations' identities it holds: a consortium member only as
// itself, the owner of an unshared network as any of its organisations,
// a platform administrator as any.
func TestSignsFor(t *testing.T) {
	shared := &apis.Network{Metadata: apis.ObjectMeta{Name: "fab", Owner: "org1"}, Spec: apis.NetworkSpec{Consortium: "trade"}}
	own := &apis.Network{Metadata: apis.ObjectMeta{Name: "fab", Owner: "org1"}}
	member := func(org string) *auth.Principal {
		return &auth.Principal{Kind: auth.KindUser, Name: "u", Roles: map[string]string{org: "member"}}
	}
	key := &auth.Principal{Kind: auth.KindAPIKey, Name: "k", Key: &store.APIKey{ID: "k", Org: "org2"}}
	admin := &auth.Principal{Kind: auth.KindAdminToken, Name: "admin", PlatformAdmin: true}
	for _, c := range []struct {
		who  string
		p    *auth.Principal
		n    *apis.Network
		org  string
		want bool
	}{
		{"org1 member, shared", member("org1"), shared, "org1", true},
		{"org1 member, shared", member("org1"), shared, "org2", false},
		{"org2 key, shared", key, shared, "org2", true},
		{"org2 key, shared", key, shared, "org1", false},
		{"org1 member, unshared", member("org1"), own, "org2", true},
		{"org2 key, unshared", key, own, "org1", false},
		{"platform admin", admin, shared, "org2", true},
		{"nobody", nil, own, "org1", false},
	} {
		if got := signsFor(c.p, c.n)(c.org); got != c.want {
			t.Errorf("%s as %s: %v, want %v", c.who, c.org, got, c.want)
		}
	}
}
