// Package leader runs a function on one server at a time. Servers that
// share a store campaign for a lease row; the holder renews it and runs the
// function, and steps down (cancelling the function and waiting for it)
// when a renewal is refused or none has succeeded within the renew
// deadline, which is shorter than the lease, so a new holder never starts
// while the old one still runs. Like controller-runtime's leader election
// on a Kubernetes Lease.
package leader

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/chaindock/chaindock/internal/store"
)

// Leases is the part of the store an elector needs.
type Leases interface {
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, int64, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

var _ Leases = (store.Store)(nil)

// Elector campaigns for one lease.
type Elector struct {
	Leases Leases
	Name   string
	// Holder identifies this server; New makes one from the host name.
	Holder string
	// TTL is how long a lease lasts unrenewed; RenewDeadline how long the
	// holder goes on without a successful renewal (less than TTL, so it
	// has stopped before anyone else may start); RetryPeriod how often it
	// renews or campaigns.
	TTL, RenewDeadline, RetryPeriod time.Duration
	Log                             *slog.Logger
}

// New returns an elector with the usual timings: a 15 s lease renewed
// every 2 s, given up after 10 s without a renewal.
func New(leases Leases, name string, log *slog.Logger) *Elector {
	host, _ := os.Hostname()
	return &Elector{
		Leases: leases, Name: name, Holder: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8]),
		TTL: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second, Log: log,
	}
}

// Run calls fn whenever this server holds the lease, with a context that
// ends when it loses it, until ctx ends.
func (e *Elector) Run(ctx context.Context, fn func(ctx context.Context) error) error {
	log := e.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("lease", e.Name, "holder", e.Holder)
	for {
		held, term, err := e.Leases.AcquireLease(ctx, e.Name, e.Holder, time.Now(), e.TTL)
		if err != nil && ctx.Err() == nil {
			log.Warn("campaign for the lease", "err", err)
		}
		if !held {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(e.RetryPeriod):
				continue
			}
		}
		log.Info("holding the lease", "term", term)
		if err := e.lead(ctx, fn, log); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// lead runs fn until ctx ends, fn returns or the lease is lost.
func (e *Elector) lead(ctx context.Context, fn func(ctx context.Context) error, log *slog.Logger) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(lctx) }()
	lastRenew := time.Now()
	tick := time.NewTicker(e.RetryPeriod)
	defer tick.Stop()
	release := func() {
		rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		if err := e.Leases.ReleaseLease(rctx, e.Name, e.Holder); err != nil {
			log.Warn("release the lease", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			cancel()
			<-done
			release()
			return nil
		case err := <-done:
			release()
			return err
		case <-tick.C:
			held, _, err := e.Leases.AcquireLease(ctx, e.Name, e.Holder, time.Now(), e.TTL)
			switch {
			case err == nil && held:
				lastRenew = time.Now()
				continue
			case err == nil:
				log.Warn("lost the lease to another server; stepping down")
			case time.Since(lastRenew) < e.RenewDeadline:
				log.Warn("renew the lease", "err", err)
				continue
			default:
				log.Warn("could not renew the lease within the deadline; stepping down", "err", err, "deadline", e.RenewDeadline)
			}
			cancel()
			<-done
			return nil
		}
	}
}
