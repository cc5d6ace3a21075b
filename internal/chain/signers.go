package chain

import (
	"context"
	"errors"
)

// ErrNotPermitted wraps a ledger's refusal to act for a caller as it
// asked: to sign as an organisation the caller does not belong to.
var ErrNotPermitted = errors.New("not permitted")

type signsForKey struct{}

// WithSignsFor tells ledgers that sign for their callers (a Fabric
// organisation's identity, held by the platform) which of a network's
// organisations the caller of ctx may sign as.
func WithSignsFor(ctx context.Context, may func(org string) bool) context.Context {
	return context.WithValue(ctx, signsForKey{}, may)
}

// MaySignFor reports whether the caller of ctx may sign as org: yes when
// nothing was said (the platform's own calls).
func MaySignFor(ctx context.Context, org string) bool {
	may, ok := ctx.Value(signsForKey{}).(func(string) bool)
	return !ok || may(org)
}
