package framework

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
)

// CometBFTSpec is a spec for a CometBFT network of n validators.
func CometBFTSpec(name string, validators int, timeoutCommit string) []byte {
	return fmt.Appendf(nil, `apiVersion: chaindock/v1
kind: Network
metadata: {name: %s}
spec:
  chain: cometbft
  runtime: process
  validators: %d
  consensus: {timeoutCommit: %s}
`, name, validators, timeoutCommit)
}

// MinHeight is the lowest height any node reported.
func MinHeight(n *apis.Network) int64 {
	if len(n.Status.Nodes) == 0 {
		return 0
	}
	h := n.Status.Nodes[0].Height
	for _, s := range n.Status.Nodes[1:] {
		h = min(h, s.Height)
	}
	return h
}

// AllAtLeast waits until every node of the network reports at least height,
// with the network Running.
func AllAtLeast(ctx context.Context, c *client.Client, name string, height int64, timeout time.Duration) (*apis.Network, error) {
	var last *apis.Network
	err := Poll(ctx, timeout, 100*time.Millisecond, func() (bool, string) {
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		last = n
		if n.Status.Phase == apis.PhaseFailed {
			return false, "failed: " + n.Status.Message
		}
		ok := n.Status.Phase == apis.PhaseRunning && len(n.Status.Nodes) == len(n.Spec.Nodes()) && MinHeight(n) >= height
		return ok, fmt.Sprintf("phase %s, min height %d, message %q", n.Status.Phase, MinHeight(n), n.Status.Message)
	})
	return last, err
}

// NodePorts returns the ports of every node's endpoints.
func NodePorts(n *apis.Network) []int {
	var out []int
	for _, s := range n.Status.Nodes {
		for _, ep := range s.Endpoints {
			u, err := url.Parse(ep)
			if err != nil {
				continue
			}
			if p, err := strconv.Atoi(u.Port()); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// NodeByName finds a node's status.
func NodeByName(n *apis.Network, name string) (apis.NodeStatus, bool) {
	for _, s := range n.Status.Nodes {
		if s.Name == name {
			return s, true
		}
	}
	return apis.NodeStatus{}, false
}

// WaitGone waits until GET of the network answers 404.
func WaitGone(ctx context.Context, c *client.Client, name string, timeout time.Duration) error {
	return Poll(ctx, timeout, 100*time.Millisecond, func() (bool, string) {
		n, err := c.GetNetwork(ctx, name)
		if client.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, "phase " + n.Status.Phase + ": " + n.Status.Message
	})
}

// Describe renders node statuses for failure messages.
func Describe(n *apis.Network) string {
	if n == nil {
		return "<no network>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s (%s)", n.Status.Phase, n.Status.Message)
	for _, s := range n.Status.Nodes {
		fmt.Fprintf(&b, "; %s %s h=%d peers=%d restarts=%d pid=%d", s.Name, s.Phase, s.Height, s.Peers, s.Restarts, s.PID)
	}
	return b.String()
}
