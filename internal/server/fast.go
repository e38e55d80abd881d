package server

import (
	"io"
	"net/http"
	"net/url"

	"github.com/sluicegw/sluice/internal/h1"
)

// serveFast is the data plane's fast path (internal/h1): it serves the
// plain HTTP/1.1 requests of proxy APIs, and POSTs to message APIs, without
// net/http's server. Everything else — other routes, streams, upgrades,
// h2c, odd input — returns false and goes to net/http with the connection.
// On an event loop it serves only routes that never block (route.loopable);
// the others go to h1's goroutine-per-connection path first.
//
// Requests are routed exactly as ServeHTTP routes them: the path is
// unescaped and cleaned once, and routing, plans, flows and the backend see
// that form.
func (s *Server) serveFast(w *h1.ResponseWriter, hr *h1.Request, body io.Reader) bool {
	raw := string(hr.Path)
	p, err := url.PathUnescape(raw)
	if err != nil {
		return false // net/http answers it
	}
	p = cleanRequestPath(p)
	if _, ok := s.extra[p]; ok {
		return false
	}
	host := string(hr.Host)
	rt, rel := s.routes.Load().match(host, p)
	if rt == nil || rt.cors != nil || !(rt.fastAll || hr.Method == http.MethodPost) {
		return false
	}
	if w.OnLoop() && !rt.loopable() {
		return false
	}
	r := hr.HTTPRequest(p, body)
	w.Finished = rt.countFinal
	rt.api.ServeExchange(w, r, rel)
	return true
}
