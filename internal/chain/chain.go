// Package chain defines what a chain driver does: it turns a network spec
// into artifacts (keys, genesis, configs) and node specs, and probes a
// running node. A driver never starts a process or a pod and never touches
// the store: the controller persists what it returns and a runtime runs it.
package chain

import (
	"context"
	"io"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/registry"
	"github.com/chaindock/chaindock/internal/runtime"
)

// PlanRequest is everything a driver needs to plan a network.
type PlanRequest struct {
	Network *apis.Network
	// Ports are the host ports allocated to each node, by node name and
	// port name (the names the driver asked for in PortNames).
	Ports map[string]map[string]int
	// Host is the address nodes listen on and reach each other at.
	Host string
	// Rand is the source of key material; Now is the genesis time. Both
	// are given so that tests can plan deterministically.
	Rand io.Reader
	Now  time.Time
}

// Plan is a planned network: its identity and one spec per node.
type Plan struct {
	ChainID string        `json:"chainID"`
	Nodes   []PlannedNode `json:"nodes"`
}

// PlannedNode is one node of a plan.
type PlannedNode struct {
	Name         string `json:"name"`
	Role         string `json:"role"`
	Organization string `json:"organization,omitempty"`
	// NodeID is the node's identity on the chain.
	NodeID string `json:"nodeID,omitempty"`
	// Spec is what the runtime runs; the controller sets its ID and labels.
	Spec runtime.NodeSpec `json:"spec"`
	// Endpoints are the addresses users and probes reach the node at.
	Endpoints map[string]string `json:"endpoints"`
}

// NodeInfo is what a probe learns from a node.
type NodeInfo struct {
	Height        int64
	Peers         int
	CatchingUp    bool
	LastBlockTime time.Time
	NodeID        string
}

// Driver knows one blockchain.
type Driver interface {
	// Validate checks the parts of a spec only this chain understands.
	Validate(spec *apis.NetworkSpec) apis.ErrorList
	// PortNames are the ports each node with role listens on.
	PortNames(role string) []string
	// Plan generates the artifacts and node specs of a network.
	Plan(ctx context.Context, req PlanRequest) (*Plan, error)
	// Probe asks a running node how it is.
	Probe(ctx context.Context, node PlannedNode) (NodeInfo, error)
}

var drivers = registry.New[Driver]("chain")

// Register makes a driver available under name; it panics on a duplicate.
func Register(name string, d Driver) { drivers.Register(name, d) }

// Get returns the driver registered as name.
func Get(name string) (Driver, error) { return drivers.Get(name) }

// Names lists the registered drivers.
func Names() []string { return drivers.Names() }
