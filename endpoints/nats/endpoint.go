package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/mediation"
)

// Endpoint is a NATS connector. One connection serves every publish and
// subscription of the endpoint; NATS multiplexes subscriptions on it, and
// the client library reconnects it (and resubscribes) by itself.
type Endpoint struct {
	cfg  Config
	log  *slog.Logger
	caps mediation.Capabilities
	nc   *nats.Conn
	js   jetstream.JetStream

	// reconnected is fired every time the connection is re-established, so
	// that JetStream readers re-issue their pull requests at once instead of
	// waiting for a missed heartbeat.
	reconnected broadcast
	closed      atomic.Bool
}

// New returns an endpoint for cfg, which must pass Validate. It starts
// connecting but does not wait for the server: an unreachable server makes
// publishes and subscriptions fail with mediation.ErrUnavailable until it
// is reachable, and the gateway starts anyway.
func New(cfg *Config, logger *slog.Logger) (*Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	e := &Endpoint{cfg: *cfg, log: logger, caps: cfg.Capabilities()}
	e.reconnected.init()
	opts, err := e.options()
	if err != nil {
		return nil, err
	}
	e.nc, err = nats.Connect(strings.Join(cfg.Servers, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	e.js, err = jetstream.New(e.nc)
	if err != nil {
		e.nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	return e, nil
}

// options are the connection options. Reconnection never gives up, and
// nothing is buffered while disconnected: a publish then fails at once with
// ErrUnavailable (HTTP 503) instead of being sent later, after its client
// was told it failed.
func (e *Endpoint) options() ([]nats.Option, error) {
	c := e.cfg
	opts := []nats.Option{
		nats.Name("sluice"),
		nats.Timeout(time.Duration(c.ConnectTimeout)),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Duration(c.ReconnectWait)),
		nats.ReconnectBufSize(-1),
		// A synchronous subscription queues at most what the pending
		// limits allow (set per subscription), not the default 64k slots.
		nats.SyncQueueLen(c.Consumer.BufferMessages),
		// A subject the credentials may not read fails the subscription
		// rather than leaving it silent.
		nats.PermissionErrOnSubscribe(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil && !e.closed.Load() {
				e.log.Warn("nats: disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			e.log.Info("nats: connected", "server", nc.ConnectedUrlRedacted())
			e.reconnected.fire()
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			e.log.Debug("nats: connected", "server", nc.ConnectedUrlRedacted())
			e.reconnected.fire()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				e.log.Warn("nats: subscription error", "subject", sub.Subject, "err", err)
				return
			}
			e.log.Warn("nats: connection error", "err", err)
		}),
	}
	cr := c.Credentials
	switch {
	case cr.User != "":
		opts = append(opts, nats.UserInfo(cr.User, cr.Password))
	case cr.Token != "":
		opts = append(opts, nats.Token(cr.Token))
	case cr.CredsFile != "":
		// Read now, so that a missing file is reported when the endpoint
		// is created rather than on every connection attempt.
		if _, err := os.Stat(cr.CredsFile); err != nil {
			return nil, fmt.Errorf("credentials.credsFile: %w", err)
		}
		opts = append(opts, nats.UserCredentials(cr.CredsFile))
	}
	return opts, nil
}

// Capabilities says what the endpoint can do; it does not change.
func (e *Endpoint) Capabilities() mediation.Capabilities { return e.caps }

// Subscribe opens a subscription: on the core NATS subject, or on the
// JetStream stream when consumer.stream is set (with a durable consumer
// when req.Group is set, an ephemeral one otherwise).
func (e *Endpoint) Subscribe(ctx context.Context, req mediation.SubscribeRequest) (mediation.Subscription, error) {
	if e.closed.Load() {
		return nil, fmt.Errorf("nats: subscribe: %w", mediation.ErrClosed)
	}
	if !e.caps.Subscribe {
		return nil, fmt.Errorf("nats: subscribe: no consumer.subject or consumer.stream configured: %w", mediation.ErrUnsupported)
	}
	if err := e.checkConnected("subscribe"); err != nil {
		return nil, err
	}
	// Typed results are checked here so that a failure is a nil interface,
	// not an interface holding a nil pointer.
	if !e.cfg.JetStream() {
		s, err := e.subscribeCore(ctx, req)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := e.subscribeJetStream(ctx, req)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Close sends what the connection still buffers (acknowledgements of group
// subscriptions; every publish was confirmed already) until ctx ends, and
// closes the connection. Subscriptions must be closed first. Idempotent.
func (e *Endpoint) Close(ctx context.Context) error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	if e.nc.IsConnected() {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(e.cfg.PublishTimeout))
			defer cancel()
		}
		// Best effort: what it would send is redelivered anyway.
		if err := e.nc.FlushWithContext(ctx); err != nil {
			e.log.Debug("nats: flush on close", "err", err)
		}
	}
	e.nc.Close()
	return nil
}

// checkConnected fails fast while the connection is down (or not up yet):
// nothing is buffered for later, so waiting could only end in a timeout.
func (e *Endpoint) checkConnected(what string) error {
	if e.nc.IsConnected() {
		return nil
	}
	return unavailable(what, fmt.Errorf("not connected to %s (status %s)", strings.Join(e.cfg.Servers, ", "), e.nc.Status()))
}

// requestContext bounds a JetStream API request by requestTimeout as well
// as ctx.
func (e *Endpoint) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, time.Duration(e.cfg.RequestTimeout))
}

// unavailable wraps a server failure so that entrypoints answer 503.
func unavailable(what string, err error) error {
	return fmt.Errorf("nats: %s: %w: %w", what, mediation.ErrUnavailable, err)
}

// isConnectionError reports errors that a reconnection cures.
func isConnectionError(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrStaleConnection) ||
		errors.Is(err, nats.ErrConnectionDraining)
}

// broadcast wakes every waiter each time it fires.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) init() { b.ch = make(chan struct{}) }

// wait returns a channel closed by the next fire.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

// Interface guards.
var _ mediation.Endpoint = (*Endpoint)(nil)
