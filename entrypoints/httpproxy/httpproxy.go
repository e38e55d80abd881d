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
	"net/netip"
	"net/url"
	"strings"
	"sync"

	"github.com/sluicegw/sluice/internal/h1"
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
			return New(plugins.ConfigOr(cfg, DefaultConfig))
		},
	})
}

// Config configures the http-proxy entrypoint.
type Config struct {
	// MaxRequestBodySize bounds a request body in bytes; a larger one is
	// answered 413 and never reaches a backend. 0 means no limit. Default
	// 10 MiB.
	MaxRequestBodySize int64 `yaml:"maxRequestBodySize"`
	// TrustedProxies are the addresses or CIDR ranges (a load balancer in
	// front of the gateway) whose X-Forwarded-For/-Proto/-Host are kept
	// and extended. Anyone else's are replaced: a client cannot choose the
	// address a backend sees. Default none.
	TrustedProxies []string `yaml:"trustedProxies"`

	trusted []netip.Prefix
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config { return Config{MaxRequestBodySize: 10 << 20} }

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxRequestBodySize < 0 {
		return plugins.Errorf("maxRequestBodySize", "must not be negative, got %d", c.MaxRequestBodySize)
	}
	c.trusted = c.trusted[:0]
	for _, t := range c.TrustedProxies {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			a, aerr := netip.ParseAddr(t)
			if aerr != nil {
				return plugins.Errorf("trustedProxies", "%q is not an address or a CIDR range", t)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.trusted = append(c.trusted, p.Masked())
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
	pool  *pool
	// fast: every backend has a keep-alive pool for the fast path's
	// requests (h1.ResponseWriter); others go through proxy.
	fast bool
}

// New returns an http-proxy entrypoint, or the configuration's problem.
func New(cfg Config) (*Entrypoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Entrypoint{cfg: cfg}, nil
}

// Accepts takes every request: a proxy API has nothing else to choose.
func (e *Entrypoint) Accepts(*http.Request) bool { return true }

// Rank implements mediation.Ranked.
func (e *Entrypoint) Rank() int { return mediation.RankDefault }

// Serve forwards the request to a backend of the group.
func (e *Entrypoint) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	e.once.Do(func() { e.setUp(x.Group()) })
	if e.proxy == nil {
		mediation.WriteProblem(w, http.StatusBadGateway, "No backend configured", "the API's first endpoint group has no http-proxy endpoint", nil)
		return
	}
	if limit := e.cfg.MaxRequestBodySize; limit > 0 {
		if r.ContentLength > limit {
			tooLarge(w, limit)
			return
		}
	}
	if fw, ok := w.(*h1.ResponseWriter); ok && e.fast {
		// The body's length is known and within the limit.
		if fw.OnLoop() {
			e.serveLoop(fw, r, x)
			return
		}
		e.serveFast(fw, r, x)
		return
	}
	if limit := e.cfg.MaxRequestBodySize; limit > 0 {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	ctx := context.WithValue(r.Context(), relPathKey{}, x.RelativePath)
	if fastWriter(w) != nil {
		// ReverseProxy aborts a response it cannot finish (panics with
		// http.ErrAbortHandler) only when it runs in a server; h1's server
		// recovers that and cuts the connection, so the client sees the
		// response was cut instead of a complete-looking short one.
		ctx = context.WithValue(ctx, http.ServerContextKey, fastServer)
	}
	e.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// setUp balances over the group's backends; without any, proxy stays nil.
func (e *Entrypoint) setUp(group []mediation.Endpoint) {
	var members []Member
	for _, ep := range group {
		if m, ok := ep.(Member); ok {
			members = append(members, m)
		}
	}
	if len(members) == 0 {
		return
	}
	e.pool = newPool(members)
	e.fast = fastable(members)
	e.proxy = newProxy(e.pool, e.cfg.trusted)
}

// fastWriter is the h1.ResponseWriter under w (policies wrap it), or nil
// when net/http's server serves the request.
func fastWriter(w http.ResponseWriter) *h1.ResponseWriter {
	for {
		if fw, ok := w.(*h1.ResponseWriter); ok {
			return fw
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}

// fastServer stands for h1's server in requests it serves through
// ReverseProxy.
var fastServer = &http.Server{}

// newProxy returns the reverse proxy over the pool's backends.
func newProxy(p *pool, trusted []netip.Prefix) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport: p,
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The pool sets scheme, host and path per backend tried.
			pr.Out.Host = ""
			in := pr.In.Header
			if fromTrusted(pr.In.RemoteAddr, trusted) {
				// Keep what the proxy in front said; SetXForwarded appends
				// its address to X-Forwarded-For.
				if v := in.Values("X-Forwarded-For"); len(v) > 0 {
					pr.Out.Header["X-Forwarded-For"] = v
				}
				pr.SetXForwarded()
				for _, h := range []string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
					if v := in.Get(h); v != "" {
						pr.Out.Header.Set(h, v)
					}
				}
				return
			}
			pr.SetXForwarded()
		},
		FlushInterval:  -1, // stream: SSE and chunked responses flow as they come
		ModifyResponse: grpcTrailersOnly,
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

// grpcTrailersOnly turns a gRPC "Trailers-Only" response (an error whose
// grpc-status travels in the headers of a frame that ends the stream) into
// headers plus trailers. The proxy flushes headers as soon as they come, so
// the client would see them in a frame that does not end the stream and
// then wait for trailers that never come.
func grpcTrailersOnly(res *http.Response) error {
	if res.Header.Get("Grpc-Status") == "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/grpc") {
		return nil
	}
	if res.Trailer == nil {
		res.Trailer = http.Header{}
	}
	for _, h := range []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"} {
		if v, ok := res.Header[h]; ok {
			res.Trailer[h] = v
			delete(res.Header, h)
		}
	}
	return nil
}

func fromTrusted(remote string, trusted []netip.Prefix) bool {
	if len(trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
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
