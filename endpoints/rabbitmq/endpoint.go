package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/mediation"
)

// consumeWriteTimeout bounds a write on the consuming connection (acks,
// channel set-up): generous, as nothing waits on it but a broker that
// stopped reading.
const consumeWriteTimeout = 30 * time.Second

// Options are the non-configuration parameters of New.
type Options struct {
	// Logger receives connection events; slog.Default() when nil.
	Logger *slog.Logger
	// Name prefixes the connection names shown in the broker's management
	// UI; "sluice" when empty.
	Name string
}

// Endpoint is a RabbitMQ connector. It keeps two connections, opened and
// reopened by itself: one for publishing, with a single channel in confirm
// mode shared by every publish, and one for consuming, with a channel per
// subscription. Separate connections keep the broker's flow control on
// publishers from stalling deliveries and acknowledgements.
type Endpoint struct {
	cfg  Config
	log  *slog.Logger
	caps mediation.Capabilities
	url  string
	addr string
	name string

	pub *publisher // nil when the endpoint cannot publish

	mu      sync.Mutex
	consume *link          // opened by the first Subscribe
	subs    sync.WaitGroup // subscription goroutines; Add under mu
	nextSub atomic.Uint64

	closed atomic.Bool // set under mu
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
	uri, err := amqp.ParseURI(cfg.URL)
	if err != nil { // checked by Validate; never echo the URL: it has the password
		return nil, errors.New("rabbitmq: url: not an AMQP URL")
	}
	e := &Endpoint{
		cfg:  *cfg,
		log:  opts.Logger,
		caps: cfg.Capabilities(),
		url:  cfg.URL,
		addr: net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)),
		name: opts.Name,
	}
	if e.caps.Publish {
		e.pub = newPublisher(e, e.newLink("publish", time.Duration(cfg.PublishTimeout)))
	}
	return e, nil
}

func (e *Endpoint) newLink(role string, writeTimeout time.Duration) *link {
	return newLink(linkOptions{
		url:            e.url,
		addr:           e.addr,
		name:           e.name + " " + role,
		connectTimeout: time.Duration(e.cfg.ConnectTimeout),
		writeTimeout:   writeTimeout,
		reconnect:      e.cfg.Reconnect,
		log:            e.log,
	})
}

// startSubscription returns the consuming connection's link, opening it on
// first use, and counts a subscription goroutine that Close waits for.
func (e *Endpoint) startSubscription() (*link, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return nil, fmt.Errorf("rabbitmq: subscribe: %w", mediation.ErrClosed)
	}
	if e.consume == nil {
		e.consume = e.newLink("consume", consumeWriteTimeout)
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
			errs = append(errs, fmt.Errorf("rabbitmq: waiting for subscriptions to end: %w", ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// unavailable wraps a broker failure so that entrypoints answer 503.
func unavailable(what string, cause error) error {
	if cause == nil {
		return fmt.Errorf("rabbitmq: %s: %w", what, mediation.ErrUnavailable)
	}
	return fmt.Errorf("rabbitmq: %s: %w: %w", what, mediation.ErrUnavailable, cause)
}

// Interface guards.
var _ mediation.Endpoint = (*Endpoint)(nil)
