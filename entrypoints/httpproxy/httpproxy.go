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
	"fmt"
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
		Config:   func() any { c := DefaultConfig(); return &c },
		New: func(_ plugins.Context, cfg any) (mediation.Entrypoint, error) {
			c := plugins.ConfigOr(cfg, DefaultConfig)
			if err := c.Validate(); err != nil {
				return nil, err
			}
			return &Entrypoint{cfg: c}, nil
		},
	})
}

// Config configures the http-proxy entrypoint.
type Config struct {
	// MaxRequestBodySize bounds a request body in bytes; a larger one is
	// answered 413 and never reaches a backend. 0 means no limit. Default
	// 10 MiB.
	MaxRequestBodySize int64 `yaml:"maxRequestBodySize"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config { return Config{MaxRequestBodySize: 10 << 20} }

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxRequestBodySize < 0 {
		return plugins.Errorf("maxRequestBodySize", "must not be negative, got %d", c.MaxRequestBodySize)
	}
	return nil
}

// Backend is what an endpoint offers to be proxied to; the http-proxy
// endpoint implements it.
type Backend interface {
	Target() *url.URL
	Transport() http.RoundTripper
}

// Entrypoint proxies requests. One value serves one API.
type Entrypoint struct {
	cfg   Config
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
	if limit := e.cfg.MaxRequestBodySize; limit > 0 {
		if r.ContentLength > limit {
			tooLarge(w, limit)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
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
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				tooLarge(w, tooBig.Limit)
				return
			}
			mediation.WriteProblem(w, http.StatusBadGateway, "Backend unreachable", err.Error(), nil)
		},
	}
}

func tooLarge(w http.ResponseWriter, limit int64) {
	mediation.WriteProblem(w, http.StatusRequestEntityTooLarge, "Request body too large",
		fmt.Sprintf("this API takes at most %d bytes", limit), http.Header{"Connection": {"close"}})
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
