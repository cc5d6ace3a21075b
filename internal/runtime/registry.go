package runtime

import (
	"fmt"
	"sort"
	"sync"
)

// Config is what the server gives every runtime.
type Config struct {
	// DataDir is the runtime's own directory.
	DataDir string
	// BinDirs are searched for programs before PATH.
	BinDirs []string
}

// Factory makes a runtime.
type Factory func(Config) (Runtime, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a runtime available under name. It panics on a duplicate,
// which is a programming error found at start-up.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[name]; dup {
		panic(fmt.Sprintf("runtime %q registered twice", name))
	}
	factories[name] = f
}

// Names lists the registered runtimes.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(factories))
	for n := range factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// New makes the runtime registered as name.
func New(name string, cfg Config) (Runtime, error) {
	mu.RLock()
	f, ok := factories[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown runtime %q", name)
	}
	return f(cfg)
}
