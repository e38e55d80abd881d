// Package mock is the `mock` endpoint: a generator of messages at a fixed
// interval, like Gravitee's mock endpoint, for trying an API without a broker.
//
// Every subscriber reads the same deterministic sequence 0, 1, 2, ... (up to
// messageCount when set) paced by messageInterval, so a cursor (the sequence
// number) resumes exactly. Published messages are accepted and discarded.
package mock

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEndpoint(plugins.EndpointPlugin{
		Type: "mock",
		Config: func() any {
			return &Config{MessageInterval: plugins.Duration(time.Second), MessageContent: "mock message"}
		},
		Capabilities: func(any) mediation.Capabilities { return capabilities },
		New: func(_ plugins.Context, cfg any) (mediation.Endpoint, error) {
			return &Endpoint{cfg: *cfg.(*Config)}, nil
		},
	})
}

var capabilities = mediation.Capabilities{
	Publish: true, Subscribe: true, Replay: true, QoS: mediation.AllQoS,
	DefaultStart: mediation.StartEarliest,
}

// stream is the name of the mock's single partition in cursors.
const stream = "mock"

// Config configures the mock endpoint.
type Config struct {
	// MessageInterval is the pause between two generated messages. Default 1s.
	MessageInterval plugins.Duration `yaml:"messageInterval"`
	// MessageContent is the content of every message. Default "mock message".
	MessageContent string `yaml:"messageContent"`
	// MessageCount stops the sequence after this many messages; 0 is endless.
	MessageCount int64 `yaml:"messageCount"`
	// Headers are added to every message.
	Headers map[string]string `yaml:"headers"`
	// Metadata is added to every message's metadata.
	Metadata map[string]string `yaml:"metadata"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MessageInterval < 0 {
		return plugins.Errorf("messageInterval", "must not be negative")
	}
	if c.MessageCount < 0 {
		return plugins.Errorf("messageCount", "must not be negative")
	}
	return nil
}

// Endpoint generates messages; it is safe for concurrent use.
type Endpoint struct {
	cfg       Config
	published atomic.Int64
}

// Publish accepts and discards msg.
func (e *Endpoint) Publish(ctx context.Context, _ *mediation.Message) error {
	e.published.Add(1)
	return ctx.Err()
}

// Published returns how many messages were published, for tests.
func (e *Endpoint) Published() int64 { return e.published.Load() }

// Capabilities implements mediation.Endpoint.
func (e *Endpoint) Capabilities() mediation.Capabilities { return capabilities }

// Subscribe starts the sequence at 0 (earliest, latest) or after a cursor.
// Consumer groups are not supported.
func (e *Endpoint) Subscribe(_ context.Context, req mediation.SubscribeRequest) (mediation.Subscription, error) {
	if req.Group != "" {
		// A generator has no place to keep a group's committed position.
		return nil, fmt.Errorf("mock: consumer groups: %w", mediation.ErrUnsupported)
	}
	var next int64
	if req.Start == mediation.StartCursor {
		for _, p := range req.Cursor.Positions() {
			if p.Stream != stream || p.Partition != 0 {
				return nil, fmt.Errorf("%w: position %s/%d is not a mock sequence", mediation.ErrBadCursor, p.Stream, p.Partition)
			}
			next = p.Offset
		}
	}
	return &subscription{cfg: &e.cfg, next: next, closed: make(chan struct{})}, nil
}

// Close implements mediation.Endpoint.
func (e *Endpoint) Close(context.Context) error { return nil }

type subscription struct {
	cfg       *Config
	next      int64
	last      time.Time
	closeOnce sync.Once
	closed    chan struct{}
}

func (s *subscription) Start() mediation.Cursor {
	return mediation.NewCursor(mediation.Position{Stream: stream, Offset: s.next})
}

// Next waits for the interval, then yields the next message of the sequence;
// after messageCount messages it blocks until ctx ends or Close.
func (s *subscription) Next(ctx context.Context) (*mediation.Message, error) {
	if s.cfg.MessageCount > 0 && s.next >= s.cfg.MessageCount {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.closed:
			return nil, mediation.ErrClosed
		}
	}
	if wait := time.Until(s.last.Add(time.Duration(s.cfg.MessageInterval))); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.closed:
			return nil, mediation.ErrClosed
		}
	}
	select {
	case <-s.closed:
		return nil, mediation.ErrClosed
	default:
	}
	s.last = time.Now()
	n := s.next
	s.next++
	m := &mediation.Message{
		ID:        strconv.FormatInt(n, 10),
		Content:   []byte(s.cfg.MessageContent),
		Headers:   make(mediation.Headers, len(s.cfg.Headers)),
		Metadata:  map[string]string{"sequence": strconv.FormatInt(n, 10)},
		Timestamp: s.last,
		Position:  mediation.Position{Stream: stream, Offset: n},
	}
	for k, v := range s.cfg.Headers {
		m.Headers.Set(k, v)
	}
	for k, v := range s.cfg.Metadata {
		m.Metadata[k] = v
	}
	return m, nil
}

func (s *subscription) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// Interface guards.
var (
	_ mediation.Endpoint     = (*Endpoint)(nil)
	_ mediation.Subscription = (*subscription)(nil)
	_ plugins.Validator      = (*Config)(nil)
)
