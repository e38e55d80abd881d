// Package ticker is an example third-party Sluice plugin, written by
// following plugins/README.md: endpoint type "ticker", whose subscriptions
// yield a numbered message every interval. It has no broker, which keeps
// the example about the plugin contract: a configuration with defaults and
// Validate, Capabilities, an Endpoint, its Subscriptions, and one
// registration line in init.
package ticker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// init registers the endpoint type: importing the package (a blank import
// in the gateway's main) is all it takes.
func init() {
	plugins.RegisterEndpoint(plugins.TypedEndpoint("ticker", DefaultConfig, New))
}

// Config is the endpoint's sharedConfiguration. Every field is documented
// where it is declared, with its default.
type Config struct {
	// Message is the content of every tick; "{n}" becomes its number,
	// from 0. Default "tick {n}".
	Message string `yaml:"message"`
	// Interval is the time between ticks. "0s" ticks as fast as clients
	// read. Default 1s.
	Interval plugins.Duration `yaml:"interval"`
}

// DefaultConfig returns a configuration with every default set; the
// gateway decodes the file's keys on top of it, strictly.
func DefaultConfig() *Config {
	return &Config{Message: "tick {n}", Interval: plugins.Duration(time.Second)}
}

// Validate runs after decoding and before New: each problem is a
// *plugins.FieldError, which the gateway reports as file:line:col.
func (c *Config) Validate() error {
	var errs []error
	if c.Message == "" {
		errs = append(errs, plugins.Errorf("message", "must not be empty"))
	}
	if c.Interval < 0 {
		errs = append(errs, plugins.Errorf("interval", "must not be negative"))
	}
	return errors.Join(errs...)
}

// Capabilities says what an endpoint so configured can do, without
// starting it, so that the gateway refuses impossible pairs at load time
// (an http-post entrypoint, an at-least-once SSE client).
func (c *Config) Capabilities() mediation.Capabilities {
	return mediation.Capabilities{
		Subscribe:    true,
		QoS:          []mediation.QoS{mediation.QoSNone, mediation.QoSAuto, mediation.QoSAtMostOnce},
		QoSNote:      "ticks are made up when read: there is nothing to deliver again",
		DefaultStart: mediation.StartLatest,
	}
}

// Endpoint is one configured ticker, shared by every client of its API.
type Endpoint struct{ cfg Config }

// New receives the decoded, validated configuration. A real connector
// starts connecting here, in the background, and never fails because its
// broker is down.
func New(_ plugins.Context, cfg *Config) (mediation.Endpoint, error) {
	return &Endpoint{cfg: *cfg}, nil
}

// Publish is not supported: nothing receives what clients send.
func (e *Endpoint) Publish(context.Context, *mediation.Message) error {
	return fmt.Errorf("ticker: publish: %w", mediation.ErrUnsupported)
}

// Subscribe starts a sequence of ticks from 0.
func (e *Endpoint) Subscribe(_ context.Context, req mediation.SubscribeRequest) (mediation.Subscription, error) {
	if req.Start == mediation.StartCursor {
		return nil, fmt.Errorf("ticker: %w: ticks cannot be resumed", mediation.ErrBadCursor)
	}
	return &subscription{cfg: e.cfg, closed: make(chan struct{})}, nil
}

// Capabilities is what the endpoint can do.
func (e *Endpoint) Capabilities() mediation.Capabilities { return e.cfg.Capabilities() }

// Close releases nothing: the ticker holds no connection.
func (e *Endpoint) Close(context.Context) error { return nil }

type subscription struct {
	cfg    Config
	n      int // owned by Next's goroutine
	once   sync.Once
	closed chan struct{}
}

func (s *subscription) Start() mediation.Cursor { return mediation.Cursor{} }

// Next waits one interval and returns the next tick, or ctx's error, or
// mediation.ErrClosed after Close.
func (s *subscription) Next(ctx context.Context) (*mediation.Message, error) {
	select {
	case <-s.closed:
		return nil, mediation.ErrClosed
	default:
	}
	if d := time.Duration(s.cfg.Interval); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.closed:
			return nil, mediation.ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	m := mediation.NewMessage([]byte(strings.ReplaceAll(s.cfg.Message, "{n}", strconv.Itoa(s.n))))
	m.ID = strconv.Itoa(s.n)
	s.n++
	return m, nil
}

func (s *subscription) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// Interface guards.
var (
	_ mediation.Endpoint     = (*Endpoint)(nil)
	_ mediation.Subscription = (*subscription)(nil)
	_ plugins.Validator      = (*Config)(nil)
)
