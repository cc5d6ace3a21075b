// Package store defines where ChainDock keeps everything it knows: resources
// (metadata, desired spec, observed status), their events, the artifacts the
// controller generated for them, and the host ports it handed out. The store
// knows no HTTP and runs no loop; implementations live in subpackages and
// pass the suite in storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
)

// Errors every implementation returns, to be tested with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict means the object changed since it was read: read it again.
	ErrConflict = errors.New("conflict: the object was changed by someone else; read it again")
	// ErrNoPorts means the port range is used up.
	ErrNoPorts = errors.New("no free port left in the range")
)

// Object is a stored resource. Spec and Status are JSON documents.
type Object struct {
	Kind            string
	Name            string
	UID             string
	Owner           string
	Labels          map[string]string
	ResourceVersion int64
	Generation      int64
	Spec            []byte
	Status          []byte
	CreatedAt       time.Time
	DeletedAt       *time.Time
}

// PortRange is the inclusive range ports are allocated from.
type PortRange struct {
	Low, High int
}

// PlanBlob is the key of a network's plan among its blobs: its node
// specs and the artifacts (keys, genesis) its chain driver planned.
const PlanBlob = "plan"

// BlobRef names one artifact.
type BlobRef struct {
	OwnerUID, Key string
}

// EventFilter selects events; zero fields match everything.
type EventFilter struct {
	Kind    string
	Name    string
	UID     string
	AfterID int64
	Limit   int
}

// Store is the persistent state of a ChainDock installation.
type Store interface {
	// Create stores a new object with ResourceVersion and Generation 1. It
	// fails with ErrAlreadyExists when kind/name is taken.
	Create(ctx context.Context, o *Object) (*Object, error)
	// Get returns kind/name or ErrNotFound.
	Get(ctx context.Context, kind, name string) (*Object, error)
	// List returns every object of kind, ordered by name.
	List(ctx context.Context, kind string) ([]*Object, error)
	// Update replaces labels, spec and deletion time when o.ResourceVersion
	// is current (else ErrConflict); a changed spec bumps Generation.
	Update(ctx context.Context, o *Object) (*Object, error)
	// UpdateStatus replaces the status when o.ResourceVersion is current.
	UpdateStatus(ctx context.Context, o *Object) (*Object, error)
	// Delete removes the object with uid together with everything it owns:
	// events, blobs, ports and, for a network, its indexed chain and its
	// contracts' history. Deleting a missing object is not an error.
	Delete(ctx context.Context, kind, name, uid string) error

	// AddEvent records an event.
	AddEvent(ctx context.Context, e apis.Event) error
	// Events returns events in the order they happened.
	Events(ctx context.Context, f EventFilter) ([]apis.Event, error)

	// PutBlob stores an artifact owned by the object with uid.
	PutBlob(ctx context.Context, ownerUID, key string, data []byte) error
	// GetBlob returns an artifact or ErrNotFound.
	GetBlob(ctx context.Context, ownerUID, key string) ([]byte, error)

	// ListBlobs names every stored artifact.
	ListBlobs(ctx context.Context) ([]BlobRef, error)
	// ReplaceBlob swaps an artifact's content only if it still is old; it
	// reports whether it did. For re-encryption beside concurrent writers.
	ReplaceBlob(ctx context.Context, ownerUID, key string, old, new []byte) (bool, error)

	// AllocatePorts returns n ports for ownerUID/key from r. It is
	// idempotent: asked again for the same owner and key it returns the
	// ports it gave before. usable is asked about each candidate port (for
	// example whether it can be bound) and may be nil.
	AllocatePorts(ctx context.Context, ownerUID, key string, n int, r PortRange, usable func(port int) bool) ([]int, error)
	// ReleasePorts gives back the ports of ownerUID/key (a node removed
	// from its network). Releasing none is not an error.
	ReleasePorts(ctx context.Context, ownerUID, key string) error
	// Ports returns every port held by ownerUID, by key.
	Ports(ctx context.Context, ownerUID string) (map[string][]int, error)

	Tenancy
	Explorer
	Contracts

	// AcquireLease takes or renews the lease name for holder until now+ttl,
	// if it is free, expired, or already holder's. It returns whether
	// holder has it and the lease's term, which grows with every new holder.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (held bool, term int64, err error)
	// ReleaseLease gives the lease up, if holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error

	Close() error
}
