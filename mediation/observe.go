package mediation

// Counter and Gauge are the metric shapes the engine updates on the message
// path; prometheus.Counter and prometheus.Gauge satisfy them.
type (
	Counter interface{ Inc() }
	Gauge   interface {
		Inc()
		Dec()
	}
)

// Meter gives the metrics of one API entrypoint, resolved once per binding so
// that the message path never looks up label values.
type Meter interface {
	Entrypoint(api, entrypoint string) EntrypointMetrics
}

// EntrypointMetrics are the per-API, per-entrypoint metrics.
type EntrypointMetrics struct {
	MessagesIn  Counter // client → broker, confirmed
	MessagesOut Counter // broker → client, delivered
	Dropped     Counter // dropped by the slow-consumer policy
	Errors      Counter // publish failures, stream failures
	Streams     Gauge   // open subscriptions
}

type nopMetric struct{}

func (nopMetric) Inc() {}
func (nopMetric) Dec() {}

// NopMeter discards every measurement.
type NopMeter struct{}

func (NopMeter) Entrypoint(string, string) EntrypointMetrics {
	n := nopMetric{}
	return EntrypointMetrics{MessagesIn: n, MessagesOut: n, Dropped: n, Errors: n, Streams: n}
}
