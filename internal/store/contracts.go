package store

import (
	"context"

	"github.com/chaindock/chaindock/internal/apis"
)

// Contracts keeps the contract store (uploaded packages) and the life of
// each contract deployed on a network.
type Contracts interface {
	// CreatePackage stores a package; ErrAlreadyExists when its owner,
	// name and version are taken.
	CreatePackage(ctx context.Context, p *apis.Package) error
	// GetPackage returns a package with its files, or ErrNotFound.
	GetPackage(ctx context.Context, owner, name, version string) (*apis.Package, error)
	// ListPackages returns the packages of the given owners (all when
	// owners is nil), without their files, by owner, name and version.
	ListPackages(ctx context.Context, owners []string) ([]*apis.Package, error)
	// DeletePackage removes a package version; a missing one is
	// ErrNotFound.
	DeletePackage(ctx context.Context, owner, name, version string) error

	// AddContractRevision appends r to the history of contract r.Name on
	// the network with uid; r.Revision must be one more than the newest
	// (1 for a new contract), else ErrConflict.
	AddContractRevision(ctx context.Context, networkUID string, r apis.ContractRevision) error
	// ContractRevisions returns a contract's history, oldest first.
	ContractRevisions(ctx context.Context, networkUID, name string) ([]apis.ContractRevision, error)
	// Contracts returns the newest revision of every contract of the
	// network, by name.
	Contracts(ctx context.Context, networkUID string) ([]apis.ContractRevision, error)
	// PackageInUse lists the networks (by UID) where a version of the
	// package is deployed now.
	PackageInUse(ctx context.Context, ref apis.PackageRef) ([]string, error)
}
