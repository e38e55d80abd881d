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
	once  sync.Once
	proxy *httputil.ReverseProxy // nil when the group has no backend
}

// Accepts takes every request: a proxy API has nothing else to choose.
func (e *Entrypoint) Accepts(*http.Request) bool { return true }

// Rank implements mediation.Ranked.
func (e *Entrypoint) Rank() int { return mediation.RankDefault }

// Serve forwards the request to a backend of the group.
func (e *Entrypoint) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	e.once.Do(func() { e.proxy = newProxy(x.Group()) })
	if e.proxy == nil {
		mediation.WriteProblem(w, http.StatusBadGateway, "No backend configured", "the API's first endpoint group has no http-proxy endpoint", nil)
		return
	}
	ctx := context.WithValue(r.Context(), relPathKey{}, x.RelativePath)
	e.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// newProxy returns the reverse proxy over the group's backends, or nil.
func newProxy(group []mediation.Endpoint) *httputil.ReverseProxy {
	var members []Member
	for _, ep := range group {
		if m, ok := ep.(Member); ok {
			members = append(members, m)
		}
	}
	if len(members) == 0 {
		return nil
	}
	return &httputil.ReverseProxy{
		Transport: newPool(members),
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The pool sets scheme, host and path per backend tried.
			pr.Out.Host = ""
			pr.SetXForwarded()
		},
		FlushInterval: -1, // stream: SSE and chunked responses flow as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, r.Context().Err()) {
				return // the client went away
			}
			mediation.WriteProblem(w, http.StatusBadGateway, "Backend unreachable", err.Error(), nil)
		},
	}
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
