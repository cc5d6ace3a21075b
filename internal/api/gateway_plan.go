package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/store"
)

// storedPlan is the network's stored plan, unsealed by the store: the
// gateway signs a Fabric network's transactions with the keys it holds.
func (a *API) storedPlan(ctx context.Context, n *apis.Network) (*chain.Plan, error) {
	b, err := a.opts.Store.GetBlob(ctx, n.Metadata.UID, store.PlanBlob)
	if err != nil {
		return nil, fmt.Errorf("plan of %s: %w", n.Metadata.Name, err)
	}
	var plan chain.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		return nil, fmt.Errorf("decode plan of %s: %w", n.Metadata.Name, err)
	}
	return &plan, nil
}

// planCacheSize bounds the decoded plans the gateway keeps.
const planCacheSize = 64

// planCache keeps the gateway's decoded plans: a Fabric plan is a few
// hundred kilobytes of JSON, whose decoding cost more than the rest of a
// query. An entry is used only while the stored plan is byte for byte
// the one it was decoded from, so a plan the controller changes (a
// network scaled) is never served stale; reading the blob is cheap next
// to decoding it.
type planCache struct {
	mu sync.Mutex
	m  map[string]*cachedPlan
}

type cachedPlan struct {
	raw  []byte
	plan *chain.Plan
	used time.Time
}

// gatewayPlan is storedPlan for the gateway, from the cache when the
// stored plan has not changed. The plan is shared: ledgers only read it.
func (a *API) gatewayPlan(ctx context.Context, n *apis.Network) (*chain.Plan, error) {
	b, err := a.opts.Store.GetBlob(ctx, n.Metadata.UID, store.PlanBlob)
	if err != nil {
		return nil, fmt.Errorf("plan of %s: %w", n.Metadata.Name, err)
	}
	c := &a.plans
	c.mu.Lock()
	if e := c.m[n.Metadata.UID]; e != nil && bytes.Equal(e.raw, b) {
		e.used = time.Now()
		c.mu.Unlock()
		return e.plan, nil
	}
	c.mu.Unlock()
	var plan chain.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		return nil, fmt.Errorf("decode plan of %s: %w", n.Metadata.Name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*cachedPlan{}
	}
	if _, ok := c.m[n.Metadata.UID]; !ok && len(c.m) >= planCacheSize {
		var oldest string
		for uid, e := range c.m {
			if oldest == "" || e.used.Before(c.m[oldest].used) {
				oldest = uid
			}
		}
		delete(c.m, oldest)
	}
	c.m[n.Metadata.UID] = &cachedPlan{raw: b, plan: &plan, used: time.Now()}
	return &plan, nil
}
