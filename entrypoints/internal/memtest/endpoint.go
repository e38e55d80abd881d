// Package memtest is an in-memory, replayable mediation.Endpoint and the
// helpers that mount an entrypoint behind a real loopback HTTP server, for the
// entrypoint tests and benchmarks.
//
// The endpoint is one log: stream "mem", partition 0, offsets 0, 1, 2, ...
// Publish appends, a subscription reads from its start position and blocks
// for new messages, and every ack or nack is recorded so tests can check
// what counted as delivered.
package memtest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// Stream is the stream name of every position the endpoint yields.
const Stream = "mem"

// Options configure New.
type Options struct {
	// DefaultStart is where a client without a cursor starts. The zero value
	// is mediation.StartLatest; tests that page through a preloaded log set
	// StartEarliest.
	DefaultStart mediation.StartKind
	// NoPublish and NoSubscribe remove a capability, for publish-only or
	// subscribe-only APIs.
	NoPublish, NoSubscribe bool
	// NoReplay makes a live-only source, like MQTT or core NATS: messages
	// carry no position, subscriptions start latest, cursors are refused.
	NoReplay bool
}

// Endpoint is the in-memory endpoint. Its methods are safe for concurrent use.
type Endpoint struct {
	caps     mediation.Capabilities
	noReplay bool

	mu          sync.Mutex
	log         []*mediation.Message
	changed     chan struct{} // closed on the next change; nil when nobody waits
	unavailable bool
	acked       []int32 // per offset
	nacked      []int32
	open        int // open subscriptions
	closed      bool
}

// New returns an empty endpoint.
func New(o Options) *Endpoint {
	return &Endpoint{
		caps: mediation.Capabilities{
			Publish: !o.NoPublish, Subscribe: !o.NoSubscribe, Replay: !o.NoReplay,
			QoS: mediation.AllQoS, DefaultStart: o.DefaultStart,
		},
		noReplay: o.NoReplay,
	}
}

// notify wakes every waiter; the caller holds mu.
func (e *Endpoint) notify() {
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}

// waitCh returns the channel closed by the next change; the caller holds mu.
// It is made only when someone waits, so that the message path does not
// allocate one per ack.
func (e *Endpoint) waitCh() <-chan struct{} {
	if e.changed == nil {
		e.changed = make(chan struct{})
	}
	return e.changed
}

// SetUnavailable makes Publish and Subscribe fail with ErrUnavailable, as a
// broker that cannot be reached.
func (e *Endpoint) SetUnavailable(v bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unavailable = v
	e.notify()
}

// Append stores messages with the given contents, as if published.
func (e *Endpoint) Append(contents ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range contents {
		e.appendLocked(mediation.NewMessage([]byte(c)))
	}
	e.notify()
}

func (e *Endpoint) appendLocked(m *mediation.Message) {
	off := int64(len(e.log))
	s := m.Clone()
	s.ID = strconv.FormatInt(off, 10)
	s.Position = mediation.Position{Stream: Stream, Offset: off}
	s.Cursor = ""
	if s.Metadata == nil {
		s.Metadata = map[string]string{}
	}
	s.Metadata["offset"] = s.ID
	if s.Timestamp.IsZero() {
		s.Timestamp = time.Now()
	}
	e.log = append(e.log, s)
	e.acked = append(e.acked, 0)
	e.nacked = append(e.nacked, 0)
}

// Publish appends msg to the log.
func (e *Endpoint) Publish(ctx context.Context, msg *mediation.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.caps.Publish {
		return fmt.Errorf("memtest: publish: %w", mediation.ErrUnsupported)
	}
	if e.unavailable {
		return fmt.Errorf("memtest: %w", mediation.ErrUnavailable)
	}
	e.appendLocked(msg)
	e.notify()
	return nil
}

// Subscribe opens a subscription from the requested start.
func (e *Endpoint) Subscribe(_ context.Context, req mediation.SubscribeRequest) (mediation.Subscription, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.unavailable {
		return nil, fmt.Errorf("memtest: %w", mediation.ErrUnavailable)
	}
	if !e.caps.Subscribe {
		return nil, fmt.Errorf("memtest: subscribe: %w", mediation.ErrUnsupported)
	}
	var pos int64
	start := req.Start
	if e.noReplay && start != mediation.StartLatest {
		return nil, fmt.Errorf("memtest: live-only source cannot start at %d: %w", start, mediation.ErrUnsupported)
	}
	switch start {
	case mediation.StartEarliest:
	case mediation.StartLatest:
		pos = int64(len(e.log))
	case mediation.StartCursor:
		ps := req.Cursor.Positions()
		if len(ps) != 1 || ps[0].Stream != Stream || ps[0].Partition != 0 {
			return nil, fmt.Errorf("%w: not a position of this endpoint", mediation.ErrBadCursor)
		}
		if pos = ps[0].Offset; pos > int64(len(e.log)) {
			return nil, fmt.Errorf("%w: offset %d beyond the end of the log", mediation.ErrBadCursor, pos)
		}
	default:
		return nil, fmt.Errorf("memtest: start %d: %w", req.Start, mediation.ErrUnsupported)
	}
	e.open++
	e.notify()
	return &subscription{e: e, start: pos, pos: pos, live: e.noReplay, done: make(chan struct{})}, nil
}

// Capabilities reports publish, subscribe and replay.
func (e *Endpoint) Capabilities() mediation.Capabilities { return e.caps }

// Close marks the endpoint closed.
func (e *Endpoint) Close(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.notify()
	return nil
}

func (e *Endpoint) settle(off int64, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		e.acked[off]++
	} else {
		e.nacked[off]++
	}
	e.notify()
}

type subscription struct {
	e          *Endpoint
	start, pos int64
	live       bool // no positions: a live-only source
	done       chan struct{}
	closeOnce  sync.Once
}

func (s *subscription) Start() mediation.Cursor {
	if s.live {
		return mediation.Cursor{}
	}
	return mediation.NewCursor(mediation.Position{Stream: Stream, Offset: s.start})
}

func (s *subscription) Next(ctx context.Context) (*mediation.Message, error) {
	for {
		s.e.mu.Lock()
		if s.pos < int64(len(s.e.log)) {
			stored := s.e.log[s.pos]
			s.pos++
			s.e.mu.Unlock()
			m := *stored // headers and metadata are shared read-only, as the Message contract allows
			off := stored.Position.Offset
			if s.live {
				m.Position = mediation.Position{}
			}
			m.SetAck(func(err error) { s.e.settle(off, err) })
			return &m, nil
		}
		ch := s.e.waitCh()
		s.e.mu.Unlock()
		select {
		case <-ch:
		case <-s.done:
			return nil, mediation.ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *subscription) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.e.mu.Lock()
		s.e.open--
		s.e.notify()
		s.e.mu.Unlock()
	})
	return nil
}

var (
	_ mediation.Endpoint     = (*Endpoint)(nil)
	_ mediation.Subscription = (*subscription)(nil)
)
