package store

import (
	"context"
	"time"
)

// User is a local account.
type User struct {
	Name          string
	PasswordHash  string
	PlatformAdmin bool
	CreatedAt     time.Time
	FailedLogins  int
	LockedUntil   time.Time
}

// Organization is a tenant.
type Organization struct {
	Name      string
	CreatedAt time.Time
	CreatedBy string
}

// Membership gives a user a role in an organization.
type Membership struct {
	Org  string
	User string
	Role string
}

// Session is a logged-in user's token, kept only as its hash.
type Session struct {
	TokenHash string
	User      string
	ExpiresAt time.Time
}

// APIKey is an application's access key. Its secret is a sealed blob owned
// by APIKeyBlobOwner(ID), so that key rotation reseals it with the rest.
type APIKey struct {
	ID          string
	Org         string
	Description string
	Networks    []string
	Actions     []string
	CreatedBy   string
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: never
	RevokedAt   time.Time // zero: not revoked
}

// APIKeyBlobOwner is the blob owner under which a key's secret is kept.
func APIKeyBlobOwner(id string) string { return "apikey/" + id }

// AuditEntry is one line of the append-only audit log.
type AuditEntry struct {
	ID       int64     `json:"id"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Org      string    `json:"org,omitempty"`
	Action   string    `json:"action"`
	Resource string    `json:"resource"`
	Result   string    `json:"result"`
	Status   int       `json:"status"`
	Source   string    `json:"source"`
	Detail   string    `json:"detail,omitempty"`
}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Orgs    []string // any of these; nil for all
	Actor   string
	AfterID int64
	Limit   int
}

// Consortium is a group of organizations that run networks together.
type Consortium struct {
	Name      string
	OwnerOrg  string
	CreatedAt time.Time
	Members   []string
}

// Invitation states.
const (
	InvitationPending  = "Pending"
	InvitationAccepted = "Accepted"
	InvitationDeclined = "Declined"
	InvitationExpired  = "Expired"
)

// Invitation asks an organization to join a consortium.
type Invitation struct {
	ID         string
	Consortium string
	Org        string
	InvitedBy  string
	State      string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	DecidedAt  time.Time
	DecidedBy  string
}

// Tenancy is the part of the store that knows who may do what.
type Tenancy interface {
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// RecordLogin stores the outcome of a login attempt.
	RecordLogin(ctx context.Context, name string, failed int, lockedUntil time.Time) error

	CreateOrganization(ctx context.Context, o Organization) error
	GetOrganization(ctx context.Context, name string) (Organization, error)
	ListOrganizations(ctx context.Context) ([]Organization, error)
	// PutMembership adds a member or changes its role.
	PutMembership(ctx context.Context, m Membership) error
	DeleteMembership(ctx context.Context, org, user string) error
	// Memberships lists a user's organizations.
	Memberships(ctx context.Context, user string) ([]Membership, error)
	// OrgMembers lists an organization's users.
	OrgMembers(ctx context.Context, org string) ([]Membership, error)

	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, tokenHash string) (Session, error)
	DeleteSession(ctx context.Context, tokenHash string) error

	CreateAPIKey(ctx context.Context, k APIKey) error
	GetAPIKey(ctx context.Context, id string) (APIKey, error)
	ListAPIKeys(ctx context.Context, org string) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
	// UseNonce records a request nonce until expires; a nonce used before
	// fails with ErrAlreadyExists.
	UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error

	AppendAudit(ctx context.Context, e AuditEntry) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	// CreateConsortium creates a consortium with its owner as first member.
	CreateConsortium(ctx context.Context, c Consortium) error
	GetConsortium(ctx context.Context, name string) (Consortium, error)
	ListConsortia(ctx context.Context) ([]Consortium, error)
	RemoveConsortiumMember(ctx context.Context, consortium, org string) error
	CreateInvitation(ctx context.Context, inv Invitation) error
	GetInvitation(ctx context.Context, id string) (Invitation, error)
	// ListInvitations lists the invitations to org (or all, if empty) of
	// consortium (or all, if empty).
	ListInvitations(ctx context.Context, org, consortium string) ([]Invitation, error)
	// DecideInvitation moves a Pending invitation to state, and on
	// acceptance adds the organization to the consortium, in one
	// transaction. It fails with ErrConflict when the invitation is no
	// longer Pending.
	DecideInvitation(ctx context.Context, id, state, by string, at time.Time) (Invitation, error)
}
