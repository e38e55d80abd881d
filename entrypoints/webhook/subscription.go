package webhook

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/sluicegw/sluice/entrypoints/webhook/delivery"
)

// Subscription is one consumer's registration: where and how its messages
// are delivered.
type Subscription struct {
	// ID names the subscription and its durable position on the broker.
	ID string
	// CallbackURL receives one POST per message.
	CallbackURL string
	// Headers are added to every delivery.
	Headers map[string]string
	// Secret signs every delivery (Standard Webhooks, "whsec_...").
	Secret string
	// Retry bounds the redelivery of one message.
	Retry Retry
	// MaxConcurrentDeliveries, above 1, delivers that many messages at once,
	// keeping order among messages of the same key; 0 or 1 delivers strictly
	// in order.
	MaxConcurrentDeliveries int
}

// Retry bounds the redelivery of one message to a subscription.
type Retry struct {
	// MaxAttempts counts every attempt, the first included. Default 10.
	MaxAttempts int
	// InitialDelay is the wait before the first retry. Default 1s.
	InitialDelay time.Duration
	// MaxDelay caps every wait, a callback's Retry-After included. Default 1m.
	MaxDelay time.Duration
}

// Limits on what a subscriber may ask for, so that one subscription cannot
// hold a message for days or open hundreds of connections.
const (
	MaxAttemptsLimit             = 100
	MaxDelayLimit                = time.Hour
	MaxConcurrentDeliveriesLimit = 64
)

// DefaultRetry is used for the zero fields of a subscription's Retry.
var DefaultRetry = Retry{MaxAttempts: 10, InitialDelay: time.Second, MaxDelay: time.Minute}

// WithDefaults returns r with its zero fields set from DefaultRetry.
func (r Retry) WithDefaults() Retry {
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultRetry.MaxAttempts
	}
	if r.InitialDelay == 0 {
		r.InitialDelay = DefaultRetry.InitialDelay
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = max(DefaultRetry.MaxDelay, r.InitialDelay)
	}
	return r
}

// Check validates a subscription as a subscriber wrote it, before its
// defaults are set: the callback URL (and, through guard, the addresses its
// host resolves to now; the dial-time check applies to every delivery
// later), headers, secret and limits. The error is meant for the
// subscriber.
func (s *Subscription) Check(ctx context.Context, guard delivery.Guard) error {
	if s.CallbackURL == "" {
		return fmt.Errorf("configuration.callbackUrl is required")
	}
	u, err := url.Parse(s.CallbackURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("configuration.callbackUrl %q: want an absolute http:// or https:// URL", s.CallbackURL)
	}
	if err := guard.CheckResolved(ctx, s.CallbackURL); err != nil {
		return fmt.Errorf("configuration.callbackUrl: %w", err)
	}
	if err := delivery.ValidateHeaders(s.Headers); err != nil {
		return fmt.Errorf("configuration.headers: %w", err)
	}
	if s.Secret != "" {
		if err := delivery.ValidateSecret(s.Secret); err != nil {
			return fmt.Errorf("configuration.secret: %w", err)
		}
	}
	r := s.Retry
	switch {
	case r.MaxAttempts < 0 || r.MaxAttempts > MaxAttemptsLimit:
		return fmt.Errorf("configuration.retry.maxAttempts: want 1 to %d (0 for the default), got %d", MaxAttemptsLimit, r.MaxAttempts)
	case r.InitialDelay < 0 || r.InitialDelay > MaxDelayLimit:
		return fmt.Errorf("configuration.retry.initialDelay: want 0 to %s, got %s", MaxDelayLimit, r.InitialDelay)
	case r.MaxDelay < 0 || r.MaxDelay > MaxDelayLimit:
		return fmt.Errorf("configuration.retry.maxDelay: want 0 to %s, got %s", MaxDelayLimit, r.MaxDelay)
	case r.MaxDelay > 0 && r.MaxDelay < r.InitialDelay:
		return fmt.Errorf("configuration.retry.maxDelay (%s) must not be below initialDelay (%s)", r.MaxDelay, r.InitialDelay)
	}
	if n := s.MaxConcurrentDeliveries; n < 0 || n > MaxConcurrentDeliveriesLimit {
		return fmt.Errorf("configuration.maxConcurrentDeliveries: want 1 to %d (0 or 1 delivers in order), got %d", MaxConcurrentDeliveriesLimit, n)
	}
	return nil
}
