// Package webhook declares the `webhook` entrypoint of subscription
// listeners, so that configurations using it validate. Delivery itself —
// subscriptions made through the management API, signed POSTs, retries, the
// dead-letter queue — is not in this build yet: the gateway logs that a
// subscription listener is not served, and no subscription can be created.
package webhook

import (
	"errors"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type:       "webhook",
		Listener:   "subscription",
		Operations: mediation.OpSubscribe,
		QoS:        mediation.AllQoS,
		Config:     func() any { return &Config{} },
		New: func(plugins.Context, any) (mediation.Entrypoint, error) {
			return nil, errUnavailable
		},
	})
}

// Config is the webhook entrypoint's configuration; per-subscription
// settings (callback URL, headers, secret, retry) belong to subscriptions.
type Config struct{}

var errUnavailable = errors.New("webhook delivery is not available in this build yet")
