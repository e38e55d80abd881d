package solace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/sluicegw/sluice/mediation"
)

// Options are the non-configuration parameters of New.
type Options struct {
	// Logger receives connection events; slog.Default() when nil.
	Logger *slog.Logger
	// Name prefixes the AMQP container id of the gateway's connections,
	// which Solace shows as the client name; "sluice" when empty. A random
	// suffix keeps it unique per connection: Solace disconnects a client
	// whose name another connection takes.
	Name string
}

// Endpoint is an AMQP 1.0 connector to Solace PubSub+ (or any broker that
// speaks AMQP 1.0 with the chosen addressing). It keeps two connections,
// opened and reopened by itself: one for publishing, with one sender link
// shared by every publish, and one for consuming, with a session per
// subscription. Separate connections keep a slow publish from stalling
// deliveries and settlements.
type Endpoint struct {
	cfg     Config
	log     *slog.Logger
	caps    mediation.Capabilities
	dialer  *dialer
	sources []string

	pub *publisher // nil when the endpoint cannot publish

	mu      sync.Mutex
	consume *keeper        // opened by the first Subscribe
	subs    sync.WaitGroup // subscription goroutines; Add under mu
	closed  atomic.Bool    // set under mu
}

// New returns an endpoint for cfg, which must pass Validate. When the
// endpoint can publish it starts connecting at once, in the background: a
// broker that is down is retried, not reported here. The consuming
// connection is opened by the first Subscribe.
func New(cfg *Config, opts Options) (*Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Name == "" {
		opts.Name = "sluice"
	}
	d, err := newDialer(cfg, opts.Name)
	if err != nil {
		return nil, err
	}
	sources, _ := cfg.sources() // checked by Validate
	target, _ := cfg.target()
	e := &Endpoint{
		cfg:     *cfg,
		log:     opts.Logger,
		caps:    cfg.Capabilities(),
		dialer:  d,
		sources: sources,
	}
	if e.caps.Publish {
		e.pub = newPublisher(e, newKeeper(d, cfg.Reconnect, e.log.With("connection", "publish")), target)
	}
	return e, nil
}

// startSubscription returns the consuming connection's keeper, starting it
// on first use, and counts a subscription goroutine that Close waits for.
func (e *Endpoint) startSubscription() (*keeper, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return nil, fmt.Errorf("solace: subscribe: %w", mediation.ErrClosed)
	}
	if e.consume == nil {
		e.consume = newKeeper(e.dialer, e.cfg.Reconnect, e.log.With("connection", "consume"))
	}
	e.subs.Add(1)
	return e.consume, nil
}

// Capabilities says what the endpoint can do; it does not change.
func (e *Endpoint) Capabilities() mediation.Capabilities { return e.caps }

// Close stops publishing and reconnecting and closes both connections,
// politely until ctx ends. Subscriptions should be closed first; those still
// open end with mediation.ErrClosed.
func (e *Endpoint) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed.Load() {
		e.mu.Unlock()
		return nil
	}
	e.closed.Store(true)
	consume := e.consume
	e.mu.Unlock()

	var errs []error
	if e.pub != nil {
		errs = append(errs, e.pub.close(ctx))
	}
	if consume != nil {
		errs = append(errs, consume.close(ctx))
		done := make(chan struct{})
		go func() { e.subs.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("solace: waiting for subscriptions to end: %w", ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// Interface guards.
var _ mediation.Endpoint = (*Endpoint)(nil)
