package api

import (
	_ "embed"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/gateway"
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
	// RateLimit is the requests per second each caller may make (with a
	// burst of RateBurst); zero disables the limit.
	RateLimit float64
	RateBurst int
	// LoginRate is the login attempts per second one address may make, in
	// bursts of five times that; zero means 2.
	LoginRate float64
	// GatewayRate is the transactions per second one caller may submit to
	// one network, in bursts of twice that; zero disables the limit.
	GatewayRate float64
	// Gateway submits applications' transactions; nil means the defaults.
	Gateway *gateway.Gateway
}

// API is the HTTP handler.
type API struct {
	opts         Options
	router       chi.Router
	limiter      *limiter
	loginLimiter *limiter
	gatewayLimit *limiter
	gateway      *gateway.Gateway
	plans        planCache
}

// New builds the handler.
func New(opts Options) *API {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.RateBurst == 0 {
		opts.RateBurst = max(1, int(2*opts.RateLimit))
	}
	if opts.LoginRate == 0 {
		opts.LoginRate = 2
	}
	if opts.Gateway == nil {
		opts.Gateway = gateway.New()
	}
	a := &API{
		opts: opts, limiter: newLimiter(opts.RateLimit, opts.RateBurst), loginLimiter: newLimiter(opts.LoginRate, int(5*opts.LoginRate)),
		gatewayLimit: newLimiter(opts.GatewayRate, max(1, int(2*opts.GatewayRate))), gateway: opts.Gateway,
	}
	if a.gateway.PlanOf == nil && opts.Store != nil {
		a.gateway.PlanOf = a.gatewayPlan
	}
	r := chi.NewRouter()
	r.Use(middleware.RequestID, a.logRequests, middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	r.Group(func(r chi.Router) {
		r.Use(a.audit)
		r.Post("/api/v1/login", a.login)
		r.Group(func(r chi.Router) {
			r.Use(a.authenticate)
			r.Method(http.MethodGet, "/metrics", a.platformOnly(promhttp.HandlerFor(opts.Metrics.Registry, promhttp.HandlerOpts{})))
			r.Route("/api/v1", func(r chi.Router) {
				r.Get("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write(openAPI)
				})
				r.Get("/whoami", a.whoami)
				r.Post("/logout", a.logout)
				r.Get("/networks", a.listNetworks)
				r.Post("/networks", a.createNetwork)
				r.Get("/networks/{name}", a.getNetwork)
				r.Delete("/networks/{name}", a.deleteNetwork)
				r.Put("/networks/{name}/scale", a.scaleNetwork)
				r.Post("/networks/{name}/channels", a.addChannel)
				r.Put("/networks/{name}/channels/{channel}", a.setChannelMembers)
				r.Get("/networks/{name}/certificates", a.listCertificates)
				r.Post("/networks/{name}/certificates/renew", a.renewCertificates)
				r.Get("/networks/{name}/nodes", a.listNodes)
				r.Get("/networks/{name}/nodes/{node}", a.getNode)
				r.Get("/networks/{name}/nodes/{node}/logs", a.nodeLogs)
				r.Get("/networks/{name}/events", a.networkEvents)
				r.Get("/networks/{name}/blocks", a.listBlocks)
				r.Get("/networks/{name}/blocks/{block}", a.getBlock)
				r.Get("/networks/{name}/transactions", a.listTxs)
				r.With(a.withIdentityKeys).Post("/networks/{name}/transactions", a.submitTx)
				r.Get("/networks/{name}/transactions/{hash}", a.getTx)
				r.Get("/networks/{name}/search", a.search)
				r.Get("/networks/{name}/explorer", a.explorerStatus)
				r.Post("/networks/{name}/explorer/reindex", a.reindex)
				r.Get("/networks/{name}/query", a.queryApp)
				r.Post("/networks/{name}/query", a.queryAppBody)
				r.Get("/networks/{name}/notary/{hash}", a.notaryProof)
				r.Get("/networks/{name}/identities", a.listIdentities)
				r.Post("/networks/{name}/identities", a.enrollIdentity)
				r.Get("/networks/{name}/identities/{org}/{identity}", a.getIdentity)
				r.Delete("/networks/{name}/identities/{org}/{identity}", a.deleteIdentity)
				r.Post("/networks/{name}/identities/{org}/{identity}/renew", a.renewIdentity)
				r.Get("/networks/{name}/contracts", a.listContracts)
				r.Post("/networks/{name}/contracts", a.deployContract)
				r.Get("/networks/{name}/contracts/{contract}", a.getContract)
				r.Put("/networks/{name}/contracts/{contract}", a.upgradeContract)
				r.Delete("/networks/{name}/contracts/{contract}", a.removeContract)
				r.Get("/packages", a.listPackages)
				r.Post("/packages", a.createPackage)
				r.Get("/packages/{owner}/{pkg}/{version}", a.getPackage)
				r.Delete("/packages/{owner}/{pkg}/{version}", a.deletePackage)
				r.Get("/events", a.listEvents)
				r.Get("/users", a.listUsers)
				r.Post("/users", a.createUser)
				r.Get("/organizations", a.listOrgs)
				r.Post("/organizations", a.createOrg)
				r.Get("/organizations/{org}/members", a.listMembers)
				r.Put("/organizations/{org}/members/{user}", a.putMember)
				r.Delete("/organizations/{org}/members/{user}", a.deleteMember)
				r.Get("/organizations/{org}/apikeys", a.listAPIKeys)
				r.Post("/organizations/{org}/apikeys", a.createAPIKey)
				r.Delete("/organizations/{org}/apikeys/{id}", a.revokeAPIKey)
				r.Get("/consortia", a.listConsortia)
				r.Post("/consortia", a.createConsortium)
				r.Get("/consortia/{consortium}", a.getConsortium)
				r.Post("/consortia/{consortium}/invitations", a.invite)
				r.Delete("/consortia/{consortium}/members/{org}", a.removeConsortiumMember)
				r.Get("/invitations", a.listInvitations)
				r.Post("/invitations/{id}/accept", a.decideInvitation(store.InvitationAccepted))
				r.Post("/invitations/{id}/decline", a.decideInvitation(store.InvitationDeclined))
				r.Get("/clusters", a.listClusters)
				r.Post("/clusters", a.createCluster)
				r.Get("/clusters/{cluster}", a.getCluster)
				r.Post("/clusters/{cluster}/check", a.recheckCluster)
				r.Delete("/clusters/{cluster}", a.deleteCluster)
				r.Get("/audit", a.listAudit)
				r.Get("/admin/keys", a.platformOnly(http.HandlerFunc(a.listKeys)).ServeHTTP)
				r.Post("/admin/keys/rotate", a.platformOnly(http.HandlerFunc(a.rotateKey)).ServeHTTP)
			})
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

func (a *API) platformOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.allow(w, r, auth.PlatformManage, auth.Scope{}) {
			next.ServeHTTP(w, r)
		}
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
