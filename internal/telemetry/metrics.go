// Package telemetry holds the gateway's Prometheus metrics and its logger.
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicegw/sluice/entrypoints/webhook"
	"github.com/sluicegw/sluice/mediation"
)

// Metrics are the gateway's Prometheus collectors, on a registry of their
// own so that tests and several gateways in one process do not collide.
type Metrics struct {
	Registry *prometheus.Registry

	Requests    *prometheus.CounterVec // sluice_http_requests_total{api, code}
	MessagesIn  *prometheus.CounterVec // sluice_messages_in_total{api, entrypoint}
	MessagesOut *prometheus.CounterVec // sluice_messages_out_total{api, entrypoint}
	Dropped     *prometheus.CounterVec // sluice_messages_dropped_total{api, entrypoint}
	Errors      *prometheus.CounterVec // sluice_errors_total{api, entrypoint}
	Streams     *prometheus.GaugeVec   // sluice_open_streams{api, entrypoint}

	// Webhooks counts webhook outcomes: delivered, retried, dead_lettered,
	// and stopped (subscriptions that turned failed or gone).
	Webhooks *prometheus.CounterVec // sluice_webhook_deliveries_total{api, outcome}

	requestCounters
}

// NewMetrics creates and registers the collectors, plus the Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	labels := []string{"api", "entrypoint"}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_requests_total", Help: "HTTP requests answered, by API and status code.",
		}, []string{"api", "code"}),
		MessagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_messages_in_total", Help: "Messages published by clients and confirmed by the broker.",
		}, labels),
		MessagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_messages_out_total", Help: "Messages delivered to clients.",
		}, labels),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_messages_dropped_total", Help: "Messages dropped or clients cut off by the slow-consumer policy.",
		}, labels),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_errors_total", Help: "Publish and stream failures.",
		}, labels),
		Streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_open_streams", Help: "Client streams open now.",
		}, labels),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_webhook_deliveries_total",
			Help: "Webhook outcomes: delivered, retried, dead_lettered, and stopped subscriptions.",
		}, []string{"api", "outcome"}),
	}
	m.requestCounters.init()
	m.Registry.MustRegister(m.Requests, m.MessagesIn, m.MessagesOut, m.Dropped, m.Errors, m.Streams, m.Webhooks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Entrypoint implements mediation.Meter: label values are resolved once per
// API entrypoint, never per message.
func (m *Metrics) Entrypoint(api, entrypoint string) mediation.EntrypointMetrics {
	return mediation.EntrypointMetrics{
		MessagesIn:  m.MessagesIn.WithLabelValues(api, entrypoint),
		MessagesOut: m.MessagesOut.WithLabelValues(api, entrypoint),
		Dropped:     m.Dropped.WithLabelValues(api, entrypoint),
		Errors:      m.Errors.WithLabelValues(api, entrypoint),
		Streams:     m.Streams.WithLabelValues(api, entrypoint),
	}
}

// Webhook returns the counters of one API's webhook runners.
func (m *Metrics) Webhook(api string) *webhook.Metrics {
	return &webhook.Metrics{
		Delivered:    m.Webhooks.WithLabelValues(api, "delivered"),
		Retried:      m.Webhooks.WithLabelValues(api, "retried"),
		DeadLettered: m.Webhooks.WithLabelValues(api, "dead_lettered"),
		Failed:       m.Webhooks.WithLabelValues(api, "stopped"),
	}
}

var _ mediation.Meter = (*Metrics)(nil)
