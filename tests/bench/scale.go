package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/tests/framework"
)

// scalePortRange holds the scaled network's ports.
const scalePortRange = "34400-34499"

// benchScale measures scaling a running 4-validator CometBFT network
// (kvstore, 1 s blocks) on the process runtime: a full node added until it
// runs and follows the chain; a fifth validator until it has voting
// power; the fifth taken away until it is gone; each through PUT
// .../scale, as the API reports it.
func benchScale(ctx context.Context, binDir string) error {
	srv, _, stop, err := benchServer(ctx, binDir, "scale", "--port-range", scalePortRange, "--rate-limit", "0", "--log-level", "warn", "--probe-interval", "200ms")
	if err != nil {
		return err
	}
	defer stop()
	c := srv.Client
	const name = "bench-scale"
	if _, err := c.CreateNetwork(ctx, framework.CometBFTSpec(name, 4, "1s")); err != nil {
		return err
	}
	defer func() {
		_, _ = c.DeleteNetwork(context.WithoutCancel(ctx), name)
		_ = framework.WaitGone(context.WithoutCancel(ctx), c, name, time.Minute)
	}()
	if err := waitHeights(ctx, c, name, 2, time.Minute, 50*time.Millisecond); err != nil {
		return err
	}
	scale := func(req api.ScaleRequest, done func(*apis.Network) bool) (float64, error) {
		body, _ := json.Marshal(req)
		start := time.Now()
		if err := c.Do(ctx, http.MethodPut, "/api/v1/networks/"+name+"/scale", body, "application/json", nil); err != nil {
			return 0, err
		}
		err := framework.Poll(ctx, 3*time.Minute, 20*time.Millisecond, func() (bool, string) {
			n, err := c.GetNetwork(ctx, name)
			if err != nil {
				return false, err.Error()
			}
			return done(n), framework.Describe(n)
		})
		return round(time.Since(start).Seconds()), err
	}
	one := func(v int) *int { return &v }
	full, err := scale(api.ScaleRequest{FullNodes: one(1)}, func(n *apis.Network) bool {
		s, ok := framework.NodeByName(n, "full-0")
		return ok && s.Phase == apis.NodeRunning && s.Height >= n.Status.Height-1 && n.Status.Phase == apis.PhaseRunning
	})
	if err != nil {
		return fmt.Errorf("add a full node: %w", err)
	}
	join, err := scale(api.ScaleRequest{Validators: one(5)}, func(n *apis.Network) bool {
		s, ok := framework.NodeByName(n, "validator-4")
		return ok && !s.Joining && s.Phase == apis.NodeRunning && n.Status.Phase == apis.PhaseRunning
	})
	if err != nil {
		return fmt.Errorf("add a validator: %w", err)
	}
	leave, err := scale(api.ScaleRequest{Validators: one(4)}, func(n *apis.Network) bool {
		_, still := framework.NodeByName(n, "validator-4")
		return !still && n.Status.Phase == apis.PhaseRunning
	})
	if err != nil {
		return fmt.Errorf("remove a validator: %w", err)
	}
	emit(figure{Metric: "cometbft_add_full_node_s", Value: full, Unit: "s", Samples: []float64{full},
		Note: "PUT .../scale fullNodes 1 on a running 4-validator network (kvstore, 1s blocks) until the new node runs within a block of the chain"})
	emit(figure{Metric: "cometbft_add_validator_s", Value: join, Unit: "s", Samples: []float64{join},
		Note: "validators 4 to 5: planned, started, block-synced as a full node, then given power by a validator-set update, until the API shows it joined"})
	emit(figure{Metric: "cometbft_remove_validator_s", Value: leave, Unit: "s", Samples: []float64{leave},
		Note: "validators 5 to 4: power 0 by a validator-set update, then the node stopped and its ports released, until it is gone from the status"})
	return nil
}
