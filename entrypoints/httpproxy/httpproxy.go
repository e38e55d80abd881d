// Package httpproxy is the `http-proxy` entrypoint of proxy APIs: it forwards
// every request of its listener to the endpoints of the API's first group,
// round-robin, with the listener path prefix replaced by the target's path,
// the query kept, hop-by-hop headers dropped, X-Forwarded-For/-Proto/-Host
// set (incoming ones are not trusted), streaming responses flushed as they
// arrive, and WebSocket upgrades passed through.
package httpproxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type:     "http-proxy",
		Listener: "http",
		QoS:      []mediation.QoS{mediation.QoSNone, mediation.QoSAuto},
		New:      func(plugins.Context, any) (mediation.Entrypoint, error) { return &Entrypoint{}, nil },
	})
}

// Backend is what an endpoint offers to be proxied to; the http-proxy
// endpoint implements it.
type Backend interface {
	Target() *url.URL
	Transport() http.RoundTripper
}

// Entrypoint proxies requests. One value serves one API.
type Entrypoint struct {
	next    atomic.Uint64
	proxies sync.Map // Backend → *httputil.ReverseProxy
}

// Accepts takes every request: a proxy API has nothing else to choose.
func (e *Entrypoint) Accepts(*http.Request) bool { return true }

// Rank implements mediation.Ranked.
func (e *Entrypoint) Rank() int { return mediation.RankDefault }

// Serve forwards the request to the next backend of the group.
func (e *Entrypoint) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	group := x.Group()
	var backends []Backend
	for _, ep := range group {
		if b, ok := ep.(Backend); ok {
			backends = append(backends, b)
		}
	}
	if len(backends) == 0 {
		mediation.WriteProblem(w, http.StatusBadGateway, "No backend configured", "the API's first endpoint group has no http-proxy endpoint", nil)
		return
	}
	b := backends[e.next.Add(1)%uint64(len(backends))]
	ctx := context.WithValue(r.Context(), relPathKey{}, x.RelativePath)
	e.proxyFor(b).ServeHTTP(w, r.WithContext(ctx))
}

// relPathKey carries the path below the listener prefix to Rewrite.
type relPathKey struct{}

func (e *Entrypoint) proxyFor(b Backend) *httputil.ReverseProxy {
	if p, ok := e.proxies.Load(b); ok {
		return p.(*httputil.ReverseProxy)
	}
	target := b.Target()
	p := &httputil.ReverseProxy{
		Transport: b.Transport(),
		Rewrite: func(pr *httputil.ProxyRequest) {
			rel, _ := pr.In.Context().Value(relPathKey{}).(string)
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
			pr.Out.URL.Path = joinPath(target.Path, rel)
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = ""
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, r.Context().Err()) {
				return // the client went away
			}
			mediation.WriteProblem(w, http.StatusBadGateway, "Backend unreachable", err.Error(), nil)
		},
	}
	actual, _ := e.proxies.LoadOrStore(b, p)
	return actual.(*httputil.ReverseProxy)
}

// joinPath replaces the listener prefix (already stripped into rel) by the
// target's base path.
func joinPath(base, rel string) string {
	if rel == "" || rel == "/" {
		if base == "" {
			return "/"
		}
		return base
	}
	return strings.TrimSuffix(base, "/") + rel
}

// Interface guards.
var (
	_ mediation.Entrypoint = (*Entrypoint)(nil)
	_ mediation.Ranked     = (*Entrypoint)(nil)
)
