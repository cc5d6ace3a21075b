package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
)

const pollInterval = 300 * time.Millisecond

// waitRunning prints the network's events as they happen until it is
// Running or Failed.
func waitRunning(ctx context.Context, c *client.Client, name string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var after int64
	for {
		var err error
		after, err = printEvents(ctx, c, name, after, out)
		if err != nil {
			return err
		}
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			return err
		}
		switch n.Status.Phase {
		case apis.PhaseRunning:
			fmt.Fprintf(out, "network/%s is Running: %d nodes at height %d\n", name, len(n.Status.Nodes), n.Status.Height)
			return nil
		case apis.PhaseFailed:
			return fmt.Errorf("network %s failed: %s", name, n.Status.Message)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("network %s is still %s after %s: %s", name, n.Status.Phase, timeout, n.Status.Message)
		case <-time.After(pollInterval):
		}
	}
}

// waitDeleted prints events until the network is gone.
func waitDeleted(ctx context.Context, c *client.Client, name string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var after int64
	for {
		next, err := printEvents(ctx, c, name, after, out)
		if client.IsNotFound(err) {
			fmt.Fprintf(out, "network/%s deleted\n", name)
			return nil
		}
		if err != nil {
			return err
		}
		after = next
		if _, err := c.GetNetwork(ctx, name); client.IsNotFound(err) {
			fmt.Fprintf(out, "network/%s deleted\n", name)
			return nil
		} else if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("network %s is still being deleted after %s", name, timeout)
		case <-time.After(pollInterval):
		}
	}
}

func printEvents(ctx context.Context, c *client.Client, name string, after int64, out io.Writer) (int64, error) {
	list, err := c.NetworkEvents(ctx, name, after)
	if err != nil {
		return after, err
	}
	for _, e := range list.Items {
		node := ""
		if e.Node != "" {
			node = " [" + e.Node + "]"
		}
		fmt.Fprintf(out, "%s  %-8s %-15s%s %s\n", e.Time.Local().Format("15:04:05.000"), e.Type, e.Reason, node, e.Message)
	}
	return list.Next, nil
}
