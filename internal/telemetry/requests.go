package telemetry

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// CountRequest adds one to sluice_http_requests_total{api, code}; status 0
// (nothing written: the client left) is code "000". It is on every
// request's path, so it looks the counter up in a copy-on-write map instead
// of hashing the labels each time as WithLabelValues does.
func (m *Metrics) CountRequest(api string, status int) {
	key := requestKey{api, status}
	if c, ok := (*m.requests.Load())[key]; ok {
		c.Inc()
		return
	}
	m.requestsMu.Lock()
	old := *m.requests.Load()
	c, ok := old[key]
	if !ok {
		c = m.Requests.WithLabelValues(api, codeLabel(status))
		next := make(map[requestKey]prometheus.Counter, len(old)+1)
		for k, v := range old {
			next[k] = v
		}
		next[key] = c
		m.requests.Store(&next)
	}
	m.requestsMu.Unlock()
	c.Inc()
}

type requestKey struct {
	api    string
	status int
}

// requestCounters caches Requests' children for CountRequest.
type requestCounters struct {
	requestsMu sync.Mutex // orders the copies
	requests   atomic.Pointer[map[requestKey]prometheus.Counter]
}

func (r *requestCounters) init() {
	empty := map[requestKey]prometheus.Counter{}
	r.requests.Store(&empty)
}

func codeLabel(status int) string {
	if status == 0 {
		return "000"
	}
	return strconv.Itoa(status)
}
