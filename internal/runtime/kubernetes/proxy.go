package kubernetes

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"
)

// ProxyRate bounds the requests sent to one cluster's service proxy, per
// second (bursts of twice that): chain probes, the gateway and the
// explorer share it.
const ProxyRate = 100

// A node in a pod is reached at its Service's name, which resolves only
// inside its cluster. A server outside the cluster reaches it through the
// cluster's API server instead:
// /api/v1/namespaces/NS/services/NODE:PORT/proxy/PATH, with the
// credentials of the cluster's registration.

// serviceProxy sends requests to nodes of one cluster through its API
// server.
type serviceProxy struct {
	base      *url.URL
	transport http.RoundTripper
	limit     *rate.Limiter
}

func newServiceProxy(rc *rest.Config, counted func(http.RoundTripper) http.RoundTripper) (*serviceProxy, error) {
	tr, err := rest.TransportFor(rc)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(rc.Host)
	if err != nil {
		return nil, err
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	return &serviceProxy{base: base, transport: counted(tr), limit: rate.NewLimiter(ProxyRate, 2*ProxyRate)}, nil
}

func (p *serviceProxy) roundTrip(req *http.Request, ns, svc, port string) (*http.Response, error) {
	if err := p.limit.Wait(req.Context()); err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	u := *p.base
	u.Path = fmt.Sprintf("%s/api/v1/namespaces/%s/services/%s:%s/proxy/%s", u.Path, ns, svc, port, strings.TrimPrefix(req.URL.Path, "/"))
	u.RawQuery = req.URL.RawQuery
	out.URL, out.Host, out.RequestURI = &u, u.Host, ""
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		return nil, fmt.Errorf("through the API server's service proxy: %w", err)
	}
	return resp, nil
}

// serviceHost splits a node's Service name, NODE.NAMESPACE.svc.
func serviceHost(host string) (svc, ns string, ok bool) {
	name, ok := strings.CutSuffix(host, ".svc")
	if !ok {
		return "", "", false
	}
	svc, ns, ok = strings.Cut(name, ".")
	return svc, ns, ok && svc != "" && ns != "" && !strings.Contains(ns, ".")
}

// resolver remembers, for a minute, whether Service names resolve here:
// where they do (the server runs in the cluster), nodes are dialed
// directly.
type resolver struct {
	mu   sync.Mutex
	seen map[string]resolved
}

type resolved struct {
	ok bool
	at time.Time
}

func (r *resolver) resolves(ctx context.Context, host string) bool {
	r.mu.Lock()
	got, ok := r.seen[host]
	r.mu.Unlock()
	if ok && time.Since(got.at) < time.Minute {
		return got.ok
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	got = resolved{ok: err == nil && len(addrs) > 0, at: time.Now()}
	r.mu.Lock()
	if r.seen == nil {
		r.seen = map[string]resolved{}
	}
	r.seen[host] = got
	r.mu.Unlock()
	return got.ok
}

// Route sends a request for a node's Service name through the API server
// of the cluster that runs the node, when the name does not resolve here.
// ok is false for any other request, which is then dialed as usual.
func (c *Clusters) Route(req *http.Request) (resp *http.Response, ok bool, err error) {
	host := req.URL.Hostname()
	svc, ns, ok := serviceHost(host)
	if !ok || c.resolver.resolves(req.Context(), host) {
		return nil, false, nil
	}
	port := req.URL.Port()
	if port == "" {
		port = "80"
	}
	c.mu.Lock()
	var proxy *serviceProxy
	for _, rt := range c.rts {
		if rt.holds(ns, svc) {
			proxy = rt.proxy
			break
		}
	}
	c.mu.Unlock()
	if proxy == nil {
		return nil, false, nil
	}
	resp, err = proxy.roundTrip(req, ns, svc, port)
	return resp, true, err
}

// holds tells whether the runtime's cluster has ChainDock's node svc in
// namespace ns, as its watch last saw.
func (r *Runtime) holds(ns, svc string) bool {
	r.mu.Lock()
	w := r.w
	r.mu.Unlock()
	if w == nil || r.proxy == nil {
		return false
	}
	_, ok, err := w.sts.GetStore().GetByKey(ns + "/" + svc)
	return ok && err == nil
}
