// Package admin serves the management listener: liveness, readiness,
// Prometheus metrics, and the /v1 management API (APIs, webhook
// subscriptions, API keys) behind an optional bearer token.
package admin

import (
	"crypto/subtle"
	_ "embed"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// Options configure Handler.
type Options struct {
	// Ready reports whether the gateway serves traffic (config loaded,
	// listeners up, not draining).
	Ready func() bool
	// Metrics is the registry /metrics exposes.
	Metrics *prometheus.Registry
	// Token, when set, is required as a bearer token on /v1/.
	Token string
	// Deployer, when set, serves /v1/apis: list, get, PUT (deploy), DELETE.
	Deployer Deployer
	// Registry validates API documents; default plugins.Default.
	Registry *plugins.Registry
	// Store keeps what the management API creates across restarts; nil
	// keeps nothing (and offers no API keys).
	Store Store
	// Subscriptions, when set, serves the webhook subscription routes.
	Subscriptions Subscriptions
}

// Store is what the management API keeps: API documents and API keys.
type Store interface {
	APIStore
	KeyStore
}

// Handler returns the management listener's handler.
//
//	GET /livez, /healthz  200 while the process runs; never checks brokers
//	GET /readyz           200 when ready, 503 before start and while draining
//	GET /metrics          Prometheus text format
//	/v1/...               management API, bearer token when configured
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	live := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	}
	mux.HandleFunc("GET /livez", live)
	mux.HandleFunc("GET /healthz", live)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if o.Ready == nil || !o.Ready() {
			mediation.WriteProblem(w, http.StatusServiceUnavailable, "Gateway not ready", "starting or draining", nil)
			return
		}
		live(w, r)
	})
	if o.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics, promhttp.HandlerOpts{}))
	}
	v1 := http.NewServeMux()
	v1.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		mediation.WriteProblem(w, http.StatusNotFound, "Not found", r.Method+" "+r.URL.Path, nil)
	})
	if o.Deployer != nil {
		reg := o.Registry
		if reg == nil {
			reg = plugins.Default
		}
		h := &apisHandler{d: o.Deployer, reg: reg}
		if o.Store != nil {
			h.store = o.Store
			(&keysHandler{d: o.Deployer, store: o.Store}).register(v1)
		}
		h.register(v1)
	}
	if o.Subscriptions != nil {
		(&subscriptionsHandler{subs: o.Subscriptions}).register(v1)
	}
	v1.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	mux.Handle("/v1/", requireToken(o.Token, v1))
	return mux
}

// openAPI describes the management API; TestOpenAPIListsRoutes checks that
// it documents every route.
//
//go:embed openapi.json
var openAPI []byte

// requireToken guards h with a bearer token compared in constant time.
func requireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			mediation.WriteProblem(w, http.StatusUnauthorized, "Missing or wrong admin token",
				"send Authorization: Bearer <server.admin.token>", http.Header{"Www-Authenticate": {`Bearer realm="sluice-admin"`}})
			return
		}
		h.ServeHTTP(w, r)
	})
}
