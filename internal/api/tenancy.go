package api

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/store"
)

// Login lockout: after lockAfter failures in a row an account is locked,
// for lockBase doubling with each further failure, at most lockMax.
const (
	lockAfter = 5
	lockBase  = 30 * time.Second
	lockMax   = 15 * time.Minute
	// SessionTTL is how long a login lasts.
	SessionTTL = 12 * time.Hour
	// InvitationTTL is how long an invitation stays open by default.
	InvitationTTL = 7 * 24 * time.Hour
)

// decodeBody reads a small JSON request body strictly.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest, Detail: "the body must be a JSON object with the documented fields: " + err.Error()})
		return false
	}
	return true
}

func invalid(w http.ResponseWriter, r *http.Request, errs apis.ErrorList) bool {
	if len(errs) == 0 {
		return false
	}
	writeProblem(w, r, Problem{Type: ProblemInvalid, Status: http.StatusUnprocessableEntity, Detail: "the request is not valid", Errors: errs})
	return true
}

func checkName(errs *apis.ErrorList, field, v string) {
	if v == "" {
		errs.Add(field, "is required")
		return
	}
	if len(v) > apis.MaxNameLength || len(validation.IsDNS1123Label(v)) > 0 {
		errs.Add(field, "%q is not a valid name: use at most %d lower-case letters, digits and '-'", v, apis.MaxNameLength)
	}
}

// allow writes 403 and returns false when p may not do action on scope.
func (a *API) allow(w http.ResponseWriter, r *http.Request, action auth.Action, scope auth.Scope) bool {
	if err := auth.Allow(principalFrom(r.Context()), action, scope); err != nil {
		if ai := auditFrom(r.Context()); ai != nil {
			ai.detail = err.Error()
		}
		writeProblem(w, r, Problem{Type: ProblemForbidden, Status: http.StatusForbidden, Detail: err.Error()})
		return false
	}
	return true
}

func notFoundProblem(w http.ResponseWriter, r *http.Request, what string) {
	writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: what + " not found"})
}

// --- sessions ---

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// LoginResponse carries a session token.
type LoginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	User      string    `json:"user"`
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	if !a.loginLimiter.allow(clientIP(r)) {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Type: ProblemRateLimited, Status: http.StatusTooManyRequests, Detail: "too many login attempts from this address; slow down"})
		return
	}
	var req LoginRequest
	if !decodeBody(w, r, &req) {
		return
	}
	ctx := r.Context()
	ai := auditFrom(ctx)
	ai.actor = auth.KindUser + ":" + req.User
	u, err := a.opts.Store.GetUser(ctx, req.User)
	if err != nil {
		auth.CheckMissingUser(req.Password)
		ai.detail = "unknown user or wrong password"
		writeProblem(w, r, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized, Detail: "unknown user or wrong password"})
		return
	}
	now := time.Now()
	if now.Before(u.LockedUntil) {
		wait := u.LockedUntil.Sub(now).Round(time.Second)
		ai.detail = "account locked"
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeProblem(w, r, Problem{Type: ProblemLocked, Status: http.StatusTooManyRequests, Detail: fmt.Sprintf("the account is locked after %d failed logins; try again in %s", u.FailedLogins, wait)})
		return
	}
	if !auth.CheckPassword(u.PasswordHash, req.Password) {
		failed := u.FailedLogins + 1
		var until time.Time
		if failed >= lockAfter {
			until = now.Add(min(lockBase<<min(failed-lockAfter, 10), lockMax))
		}
		_ = a.opts.Store.RecordLogin(ctx, u.Name, failed, until)
		ai.detail = "unknown user or wrong password"
		writeProblem(w, r, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized, Detail: "unknown user or wrong password"})
		return
	}
	if u.FailedLogins != 0 {
		_ = a.opts.Store.RecordLogin(ctx, u.Name, 0, time.Time{})
	}
	tok, hash, err := auth.NewToken()
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	exp := now.Add(SessionTTL).UTC()
	if err := a.opts.Store.CreateSession(ctx, store.Session{TokenHash: hash, User: u.Name, ExpiresAt: exp}); err != nil {
		a.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, LoginResponse{Token: tok, ExpiresAt: exp, User: u.Name})
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get("Authorization")
	if len(tok) > 7 {
		_ = a.opts.Store.DeleteSession(r.Context(), auth.HashToken(tok[7:]))
	}
	w.WriteHeader(http.StatusNoContent)
}

// Whoami is the body of GET /api/v1/whoami.
type Whoami struct {
	Kind          string            `json:"kind"`
	Name          string            `json:"name"`
	PlatformAdmin bool              `json:"platformAdmin"`
	Roles         map[string]string `json:"roles,omitempty"`
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	out := Whoami{Kind: p.Kind, Name: p.Name, PlatformAdmin: p.PlatformAdmin, Roles: p.Roles}
	if p.Key != nil {
		out.Roles = map[string]string{p.Key.Org: "apikey"}
	}
	writeJSON(w, http.StatusOK, out)
}

// --- users ---

// UserRequest creates a user.
type UserRequest struct {
	Name          string `json:"name"`
	Password      string `json:"password"`
	PlatformAdmin bool   `json:"platformAdmin,omitempty"`
}

// User is a user as the API shows it (never the password hash).
type User struct {
	Name          string    `json:"name"`
	PlatformAdmin bool      `json:"platformAdmin"`
	CreatedAt     time.Time `json:"createdAt"`
	Locked        bool      `json:"locked,omitempty"`
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, auth.PlatformManage, auth.Scope{}) {
		return
	}
	var req UserRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var errs apis.ErrorList
	checkName(&errs, "name", req.Name)
	hash, err := auth.HashPassword(req.Password)
	if err != nil {
		errs.Add("password", "%v", err)
	}
	if invalid(w, r, errs) {
		return
	}
	now := time.Now().UTC()
	if err := a.opts.Store.CreateUser(r.Context(), store.User{Name: req.Name, PasswordHash: hash, PlatformAdmin: req.PlatformAdmin, CreatedAt: now}); err != nil {
		a.conflictOr(w, r, err, "name", "user "+req.Name+" already exists")
		return
	}
	writeJSON(w, http.StatusCreated, User{Name: req.Name, PlatformAdmin: req.PlatformAdmin, CreatedAt: now})
}

func (a *API) conflictOr(w http.ResponseWriter, r *http.Request, err error, field, msg string) {
	if errors.Is(err, store.ErrAlreadyExists) {
		writeProblem(w, r, Problem{Type: ProblemExists, Status: http.StatusConflict, Detail: msg, Errors: []apis.FieldError{{Field: field, Detail: "is already taken"}}})
		return
	}
	a.storeError(w, r, err)
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, auth.PlatformManage, auth.Scope{}) {
		return
	}
	us, err := a.opts.Store.ListUsers(r.Context())
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	out := []User{}
	for _, u := range us {
		out = append(out, User{Name: u.Name, PlatformAdmin: u.PlatformAdmin, CreatedAt: u.CreatedAt, Locked: time.Now().Before(u.LockedUntil)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// --- organizations ---

// OrgRequest creates an organization with its first administrator.
type OrgRequest struct {
	Name  string `json:"name"`
	Admin string `json:"admin"`
}

// Organization is an organization as the API shows it.
type Organization struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// Member is a user's role in an organization.
type Member struct {
	User string `json:"user"`
	Role string `json:"role"`
}

func (a *API) createOrg(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, auth.PlatformManage, auth.Scope{}) {
		return
	}
	var req OrgRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var errs apis.ErrorList
	checkName(&errs, "name", req.Name)
	if req.Name == apis.BuiltinOwner {
		errs.Add("name", "%q is reserved for the contract templates that ship with ChainDock", req.Name)
	}
	if req.Admin != "" {
		if _, err := a.opts.Store.GetUser(r.Context(), req.Admin); err != nil {
			errs.Add("admin", "no user %q", req.Admin)
		}
	}
	if invalid(w, r, errs) {
		return
	}
	setAuditOrg(r, req.Name)
	now := time.Now().UTC()
	if err := a.opts.Store.CreateOrganization(r.Context(), store.Organization{Name: req.Name, CreatedAt: now, CreatedBy: principalFrom(r.Context()).Actor()}); err != nil {
		a.conflictOr(w, r, err, "name", "organization "+req.Name+" already exists")
		return
	}
	if req.Admin != "" {
		if err := a.opts.Store.PutMembership(r.Context(), store.Membership{Org: req.Name, User: req.Admin, Role: auth.RoleAdmin}); err != nil {
			a.storeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusCreated, Organization{Name: req.Name, CreatedAt: now})
}

func (a *API) listOrgs(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	orgs, err := a.opts.Store.ListOrganizations(r.Context())
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	out := []Organization{}
	for _, o := range orgs {
		if auth.Sees(p, auth.OrgRead, auth.Scope{Org: o.Name}) {
			out = append(out, Organization{Name: o.Name, CreatedAt: o.CreatedAt})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// orgFromPath checks the organization in the path exists and that the
// caller may act on it; what the caller may not even read answers 404.
func (a *API) orgFromPath(w http.ResponseWriter, r *http.Request, action auth.Action) (string, bool) {
	org := chi.URLParam(r, "org")
	setAuditOrg(r, org)
	p := principalFrom(r.Context())
	_, err := a.opts.Store.GetOrganization(r.Context(), org)
	if err != nil || !auth.Sees(p, auth.OrgRead, auth.Scope{Org: org}) {
		if p.Key == nil || p.Key.Org != org {
			if err == nil {
				auditHidden(r, org, "organization "+org)
			}
			notFoundProblem(w, r, "organization "+org)
			return "", false
		}
	}
	return org, a.allow(w, r, action, auth.Scope{Org: org})
}

func (a *API) listMembers(w http.ResponseWriter, r *http.Request) {
	org, ok := a.orgFromPath(w, r, auth.OrgRead)
	if !ok {
		return
	}
	ms, err := a.opts.Store.OrgMembers(r.Context(), org)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	out := []Member{}
	for _, m := range ms {
		out = append(out, Member{User: m.User, Role: m.Role})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (a *API) putMember(w http.ResponseWriter, r *http.Request) {
	org, ok := a.orgFromPath(w, r, auth.OrgManage)
	if !ok {
		return
	}
	var req struct {
		Role string `json:"role"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	user := chi.URLParam(r, "user")
	var errs apis.ErrorList
	if !slices.Contains(auth.Roles, req.Role) {
		errs.Add("role", "must be one of %v, not %q", auth.Roles, req.Role)
	}
	if _, err := a.opts.Store.GetUser(r.Context(), user); err != nil {
		errs.Add("user", "no user %q", user)
	}
	if invalid(w, r, errs) {
		return
	}
	if err := a.opts.Store.PutMembership(r.Context(), store.Membership{Org: org, User: user, Role: req.Role}); err != nil {
		a.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Member{User: user, Role: req.Role})
}

func (a *API) deleteMember(w http.ResponseWriter, r *http.Request) {
	org, ok := a.orgFromPath(w, r, auth.OrgManage)
	if !ok {
		return
	}
	if err := a.opts.Store.DeleteMembership(r.Context(), org, chi.URLParam(r, "user")); err != nil {
		a.storeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- API keys ---

// APIKeyRequest creates an API key.
type APIKeyRequest struct {
	Description string   `json:"description,omitempty"`
	Networks    []string `json:"networks,omitempty"`
	Actions     []string `json:"actions"`
	// ExpiresIn is a Go duration ("720h"); empty means the key never expires.
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// APIKey is a key as the API shows it; Secret is set only in the answer
// that creates it.
type APIKey struct {
	ID          string     `json:"id"`
	Org         string     `json:"org"`
	Secret      string     `json:"secret,omitempty"`
	Description string     `json:"description,omitempty"`
	Networks    []string   `json:"networks"`
	Actions     []string   `json:"actions"`
	CreatedBy   string     `json:"createdBy"`
	CreatedAt   time.Time  `json:"createdAt"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	RevokedAt   *time.Time `json:"revokedAt,omitempty"`
}

func toAPIKey(k store.APIKey) APIKey {
	out := APIKey{ID: k.ID, Org: k.Org, Description: k.Description, Networks: k.Networks, Actions: k.Actions, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt}
	if !k.ExpiresAt.IsZero() {
		out.ExpiresAt = &k.ExpiresAt
	}
	if !k.RevokedAt.IsZero() {
		out.RevokedAt = &k.RevokedAt
	}
	return out
}

func (a *API) createAPIKey(w http.ResponseWriter, r *http.Request) {
	org, ok := a.orgFromPath(w, r, auth.APIKeyManage)
	if !ok {
		return
	}
	var req APIKeyRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var errs apis.ErrorList
	if len(req.Actions) == 0 {
		errs.Add("actions", "is required: name what the key may do, from %v", auth.KeyActions)
	}
	for i, act := range req.Actions {
		if !slices.Contains(auth.KeyActions, auth.Action(act)) {
			errs.Add(apis.Index("actions", i), "%q is not an action a key may have (one of %v)", act, auth.KeyActions)
		}
	}
	for i, n := range req.Networks {
		checkName(&errs, apis.Index("networks", i), n)
	}
	now := time.Now().UTC()
	k := store.APIKey{Org: org, Description: req.Description, Networks: req.Networks, Actions: req.Actions, CreatedBy: principalFrom(r.Context()).Actor(), CreatedAt: now}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			errs.Add("expiresIn", "must be a positive Go duration such as \"720h\", not %q", req.ExpiresIn)
		}
		k.ExpiresAt = now.Add(d)
	}
	if invalid(w, r, errs) {
		return
	}
	id, secret, err := auth.NewAPIKey()
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	k.ID = id
	// The sealed secret first: a crash in between leaves an unused blob,
	// never a key without its secret.
	if err := a.opts.Store.PutBlob(r.Context(), store.APIKeyBlobOwner(id), "secret", []byte(secret)); err != nil {
		a.storeError(w, r, err)
		return
	}
	if err := a.opts.Store.CreateAPIKey(r.Context(), k); err != nil {
		a.storeError(w, r, err)
		return
	}
	out := toAPIKey(k)
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
}

func (a *API) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	org, ok := a.orgFromPath(w, r, auth.APIKeyManage)
	if !ok {
		return
	}
	keys, err := a.opts.Store.ListAPIKeys(r.Context(), org)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	out := []APIKey{}
	for _, k := range keys {
		out = append(out, toAPIKey(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (a *API) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	org, ok := a.orgFromPath(w, r, auth.APIKeyManage)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	k, err := a.opts.Store.GetAPIKey(r.Context(), id)
	if err != nil || k.Org != org {
		notFoundProblem(w, r, "API key "+id)
		return
	}
	if err := a.opts.Store.RevokeAPIKey(r.Context(), id, time.Now().UTC()); err != nil {
		a.storeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- consortia ---

// ConsortiumRequest creates a consortium owned by an organization.
type ConsortiumRequest struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
}

// Consortium is a consortium as the API shows it.
type Consortium struct {
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	Members   []string  `json:"members"`
	CreatedAt time.Time `json:"createdAt"`
}

func toConsortium(c store.Consortium) Consortium {
	return Consortium{Name: c.Name, Owner: c.OwnerOrg, Members: c.Members, CreatedAt: c.CreatedAt}
}

func (a *API) createConsortium(w http.ResponseWriter, r *http.Request) {
	var req ConsortiumRequest
	if !decodeBody(w, r, &req) {
		return
	}
	setAuditOrg(r, req.Owner)
	var errs apis.ErrorList
	checkName(&errs, "name", req.Name)
	checkName(&errs, "owner", req.Owner)
	if invalid(w, r, errs) {
		return
	}
	if !a.allow(w, r, auth.ConsortiumOwn, auth.Scope{Org: req.Owner}) {
		return
	}
	c := store.Consortium{Name: req.Name, OwnerOrg: req.Owner, CreatedAt: time.Now().UTC()}
	if err := a.opts.Store.CreateConsortium(r.Context(), c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			invalid(w, r, apis.ErrorList{{Field: "owner", Detail: fmt.Sprintf("no organization %q", req.Owner)}})
			return
		}
		a.conflictOr(w, r, err, "name", "consortium "+req.Name+" already exists")
		return
	}
	c.Members = []string{req.Owner}
	writeJSON(w, http.StatusCreated, toConsortium(c))
}

// consortiumFromPath loads the consortium in the path; one the caller is not
// a member of answers 404.
func (a *API) consortiumFromPath(w http.ResponseWriter, r *http.Request) (store.Consortium, bool) {
	name := chi.URLParam(r, "consortium")
	c, err := a.opts.Store.GetConsortium(r.Context(), name)
	if err != nil || !auth.Sees(principalFrom(r.Context()), auth.ConsortiumRead, auth.Scope{Org: c.OwnerOrg, Members: c.Members}) {
		if err == nil {
			auditHidden(r, c.OwnerOrg, "consortium "+name)
		}
		notFoundProblem(w, r, "consortium "+name)
		return c, false
	}
	setAuditOrg(r, c.OwnerOrg)
	return c, true
}

func (a *API) listConsortia(w http.ResponseWriter, r *http.Request) {
	cs, err := a.opts.Store.ListConsortia(r.Context())
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	p := principalFrom(r.Context())
	out := []Consortium{}
	for _, c := range cs {
		if auth.Sees(p, auth.ConsortiumRead, auth.Scope{Org: c.OwnerOrg, Members: c.Members}) {
			out = append(out, toConsortium(c))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (a *API) getConsortium(w http.ResponseWriter, r *http.Request) {
	if c, ok := a.consortiumFromPath(w, r); ok {
		writeJSON(w, http.StatusOK, toConsortium(c))
	}
}

// InvitationRequest invites an organization into a consortium.
type InvitationRequest struct {
	Org string `json:"org"`
	// ExpiresIn is a Go duration; the default is a week.
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// Invitation is an invitation as the API shows it.
type Invitation struct {
	ID         string     `json:"id"`
	Consortium string     `json:"consortium"`
	Org        string     `json:"org"`
	InvitedBy  string     `json:"invitedBy"`
	State      string     `json:"state"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	DecidedAt  *time.Time `json:"decidedAt,omitempty"`
	DecidedBy  string     `json:"decidedBy,omitempty"`
}

func toInvitation(i store.Invitation) Invitation {
	out := Invitation{ID: i.ID, Consortium: i.Consortium, Org: i.Org, InvitedBy: i.InvitedBy, State: i.State, CreatedAt: i.CreatedAt, ExpiresAt: i.ExpiresAt, DecidedBy: i.DecidedBy}
	if out.State == store.InvitationPending && time.Now().After(i.ExpiresAt) {
		out.State = store.InvitationExpired
	}
	if !i.DecidedAt.IsZero() {
		out.DecidedAt = &i.DecidedAt
	}
	return out
}

func (a *API) invite(w http.ResponseWriter, r *http.Request) {
	c, ok := a.consortiumFromPath(w, r)
	if !ok || !a.allow(w, r, auth.ConsortiumOwn, auth.Scope{Org: c.OwnerOrg}) {
		return
	}
	var req InvitationRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var errs apis.ErrorList
	ttl := InvitationTTL
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			errs.Add("expiresIn", "must be a positive Go duration such as \"48h\", not %q", req.ExpiresIn)
		}
		ttl = d
	}
	if _, err := a.opts.Store.GetOrganization(r.Context(), req.Org); err != nil {
		errs.Add("org", "no organization %q", req.Org)
	} else if slices.Contains(c.Members, req.Org) {
		errs.Add("org", "%s is already a member of %s", req.Org, c.Name)
	}
	if invalid(w, r, errs) {
		return
	}
	now := time.Now().UTC()
	inv := store.Invitation{ID: uuid.NewString(), Consortium: c.Name, Org: req.Org, InvitedBy: principalFrom(r.Context()).Actor(),
		State: store.InvitationPending, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := a.opts.Store.CreateInvitation(r.Context(), inv); err != nil {
		a.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toInvitation(inv))
}

func (a *API) listInvitations(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	all, err := a.opts.Store.ListInvitations(r.Context(), "", "")
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	owners := map[string]string{}
	out := []Invitation{}
	for _, i := range all {
		if _, ok := owners[i.Consortium]; !ok {
			c, _ := a.opts.Store.GetConsortium(r.Context(), i.Consortium)
			owners[i.Consortium] = c.OwnerOrg
		}
		// The invited organization sees its invitations, the owner those
		// it sent.
		if auth.Sees(p, auth.OrgRead, auth.Scope{Org: i.Org}) || auth.Sees(p, auth.ConsortiumOwn, auth.Scope{Org: owners[i.Consortium]}) {
			out = append(out, toInvitation(i))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (a *API) decideInvitation(state string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		ctx := r.Context()
		inv, err := a.opts.Store.GetInvitation(ctx, id)
		p := principalFrom(ctx)
		if err != nil || !auth.Sees(p, auth.OrgRead, auth.Scope{Org: inv.Org}) {
			if err == nil {
				auditHidden(r, inv.Org, "invitation "+id)
			}
			notFoundProblem(w, r, "invitation "+id)
			return
		}
		setAuditOrg(r, inv.Org)
		if !a.allow(w, r, auth.InvitationReply, auth.Scope{Org: inv.Org}) {
			return
		}
		if inv.State == store.InvitationPending && time.Now().After(inv.ExpiresAt) {
			_, _ = a.opts.Store.DecideInvitation(ctx, id, store.InvitationExpired, "system", time.Now().UTC())
			writeProblem(w, r, Problem{Type: ProblemGone, Status: http.StatusGone, Detail: fmt.Sprintf("invitation %s expired at %s", id, inv.ExpiresAt.Format(time.RFC3339))})
			return
		}
		got, err := a.opts.Store.DecideInvitation(ctx, id, state, p.Actor(), time.Now().UTC())
		if errors.Is(err, store.ErrConflict) {
			writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: err.Error()})
			return
		}
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, toInvitation(got))
	}
}

// removeMember lets the owner remove a member, or a member leave.
func (a *API) removeConsortiumMember(w http.ResponseWriter, r *http.Request) {
	c, ok := a.consortiumFromPath(w, r)
	if !ok {
		return
	}
	org := chi.URLParam(r, "org")
	if org == c.OwnerOrg {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: "the owner cannot leave its consortium"})
		return
	}
	p := principalFrom(r.Context())
	if auth.Allow(p, auth.ConsortiumOwn, auth.Scope{Org: c.OwnerOrg}) != nil && !a.allow(w, r, auth.ConsortiumLeave, auth.Scope{Org: org}) {
		return
	}
	if err := a.opts.Store.RemoveConsortiumMember(r.Context(), c.Name, org); err != nil {
		a.storeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- audit ---

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	after, limit, ok := pageParams(w, r, 10000)
	if !ok {
		return
	}
	f := store.AuditFilter{Actor: r.URL.Query().Get("actor"), AfterID: after, Limit: limit}
	if org := r.URL.Query().Get("org"); org != "" {
		if !a.allow(w, r, auth.AuditRead, auth.Scope{Org: org}) {
			return
		}
		f.Orgs = []string{org}
	} else if !p.PlatformAdmin {
		f.Orgs = []string{}
		for _, o := range p.Orgs() {
			if auth.Sees(p, auth.AuditRead, auth.Scope{Org: o}) {
				f.Orgs = append(f.Orgs, o)
			}
		}
		if len(f.Orgs) == 0 && !a.allow(w, r, auth.AuditRead, auth.Scope{}) {
			return
		}
	}
	entries, err := a.opts.Store.ListAudit(r.Context(), f)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	if entries == nil {
		entries = []store.AuditEntry{}
	}
	if r.URL.Query().Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="chaindock-audit.csv"`)
		writeAuditCSV(w, entries)
		return
	}
	next := after
	if len(entries) > 0 {
		next = entries[len(entries)-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": entries, "next": next})
}

func writeAuditCSV(w io.Writer, entries []store.AuditEntry) {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "time", "actor", "org", "action", "resource", "result", "status", "source", "detail"})
	for _, e := range entries {
		_ = cw.Write([]string{strconv.FormatInt(e.ID, 10), e.Time.Format(time.RFC3339Nano), e.Actor, e.Org, e.Action, e.Resource, e.Result, strconv.Itoa(e.Status), e.Source, e.Detail})
	}
	cw.Flush()
}

// clientIP is the address a request came from, without its port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
