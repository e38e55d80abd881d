package httpproxy

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
)

// Member is a backend as the balancer sees it; the http-proxy endpoint
// implements it.
type Member interface {
	Backend
	// Balancer is the group's load balancer: round-robin, random, weighted.
	Balancer() string
	// Weight is the backend's share under weighted balancing.
	Weight() int
	// Available reports whether a request may be sent now (health checks,
	// circuit breaker); asking may reserve a half-open probe.
	Available() bool
	// Report records whether the backend served a request it was sent.
	Report(ok bool)
	// Retries is how many backends a request may try, and whether
	// idempotent requests that reached a failing backend are retried too.
	Retries() (attempts int, idempotent bool)
}

// pool balances requests over a group's backends and retries on another
// backend a request that never reached one.
type pool struct {
	members  []Member
	kind     string
	weights  []int // cumulative, for weighted
	total    int
	next     atomic.Uint64
	attempts int
	// idempotent also retries idempotent requests that reached a backend
	// which then failed without a response.
	idempotent bool
}

// newPool balances over members (at least one), with the first one's
// balancer and retry settings, which are the group's.
func newPool(members []Member) *pool {
	attempts, idem := members[0].Retries()
	p := &pool{members: members, kind: members[0].Balancer(), attempts: max(1, attempts), idempotent: idem}
	for _, m := range members {
		p.total += max(1, m.Weight())
		p.weights = append(p.weights, p.total)
	}
	return p
}

// start is where the balancer begins looking for a backend.
func (p *pool) start() int {
	if len(p.members) == 1 {
		return 0
	}
	switch p.kind {
	case "random":
		return rand.IntN(len(p.members))
	case "weighted":
		n := rand.IntN(p.total)
		for i, w := range p.weights {
			if n < w {
				return i
			}
		}
	}
	return int(p.next.Add(1) % uint64(len(p.members)))
}

// pick returns the first available backend from the balancer's choice on,
// skipping those already tried; with none available it takes the
// balancer's choice anyway (better a try than a certain failure).
func (p *pool) pick(tried []Member) Member {
	n := len(p.members)
	first := p.start()
	var fallback Member
	for i := range n {
		m := p.members[(first+i)%n]
		if contains(tried, m) {
			continue
		}
		if fallback == nil {
			fallback = m
		}
		if m.Available() {
			return m
		}
	}
	return fallback
}

func contains(ms []Member, m Member) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// relPathKey carries the path below the listener prefix to the transport.
type relPathKey struct{}

// RoundTrip sends the request to a backend of the pool, moving on to
// another when it could not be delivered (and, for idempotent requests when
// configured, when no response came).
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	rel, _ := req.Context().Value(relPathKey{}).(string)
	var tried []Member
	var lastErr error
	for attempt := 0; attempt < p.attempts; attempt++ {
		m := p.pick(tried)
		if m == nil {
			break
		}
		tried = append(tried, m)
		out := req.Clone(req.Context())
		target := m.Target()
		out.URL = &url.URL{Scheme: target.Scheme, Host: target.Host, Path: joinPath(target.Path, rel), RawQuery: req.URL.RawQuery}
		out.Host = ""
		if attempt > 0 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				break // the body was sent once and cannot be sent again
			}
			body, err := req.GetBody()
			if err != nil {
				break
			}
			out.Body = body
		}
		resp, err := m.Transport().RoundTrip(out)
		if err == nil {
			m.Report(resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable &&
				resp.StatusCode != http.StatusGatewayTimeout)
			return resp, nil
		}
		if req.Context().Err() != nil {
			return nil, err // the client left: not the backend's fault
		}
		m.Report(false)
		lastErr = err
		if !p.mayRetry(neverSent(err), req.Method, true) { // GetBody resends a body
			break
		}
	}
	return nil, lastErr
}

// neverSent reports whether err means the request never reached the
// backend: the connection could not be made, so another backend may take
// it whatever the method.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// mayRetry reports whether a request that failed on one backend may go to
// another: always when it never reached the first; when it may have, only
// if the group retries idempotent requests, the method is one, and the
// body (if any) can be sent again.
func (p *pool) mayRetry(neverSent bool, method string, bodyAgain bool) bool {
	return neverSent || (bodyAgain && p.idempotent && idempotent(method))
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}
