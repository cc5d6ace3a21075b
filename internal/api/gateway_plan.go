package api

import (
	"context"
	"encoding/json"
	"fmt"

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
