package chain

import (
	"net/http"
	"slices"
	"sync"
)

// Router reaches nodes that the server cannot dial by their address: a
// node in a pod of a cluster the server runs outside of, reached through
// the cluster's API server. Runtimes whose nodes need it implement it.
type Router interface {
	// Route sends req its own way when req's host is one it reaches; ok
	// is false when it is not, and the request is dialed as usual.
	Route(req *http.Request) (resp *http.Response, ok bool, err error)
}

var routers struct {
	sync.RWMutex
	list []*Router
}

// AddRouter makes the drivers' requests go through r first; remove undoes
// it.
func AddRouter(r Router) (remove func()) {
	p := &r
	routers.Lock()
	routers.list = append(routers.list, p)
	routers.Unlock()
	return func() {
		routers.Lock()
		routers.list = slices.DeleteFunc(routers.list, func(q *Router) bool { return q == p })
		routers.Unlock()
	}
}

// Transport is base, with requests the routers claim sent their way.
// Drivers reach nodes through it.
func Transport(base http.RoundTripper) http.RoundTripper { return transport{base} }

type transport struct{ base http.RoundTripper }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	routers.RLock()
	list := slices.Clone(routers.list)
	routers.RUnlock()
	for _, r := range list {
		if resp, ok, err := (*r).Route(req); ok {
			return resp, err
		}
	}
	return t.base.RoundTrip(req)
}
