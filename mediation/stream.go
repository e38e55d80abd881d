package mediation

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrDraining is returned by Stream.Next when the API is shutting down: the
// entrypoint says goodbye on its protocol (SSE goaway, WebSocket 1001) and
// returns.
var ErrDraining = errors.New("gateway draining")

// SlowConsumerPolicy says what a shared subscription does with a client whose
// window is full.
type SlowConsumerPolicy string

const (
	// SlowConsumerDisconnect ends the client's stream with ErrSlowConsumer.
	// The client reconnects with its last cursor and reads from its own
	// position, so nothing is lost where the broker can replay. The default.
	SlowConsumerDisconnect SlowConsumerPolicy = "disconnect"
	// SlowConsumerDropOldest discards the client's oldest queued message,
	// counted in the dropped metric.
	SlowConsumerDropOldest SlowConsumerPolicy = "drop-oldest"
	// SlowConsumerBlock makes the shared subscription wait for the client,
	// slowing every client of it.
	SlowConsumerBlock SlowConsumerPolicy = "block"
)

// Stream is one client's flow of messages: subscribe-phase policies applied,
// cursor attached, at most a window of messages the client has not acked.
//
// The entrypoint calls Next (or TryNext) from one goroutine, writes each
// message to its client, and calls Message.Ack once it counts as delivered
// (flushed for SSE and WebSocket, included in a returned page for GET) or
// Message.Nack when it was not. It calls Close when done.
type Stream struct {
	x        *Exchange
	queue    msgQueue      // read ahead
	window   int64         // most messages queued (shared) or unacked (own)
	inflight atomic.Int64  // own streams: queued or delivered, not yet settled
	room     chan struct{} // cap 1: the window may have room again
	idle     *time.Timer   // NextWithin's, reused
	cursor   Cursor
	tokens   tokenCache // AppendCursor's, for the client's goroutine
	track    bool       // the source carries positions, so messages get cursors
	onDemand bool       // StreamRequest.CursorOnDemand: no Message.Cursor strings

	sub    Subscription // own streams
	hub    *hub         // shared streams
	cancel context.CancelFunc
	pumped chan struct{} // own streams: closed when the pump returned

	failOnce sync.Once
	failed   chan struct{}
	err      error
	closed   sync.Once
}

func newStream(x *Exchange) *Stream {
	s := &Stream{
		x: x, queue: newMsgQueue(), window: int64(x.binding.Window),
		room: make(chan struct{}, 1), failed: make(chan struct{}),
	}
	x.binding.metrics.Streams.Inc()
	return s
}

func newOwnStream(x *Exchange, sub Subscription) *Stream {
	s := newStream(x)
	s.sub = sub
	s.cursor = sub.Start().Clone()
	s.track = !s.cursor.IsZero() || x.api.caps.Replay
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.pumped = make(chan struct{})
	go s.pump(ctx)
	return s
}

// pump reads from the subscription while the window has room. A full window
// stops the reads, which is how a slow client pauses the broker fetch.
func (s *Stream) pump(ctx context.Context) {
	defer close(s.pumped)
	buffered, _ := s.sub.(BufferedSubscription)
	var batch []*Message
	for {
		for s.inflight.Load() >= s.window {
			select {
			case <-s.room:
			case <-ctx.Done():
				s.fail(ErrClosed)
				return
			}
		}
		m, err := s.sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				err = ErrClosed
			}
			s.fail(err)
			return
		}
		batch = append(batch[:0], m)
		if buffered != nil {
			// Take what is already fetched, up to the window, in one hand-off.
			for n := min(int64(buffered.Buffered()), s.window-s.inflight.Load()-1); n > 0; n-- {
				if m, err = s.sub.Next(ctx); err != nil {
					break // reported by the next call
				}
				batch = append(batch, m)
			}
		}
		s.inflight.Add(int64(len(batch)))
		s.queue.push(batch...)
		clear(batch)
	}
}

func (s *Stream) fail(err error) {
	s.failOnce.Do(func() {
		s.err = err
		close(s.failed)
	})
}

// Next returns the next message for the client. It blocks until one is
// ready, ctx ends, the API drains (ErrDraining) or the source fails (its
// error; ErrSlowConsumer when the slow-consumer policy cut the client off).
func (s *Stream) Next(ctx context.Context) (*Message, error) {
	for {
		m, err := s.receive(ctx, true, nil)
		if m == nil {
			return nil, err
		}
		if out, err := s.deliver(ctx, m); out != nil || err != nil {
			return out, err
		}
	}
}

// TryNext returns a message only if one is ready now; (nil, nil) means none
// is. Entrypoints use it to batch writes and flush once the stream is idle.
func (s *Stream) TryNext(ctx context.Context) (*Message, error) {
	for {
		m, err := s.receive(ctx, false, nil)
		if m == nil {
			return nil, err
		}
		if out, err := s.deliver(ctx, m); out != nil || err != nil {
			return out, err
		}
	}
}

// NextWithin is Next that gives up after idle: (nil, nil) means no message
// came in that time (send a heartbeat, end a page). It reuses one timer per
// stream, so an idle-busy-idle stream allocates nothing for waiting.
func (s *Stream) NextWithin(ctx context.Context, idle time.Duration) (*Message, error) {
	if s.idle == nil {
		s.idle = time.NewTimer(idle)
	} else {
		s.idle.Reset(idle)
	}
	defer s.idle.Stop()
	for {
		m, err := s.receive(ctx, true, s.idle.C)
		if m == nil {
			return nil, err
		}
		if out, err := s.deliver(ctx, m); out != nil || err != nil {
			return out, err
		}
	}
}

// receive takes the next queued message; it blocks when block is set, until
// a message, a failure, the drain, ctx, or idle (nil, nil) comes.
func (s *Stream) receive(ctx context.Context, block bool, idle <-chan time.Time) (*Message, error) {
	if m, ok := s.take(); ok {
		return m, nil
	}
	if !block {
		select {
		case <-s.failed:
			if m, ok := s.take(); ok { // pushed just before the failure
				return m, nil
			}
			return nil, s.err
		default:
			return nil, nil
		}
	}
	for {
		select {
		case <-s.queue.ready:
			if m, ok := s.take(); ok {
				return m, nil
			}
		case <-s.failed:
			if m, ok := s.take(); ok { // what was read before the failure is still delivered
				return m, nil
			}
			return nil, s.err
		case <-s.x.api.draining:
			return nil, ErrDraining
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-idle:
			return nil, nil
		}
	}
}

// take pops a queued message; on shared streams that frees window room.
func (s *Stream) take() (*Message, bool) {
	m, ok := s.queue.take()
	if ok && s.hub != nil {
		s.signalRoom()
	}
	return m, ok
}

func (s *Stream) signalRoom() {
	select {
	case s.room <- struct{}{}:
	default:
	}
}

// deliver advances the cursor past m, runs the subscribe phase, and returns
// the client's copy with its cursor and ack handle; nil, nil when a policy
// dropped it.
func (s *Stream) deliver(ctx context.Context, m *Message) (*Message, error) {
	if s.track && m.Position.Stream != "" {
		s.cursor.Advance(m.Position)
	}
	out, err := s.x.runMessagePolicies(ctx, m, OpSubscribe)
	if err != nil {
		s.settle(m, err)
		return nil, err
	}
	if out == nil { // dropped by a policy: handled, not delivered
		m.Ack()
		s.release()
		return nil, nil
	}
	var c *Message
	if out == m && s.sub != nil {
		c = m // an own stream's message is the client's alone: no copy
	} else {
		c = out.copyFields()
		c.ack.origin = m
	}
	c.ack.stream = s
	if s.track && !s.onDemand {
		c.Cursor = s.cursor.String()
	}
	if s.sub != nil && s.x.QoS != QoSAtLeastOnce {
		m.ackSource(nil) // none, auto, at-most-once: the source moves on before delivery
	}
	return c, nil
}

// settle records the outcome for the source message m and frees its slot.
func (s *Stream) settle(m *Message, err error) {
	if err == nil {
		s.x.binding.metrics.MessagesOut.Inc()
	}
	m.ackSource(err)
	s.release()
}

// settledOK counts n messages acked by AckAll, whose sources were told, and
// frees their window slots: what settle does for each, in one step.
func (s *Stream) settledOK(n int) {
	if n == 0 {
		return
	}
	if c, ok := s.x.binding.metrics.MessagesOut.(interface{ Add(float64) }); ok {
		c.Add(float64(n))
	} else {
		for range n {
			s.x.binding.metrics.MessagesOut.Inc()
		}
	}
	if s.sub != nil {
		s.inflight.Add(-int64(n))
		s.signalRoom()
	}
}

// release frees the window slot of a settled message (own streams).
func (s *Stream) release() {
	if s.sub != nil {
		s.inflight.Add(-1)
		s.signalRoom()
	}
}

// AppendCursor appends the token that resumes right after the last message
// taken from the stream — the cursor of that message, when called before the
// next take. It appends nothing when the source cannot replay.
func (s *Stream) AppendCursor(dst []byte) []byte {
	if !s.track {
		return dst
	}
	return s.tokens.appendToken(dst, &s.cursor)
}

// Cursor returns the token that resumes right after the last message Next
// returned (or the start position when none was). Empty when the source
// cannot replay.
func (s *Stream) Cursor() string {
	if !s.track {
		return ""
	}
	return s.cursor.String()
}

// Close ends the stream: messages read ahead but never returned are nacked,
// and the subscription is closed (own) or left (shared). It does not wait
// for the client to ack what was returned: unacked messages are simply never
// committed.
func (s *Stream) Close() error {
	var err error
	s.closed.Do(func() {
		s.x.binding.metrics.Streams.Dec()
		if s.hub != nil {
			s.hub.leave(s)
			s.fail(ErrClosed)
			return
		}
		s.cancel()
		<-s.pumped
		for m, ok := s.queue.take(); ok; m, ok = s.queue.take() {
			m.Nack(ErrClosed)
			s.inflight.Add(-1)
		}
		err = s.sub.Close()
	})
	return err
}
