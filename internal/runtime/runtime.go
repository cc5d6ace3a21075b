// Package runtime defines where nodes run. A runtime knows no chain: it
// runs node specs (a program or an image, arguments, environment, files and
// ports), reports their state and removes them. Every call is idempotent and
// keyed by an ID the caller owns, so the controller can repeat any step
// after a crash.
package runtime

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// ErrNotFound is returned for an ID the runtime has no node for.
var ErrNotFound = errors.New("node not found in runtime")

// NodeSpec is everything a runtime needs to run one node.
type NodeSpec struct {
	// ID is stable for the life of the node and unique in the runtime.
	ID string `json:"id"`
	// Labels let the caller find its own nodes (network, node name).
	Labels map[string]string `json:"labels,omitempty"`
	// Program is the executable's name for runtimes that run processes.
	Program string `json:"program,omitempty"`
	// Image is the container image for runtimes that run containers.
	Image string            `json:"image,omitempty"`
	Args  []string          `json:"args,omitempty"`
	Env   map[string]string `json:"env,omitempty"`
	// Files are written under the node's home directory before it starts.
	Files []File `json:"files,omitempty"`
	// Ports the node listens on, by name.
	Ports     map[string]int `json:"ports,omitempty"`
	Resources Resources      `json:"resources,omitempty"`
	// Sidecars run beside the node and share its home directory, network
	// and life: they start first, and when one of them exits the node is
	// stopped with it (a second container in the node's pod, on
	// Kubernetes).
	Sidecars []Sidecar `json:"sidecars,omitempty"`
	// Init steps run one after another, each to its end, in the node's
	// home directory before its sidecars and the node start, at every
	// start (init containers, on Kubernetes). They prepare what the node
	// program cannot prepare itself, such as writing a genesis block into
	// an empty database, so they must be safe to repeat. A step that fails
	// fails the start.
	Init []InitStep `json:"init,omitempty"`
}

// InitStep is one command run to its end before a node starts.
type InitStep struct {
	// Name is unique among the node's init steps and names it in the
	// node's log.
	Name    string            `json:"name"`
	Program string            `json:"program,omitempty"`
	Image   string            `json:"image,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
}

// Sidecar is a helper program of a node, such as the application a
// CometBFT node talks to over ABCI.
type Sidecar struct {
	// Name is unique among the node's sidecars and names its log.
	Name    string            `json:"name"`
	Program string            `json:"program,omitempty"`
	Image   string            `json:"image,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// ReadyAddress, when set, is a TCP address the sidecar listens on;
	// the node starts only once it accepts connections.
	ReadyAddress string `json:"readyAddress,omitempty"`
}

// File is one file in a node's home directory.
type File struct {
	Path string      `json:"path"`
	Data []byte      `json:"data"`
	Mode os.FileMode `json:"mode"`
	// KeepExisting leaves a file the node already has alone; for state the
	// node owns after the first start (a validator's last signed height).
	KeepExisting bool `json:"keepExisting,omitempty"`
	// Secret marks key material (a Secret rather than a ConfigMap, on
	// Kubernetes).
	Secret bool `json:"secret,omitempty"`
}

// Resources are the compute resources a node asks for, as Kubernetes
// quantities.
type Resources struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// State is whether a node runs.
type State string

// States of a node.
const (
	StateRunning State = "Running"
	StateExited  State = "Exited"
)

// Status is what a runtime knows of one node.
type Status struct {
	ID        string
	Labels    map[string]string
	State     State
	PID       int
	StartedAt time.Time
	ExitedAt  time.Time
	ExitCode  int
	// Message explains an exit ("killed by signal 9").
	Message string
	// SpecHash identifies the spec the node was started with.
	SpecHash string
	// Pod is what a cluster says of the node's pod, on runtimes that run
	// pods.
	Pod *PodStatus
	// Waiting says why a node the runtime means to run does not run yet
	// (its pod not created, or not scheduled), in the runtime's words.
	Waiting string
}

// PodStatus is a node's pod as its cluster reports it.
type PodStatus struct {
	Name     string // namespace/name
	UID      string // changes when the pod is replaced
	Phase    string
	Ready    bool
	Restarts int
	PodIP    string
	HostIP   string
	Node     string
}

// Runtime runs nodes. Implementations never loop or retry on their own: the
// controller decides when to call again.
type Runtime interface {
	// Start makes the node run with spec. A node already running the same
	// spec is left alone; one running another spec is restarted.
	Start(ctx context.Context, spec NodeSpec) (Status, error)
	// Inspect reports the node, or ErrNotFound.
	Inspect(ctx context.Context, id string) (Status, error)
	// Stop stops the node and keeps its files. Stopping a stopped or
	// missing node is not an error.
	Stop(ctx context.Context, id string) error
	// Remove stops the node and removes everything it had. Removing a
	// missing node is not an error.
	Remove(ctx context.Context, id string) error
	// List reports every node the runtime has.
	List(ctx context.Context) ([]Status, error)
}

// Addresser is implemented by runtimes that give each node an address of
// its own (a pod), rather than running every node on the server's host.
type Addresser interface {
	// ListenHost is what nodes listen on.
	ListenHost() string
	// NodeHost is the name node of network is reached at.
	NodeHost(network, node string) string
}

// LogOptions select what Logs returns.
type LogOptions struct {
	// Tail is the number of last lines to start with; 0 means all.
	Tail int
	// Follow keeps streaming new lines until the context ends.
	Follow bool
	// Sidecar selects a sidecar's output instead of the node's.
	Sidecar string
}

// LogReader is implemented by runtimes that keep a node's output.
type LogReader interface {
	Logs(ctx context.Context, id string, opts LogOptions, w io.Writer) error
}

// ExitNotifier is implemented by runtimes that learn at once when a node
// they started exits, so the controller need not wait for its next probe.
type ExitNotifier interface {
	// OnExit sets the function called with a node's ID when it exits. It
	// must not block.
	OnExit(func(id string))
}
