package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/pkg/aksk"
)

// SignatureWindow is how far a signed request's timestamp may be from the
// server's clock.
const SignatureWindow = 5 * time.Minute

type ctxKey int

const (
	principalKey ctxKey = iota
	auditKey
)

func principalFrom(ctx context.Context) *auth.Principal {
	p, _ := ctx.Value(principalKey).(*auth.Principal)
	return p
}

// authenticate finds who sent the request: the admin token, a session
// token, or an AK/SK signature. Anything else is refused with 401.
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, claimed, err := a.principal(r)
		if err != nil {
			if errors.Is(err, errTooLarge) {
				writeProblem(w, r, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge, Detail: err.Error()})
				return
			}
			if ai := auditFrom(r.Context()); ai != nil {
				ai.actor, ai.detail = claimed, err.Error()
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="chaindock", `+aksk.Scheme)
			a.opts.Log.Warn("refused unauthenticated request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err)
			writeProblem(w, r, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized, Detail: err.Error()})
			return
		}
		if ai := auditFrom(r.Context()); ai != nil {
			ai.actor = p.Actor()
		}
		if !a.limiter.allow(p.Actor()) {
			w.Header().Set("Retry-After", "1")
			writeProblem(w, r, Problem{Type: ProblemRateLimited, Status: http.StatusTooManyRequests, Detail: "too many requests from " + p.Actor() + "; slow down"})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

var errTooLarge = fmt.Errorf("the body is larger than the limit of %d bytes", apis.MaxSpecBytes)

// principal returns the principal, or the name it claimed and why it was
// refused.
func (a *API) principal(r *http.Request) (*auth.Principal, string, error) {
	h := r.Header.Get("Authorization")
	ctx := r.Context()
	switch {
	case strings.HasPrefix(h, "Bearer "):
		tok := strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
		if strings.HasPrefix(tok, auth.SessionPrefix) {
			se, err := a.opts.Store.GetSession(ctx, auth.HashToken(tok))
			if err != nil || time.Now().After(se.ExpiresAt) {
				return nil, "session", errors.New("the session token is not valid or has expired; log in again")
			}
			p, err := a.userPrincipal(ctx, se.User)
			if err != nil {
				return nil, "user:" + se.User, errors.New("the session's user no longer exists")
			}
			return p, "", nil
		}
		if a.opts.Token != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.opts.Token)) == 1 {
			return &auth.Principal{Kind: auth.KindAdminToken, Name: "admin", PlatformAdmin: true}, "", nil
		}
		return nil, "bearer", errors.New("the bearer token is not valid")
	case strings.HasPrefix(h, aksk.Scheme+" "):
		return a.keyPrincipal(r, h)
	case h == "":
		return nil, "anonymous", errors.New("this endpoint needs an Authorization header: a bearer token (the admin token is in DATA_DIR/admin.token, or log in) or an AK/SK signature")
	default:
		return nil, "anonymous", errors.New("unsupported Authorization scheme; use Bearer or " + aksk.Scheme)
	}
}

func (a *API) userPrincipal(ctx context.Context, name string) (*auth.Principal, error) {
	u, err := a.opts.Store.GetUser(ctx, name)
	if err != nil {
		return nil, err
	}
	ms, err := a.opts.Store.Memberships(ctx, name)
	if err != nil {
		return nil, err
	}
	p := &auth.Principal{Kind: auth.KindUser, Name: name, PlatformAdmin: u.PlatformAdmin, Roles: map[string]string{}}
	for _, m := range ms {
		p.Roles[m.Org] = m.Role
	}
	return p, nil
}

func (a *API) keyPrincipal(r *http.Request, header string) (*auth.Principal, string, error) {
	c, err := aksk.Parse(header)
	if err != nil {
		return nil, "apikey", err
	}
	claimed := auth.KindAPIKey + ":" + c.AccessKey
	ctx := r.Context()
	k, err := a.opts.Store.GetAPIKey(ctx, c.AccessKey)
	if err != nil {
		return nil, claimed, errors.New("unknown access key")
	}
	now := time.Now()
	switch {
	case !k.RevokedAt.IsZero():
		return nil, claimed, fmt.Errorf("access key %s was revoked", k.ID)
	case !k.ExpiresAt.IsZero() && now.After(k.ExpiresAt):
		return nil, claimed, fmt.Errorf("access key %s expired at %s", k.ID, k.ExpiresAt.Format(time.RFC3339))
	}
	ts := time.Unix(c.Timestamp, 0)
	if ts.Before(now.Add(-SignatureWindow)) || ts.After(now.Add(SignatureWindow)) {
		return nil, claimed, fmt.Errorf("the request's timestamp %s is more than %s from the server's clock %s", ts.UTC().Format(time.RFC3339), SignatureWindow, now.UTC().Format(time.RFC3339))
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, apis.MaxSpecBytes))
	if err != nil {
		return nil, claimed, errTooLarge
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	secret, err := a.opts.Store.GetBlob(ctx, store.APIKeyBlobOwner(k.ID), "secret")
	if err != nil {
		return nil, claimed, fmt.Errorf("access key %s has no secret", k.ID)
	}
	if err := aksk.Verify(secret, c, r.Method, r.URL.EscapedPath(), r.URL.RawQuery, body); err != nil {
		return nil, claimed, err
	}
	// Only a request whose signature checks out may spend a nonce.
	if err := a.opts.Store.UseNonce(ctx, k.ID, c.Nonce, now.Add(2*SignatureWindow)); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return nil, claimed, fmt.Errorf("nonce %s was used before: a replayed request is refused", c.Nonce)
		}
		return nil, claimed, err
	}
	return &auth.Principal{Kind: auth.KindAPIKey, Name: k.ID, Key: &k}, "", nil
}
