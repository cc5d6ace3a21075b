package sqlite

import "context"

// t0 is the context of the writer subprocess, which has no testing.T.
func t0() context.Context { return context.Background() }
