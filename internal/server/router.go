package server

import (
	"bufio"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/sluicegw/sluice/mediation"
)

// route is one listener path of an API.
type route struct {
	prefix string   // normalized: leading '/', no trailing '/' except for "/"
	hosts  []string // empty: any host
	cors   *cors    // nil: no CORS
	api    *mediation.API
	// fastAll: the fast path serves every request it can parse (proxy
	// APIs); otherwise only POSTs (message APIs' http-post).
	fastAll bool
	// onLoop: an event loop may serve the route's requests (see
	// mediation.API.NonBlocking); asked once, on the first request.
	onLoop     sync.Once
	onLoopOK   bool
	countFinal func(status int) // counts a request in the metrics
}

// loopable reports whether an event loop may serve rt's requests.
func (rt *route) loopable() bool {
	rt.onLoop.Do(func() { rt.onLoopOK = rt.fastAll && rt.cors == nil && rt.api.NonBlocking() })
	return rt.onLoopOK
}

// routeTable is immutable once built; the server swaps whole tables on
// deploy so that requests in flight keep the table they started with.
type routeTable struct {
	routes []*route // longest prefix first
}

func newRouteTable(routes []*route) *routeTable {
	rs := slices.Clone(routes)
	slices.SortStableFunc(rs, func(a, b *route) int { return len(b.prefix) - len(a.prefix) })
	return &routeTable{routes: rs}
}

// match returns the route for host and a cleaned path, and the path relative
// to the route's prefix ("/" at least).
func (t *routeTable) match(host, cleanPath string) (*route, string) {
	portStripped := false
	for i := range t.routes {
		r := t.routes[i]
		if len(r.hosts) > 0 {
			if !portStripped { // only now: most routes name no host
				host, portStripped = hostWithoutPort(host), true
			}
			if !slices.ContainsFunc(r.hosts, func(h string) bool { return strings.EqualFold(h, host) }) {
				continue
			}
		}
		if r.prefix == "/" {
			return r, cleanPath
		}
		if cleanPath == r.prefix {
			return r, "/"
		}
		if strings.HasPrefix(cleanPath, r.prefix) && cleanPath[len(r.prefix)] == '/' {
			return r, cleanPath[len(r.prefix):]
		}
	}
	return nil, ""
}

// hostWithoutPort drops a Host header's port, if it has one.
func hostWithoutPort(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// normalizePrefix makes a configured listener path comparable.
func normalizePrefix(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	p = path.Clean(p)
	return p
}

// cleanRequestPath resolves dot segments and duplicate slashes once, so that
// matching and forwarding see the same path.
func cleanRequestPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	return path.Clean(p)
}

// statusWriter records the status code for metrics and logs. It forwards
// Flush and Hijack, which streaming and WebSocket entrypoints need.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
