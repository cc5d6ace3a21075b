// Package registry is the name → plugin table that chain drivers and
// runtimes register themselves in from init().
package registry

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps names to plugins of one kind.
type Registry[T any] struct {
	kind string
	mu   sync.RWMutex
	m    map[string]T
}

// New makes a registry; kind names the plugins in errors ("chain").
func New[T any](kind string) *Registry[T] {
	return &Registry[T]{kind: kind, m: map[string]T{}}
}

// Register adds v under name. It panics on a duplicate, a programming
// error found at start-up.
func (r *Registry[T]) Register(name string, v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[name]; dup {
		panic(fmt.Sprintf("%s %q registered twice", r.kind, name))
	}
	r.m[name] = v
}

// Get returns the plugin registered as name.
func (r *Registry[T]) Get(name string) (T, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.m[name]
	if !ok {
		var zero T
		return zero, fmt.Errorf("unknown %s %q", r.kind, name)
	}
	return v, nil
}

// Names lists the registered names in order.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for n := range r.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
