package httpproxy

import (
	"bufio"
	"fmt"
	"net/http"
	"time"

	"github.com/sluicegw/sluice/internal/h1"
	"github.com/sluicegw/sluice/mediation"
)

// NonBlockingFor implements mediation.NonBlockingEntrypoint: an event loop
// may forward the API's requests when every backend is plain HTTP/1.1
// without a connection cap (the cap's wait would block the loop).
func (e *Entrypoint) NonBlockingFor(group []mediation.Endpoint) bool {
	e.once.Do(func() { e.setUp(group) })
	if !e.fast {
		return false
	}
	for _, m := range e.pool.members {
		if p, _ := m.(Upstream).Upstream(); p.MaxConns() > 0 {
			return false
		}
	}
	return true
}

// serveLoop passes the request to the event loop serving it, which does
// the backend's I/O (h1.Forward); the balancing, retries, rewriting and
// health reports are the same as serveFast's.
func (e *Entrypoint) serveLoop(w *h1.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	f := &loopExchange{e: e, r: r, x: x}
	f.tried = f.triedBuf[:0]
	x.Hold()           // the API's drain waits for the relay, as for serveFast's
	if !w.Forward(f) { // something wrote a response already: never Done then
		x.Release()
	}
}

// loopExchange is one proxied request on an event loop.
type loopExchange struct {
	e        *Entrypoint
	r        *http.Request
	x        *mediation.Exchange
	m        Member // the backend of the current attempt
	tried    []Member
	triedBuf [2]Member
}

// Next implements h1.Forward with serveFast's rules: another backend after
// a failure that never reached one, or after any failure of a bodiless
// idempotent request when the group retries those.
func (f *loopExchange) Next(bw *bufio.Writer, prev error, p h1.Progress) (*h1.Pool, time.Duration, bool) {
	pl := f.e.pool
	if prev != nil {
		f.m.Report(false)
		if !pl.mayRetry(p == h1.SentNothing, f.r.Method, f.r.ContentLength <= 0) { // serveFast's rule
			return nil, 0, false
		}
	}
	if len(f.tried) >= pl.attempts {
		return nil, 0, false
	}
	m := pl.pick(f.tried)
	if m == nil {
		return nil, 0, false
	}
	f.tried = append(f.tried, m)
	f.m = m
	up, readTimeout := m.(Upstream).Upstream()
	f.e.writeRequestHead(bw, f.r, f.x, m.Target())
	return up, readTimeout, true
}

// WriteHead implements h1.Forward.
func (f *loopExchange) WriteHead(bw *bufio.Writer, resp *h1.Response, kind h1.BodyKind, closing bool) {
	f.m.Report(resp.Status != http.StatusBadGateway && resp.Status != http.StatusServiceUnavailable &&
		resp.Status != http.StatusGatewayTimeout)
	writeResponseHead(bw, resp, kind, closing)
}

// Fail implements h1.Forward. The loop read the whole body: the connection
// stays usable.
func (f *loopExchange) Fail(w *h1.ResponseWriter, err error) {
	mediation.WriteProblem(w, http.StatusBadGateway, "Backend unreachable", fmt.Sprint(err), nil)
}

// Done implements h1.Forward.
func (f *loopExchange) Done() { f.x.Release() }

// Interface guards.
var (
	_ h1.Forward                      = (*loopExchange)(nil)
	_ mediation.NonBlockingEntrypoint = (*Entrypoint)(nil)
)
