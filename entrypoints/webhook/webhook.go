// Package webhook is the `webhook` entrypoint of subscription listeners:
// every subscription made on a push plan receives the API's messages as
// signed HTTP POSTs to its callback URL, at least once.
//
// The entrypoint itself holds only the listener's settings; the work is done
// by one Runner per subscription, which the gateway starts when the
// subscription is created (or at start-up, for stored ones) and stops when
// it is deleted, fails or the API drains. A Runner reads the API's endpoint
// on a durable position of its own (the consumer group named after the
// subscription id: a Kafka consumer group, a durable RabbitMQ queue, a
// JetStream durable consumer, an MQTT shared subscription) and commits a
// message only after the callback answered 2xx or the message went to the
// dead-letter queue. See Runner for the delivery rules and package delivery
// for signatures, the SSRF guard and back-off.
package webhook

import (
	"net/http"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type:       "webhook",
		Listener:   "subscription",
		Operations: mediation.OpSubscribe,
		// A message is committed only after a 2xx or the DLQ, so the
		// endpoint must be able to hold a position until then.
		QoS:    []mediation.QoS{mediation.QoSAtLeastOnce},
		Config: func() any { c := DefaultConfig(); return &c },
		New: func(_ plugins.Context, cfg any) (mediation.Entrypoint, error) {
			return New(plugins.ConfigOr(cfg, DefaultConfig))
		},
	})
}

// Config configures the webhook entrypoint of an API. Per-subscription
// settings (callback URL, headers, secret, retry limits) belong to the
// subscriptions made through the management API.
type Config struct {
	// RequestTimeout bounds one delivery attempt, from dialing the callback
	// to reading its answer; an attempt that takes longer is retried.
	// Default 10s; at least 100ms.
	RequestTimeout time.Duration `yaml:"requestTimeout"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config { return Config{RequestTimeout: 10 * time.Second} }

const minRequestTimeout = 100 * time.Millisecond

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.RequestTimeout < minRequestTimeout {
		return plugins.Errorf("requestTimeout", "must be at least %s, got %s", minRequestTimeout, c.RequestTimeout)
	}
	return nil
}

// Entrypoint is the webhook entrypoint of one API.
type Entrypoint struct {
	cfg Config
}

// New returns a webhook entrypoint for cfg, or the configuration's problem.
func New(cfg Config) (*Entrypoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Entrypoint{cfg: cfg}, nil
}

// Config returns the entrypoint's configuration.
func (e *Entrypoint) Config() Config { return e.cfg }

// Accepts takes no HTTP request: subscription listeners have no paths.
func (e *Entrypoint) Accepts(*http.Request) bool { return false }

// Operations is subscribe only.
func (e *Entrypoint) Operations() mediation.Operation { return mediation.OpSubscribe }

// Serve answers 404: webhook subscriptions are pushed to, not requested.
func (e *Entrypoint) Serve(w http.ResponseWriter, r *http.Request, _ *mediation.Exchange) {
	mediation.WriteProblem(w, http.StatusNotFound, "Webhook subscriptions are made through the management API",
		"POST /v1/apis/{id}/subscriptions on the admin listener", nil)
}

var _ mediation.Entrypoint = (*Entrypoint)(nil)
