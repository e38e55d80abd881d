package httpproxy

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// health is a backend's availability: the verdict of active checks, and a
// circuit breaker fed by the requests it served. Reads are lock-free: the
// balancer asks on every request.
type health struct {
	down        atomic.Bool     // active checks found it unhealthy
	openUntil   atomic.Int64    // breaker open until this UnixNano; 0 closed
	probeAt     atomic.Int64    // UnixNano a half-open probe request began; 0 none
	failures    atomic.Int32    // consecutive failed requests
	stopCtx     context.Context // ends the checks and any probe under way
	cancelStop  context.CancelFunc
	checks      sync.WaitGroup
	now         func() time.Time
	probeClient *http.Client
}

func (h *health) init() {
	h.stopCtx, h.cancelStop = context.WithCancel(context.Background())
	h.now = time.Now
}

// Available reports whether a request may go to the backend now: it passes
// its health checks and its breaker is closed, or half-open with no probe
// under way — then the caller's request is the probe, so ask only about the
// backend the request will really be sent to.
func (e *Endpoint) Available() bool {
	if e.down.Load() {
		return false
	}
	until := e.openUntil.Load()
	if until == 0 {
		return true
	}
	if e.now().UnixNano() < until {
		return false
	}
	// Half-open: one request probes. A probe whose outcome never came back
	// (its client left) gives way to another after a cooldown.
	now := e.now().UnixNano()
	began := e.probeAt.Load()
	if began != 0 && now-began < int64(e.cfg.CircuitBreaker.Cooldown) {
		return false
	}
	return e.probeAt.CompareAndSwap(began, now)
}

// Report records the outcome of a request the backend was sent: ok is false
// for a connection failure or a 502, 503 or 504. Enough failures in a row
// open the breaker for the cooldown; a success closes it.
func (e *Endpoint) Report(ok bool) {
	cb := e.cfg.CircuitBreaker
	if ok {
		if e.failures.Load() != 0 { // read first: a store per request would bounce the line between cores
			e.failures.Store(0)
		}
		if e.openUntil.Load() != 0 {
			e.openUntil.Store(0)
			e.probeAt.Store(0)
			e.log.Info("backend back: circuit breaker closed", "target", e.target.String())
		}
		return
	}
	if cb.Failures <= 0 {
		return
	}
	n := e.failures.Add(1)
	if int(n) >= cb.Failures || e.openUntil.Load() != 0 {
		// Opening, or a failed half-open probe reopening it.
		e.openUntil.Store(e.now().Add(cb.Cooldown).UnixNano())
		e.probeAt.Store(0)
		if int(n) == cb.Failures {
			e.log.Warn("backend failing: circuit breaker open", "target", e.target.String(), "failures", n, "cooldown", cb.Cooldown)
		}
	}
}

// startHealthChecks probes the backend every interval when a path is set.
func (e *Endpoint) startHealthChecks() {
	hc := e.cfg.HealthCheck
	if hc.Path == "" {
		return
	}
	e.probeClient = &http.Client{
		Transport: e.transport, Timeout: hc.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	u := *e.target
	u.Path, u.RawQuery = hc.Path, ""
	probe := u.String()
	e.checks.Go(func() {
		t := time.NewTicker(hc.Interval)
		defer t.Stop()
		good, bad := 0, 0
		for {
			if e.probe(probe) {
				good, bad = good+1, 0
				if good >= hc.HealthyAfter && e.down.CompareAndSwap(true, false) {
					e.log.Info("backend healthy again", "target", e.target.String())
				}
			} else {
				good, bad = 0, bad+1
				if bad >= hc.UnhealthyAfter && e.down.CompareAndSwap(false, true) {
					e.log.Warn("backend unhealthy: taken out of rotation", "target", e.target.String(), "probe", probe)
				}
			}
			select {
			case <-e.stopCtx.Done():
				return
			case <-t.C:
			}
		}
	})
}

func (e *Endpoint) probe(url string) bool {
	req, _ := http.NewRequestWithContext(e.stopCtx, http.MethodGet, url, nil)
	req.Header.Set("User-Agent", "sluice-health-check")
	resp, err := e.probeClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

func (e *Endpoint) stopHealthChecks() {
	e.cancelStop()
	e.checks.Wait()
}
