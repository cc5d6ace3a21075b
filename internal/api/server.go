package api

import (
	"crypto/subtle"
	_ "embed"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/metrics"
	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/store"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI document.
func OpenAPI() []byte { return openAPI }

// Options configure the API.
type Options struct {
	Store store.Store
	// Token is the admin bearer token every request must carry.
	Token string
	// Enqueue tells the controller a network changed.
	Enqueue func(name string)
	// Registries are the chains and runtimes specs may name.
	Registries apis.Registries
	// Validate runs the chain driver's own checks.
	Validate func(spec *apis.NetworkSpec) apis.ErrorList
	// Keys rotates the key-encryption key; nil disables the endpoints.
	Keys KeyRotator
	// Runtimes serve node logs.
	Runtimes map[string]runtime.Runtime
	Metrics  *metrics.Metrics
	Log      *slog.Logger
}

// API is the HTTP handler.
type API struct {
	opts   Options
	router chi.Router
}

// New builds the handler.
func New(opts Options) *API {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	a := &API{opts: opts}
	r := chi.NewRouter()
	r.Use(middleware.RequestID, a.logRequests, middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	r.Group(func(r chi.Router) {
		r.Use(a.authenticate)
		r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(opts.Metrics.Registry, promhttp.HandlerOpts{}))
		r.Route("/api/v1", func(r chi.Router) {
			r.Get("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(openAPI)
			})
			r.Get("/networks", a.listNetworks)
			r.Post("/networks", a.createNetwork)
			r.Get("/networks/{name}", a.getNetwork)
			r.Delete("/networks/{name}", a.deleteNetwork)
			r.Get("/networks/{name}/nodes", a.listNodes)
			r.Get("/networks/{name}/nodes/{node}", a.getNode)
			r.Get("/networks/{name}/nodes/{node}/logs", a.nodeLogs)
			r.Get("/networks/{name}/events", a.networkEvents)
			r.Get("/events", a.listEvents)
			r.Get("/admin/keys", a.listKeys)
			r.Post("/admin/keys/rotate", a.rotateKey)
		})
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "no such endpoint: " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusMethodNotAllowed, Detail: r.Method + " is not allowed on " + r.URL.Path})
	})
	a.router = r
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.router.ServeHTTP(w, r) }

// Routes lists every route as "METHOD pattern", for documentation checks.
func (a *API) Routes() []string {
	var out []string
	_ = chi.Walk(a.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, method+" "+route)
		return nil
	})
	return out
}

func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(a.opts.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chaindock"`)
			detail := "this endpoint needs an Authorization: Bearer token (the admin token is in DATA_DIR/admin.token)"
			if ok {
				detail = "the bearer token is not valid"
			}
			a.opts.Log.Warn("refused unauthenticated request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writeProblem(w, r, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized, Detail: detail})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		a.opts.Metrics.HTTPRequests.WithLabelValues(route, r.Method, strconv.Itoa(ww.Status())).Inc()
		a.opts.Log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", ww.Status(), "duration", time.Since(start))
	})
}
