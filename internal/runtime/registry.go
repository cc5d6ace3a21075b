package runtime

import (
	"context"

	"github.com/chaindock/chaindock/internal/registry"
)

// Config is what the server gives every runtime.
type Config struct {
	// DataDir is the runtime's own directory.
	DataDir string
	// BinDirs are searched for programs before PATH.
	BinDirs []string
	// Clusters are the Kubernetes clusters registered with the platform,
	// for runtimes that run nodes on them.
	Clusters ClusterSource
}

// ClusterSource gives the Kubernetes clusters registered with the platform.
type ClusterSource interface {
	ClusterNames(ctx context.Context) ([]string, error)
	// Kubeconfig is the cluster's kubeconfig and the context to use.
	Kubeconfig(ctx context.Context, name string) ([]byte, string, error)
}

// Factory makes a runtime.
type Factory func(Config) (Runtime, error)

var factories = registry.New[Factory]("runtime")

// Register makes a runtime available under name. It panics on a duplicate,
// which is a programming error found at start-up.
func Register(name string, f Factory) { factories.Register(name, f) }

// Names lists the registered runtimes.
func Names() []string { return factories.Names() }

// New makes the runtime registered as name.
func New(name string, cfg Config) (Runtime, error) {
	f, err := factories.Get(name)
	if err != nil {
		return nil, err
	}
	return f(cfg)
}
