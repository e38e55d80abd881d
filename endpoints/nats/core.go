package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicegw/sluice/mediation"
)

// coreSub is a core NATS subscription. Core NATS delivers what arrives
// while the subscription exists and keeps nothing: it cannot start earlier,
// resume from a cursor, nor deliver a message again, so messages carry no
// position and acknowledgements do nothing.
//
// What the server sends is queued by the client up to consumer.bufferMessages
// and consumer.bufferBytes; beyond that NATS drops messages for this
// subscription (a slow consumer), which is logged. The client resubscribes
// by itself after a reconnection: messages published while disconnected are
// not seen, as core NATS promises.
type coreSub struct {
	e      *Endpoint
	sub    *nats.Subscription
	seq    uint64 // messages yielded, for IDs (the Next goroutine's)
	closed atomic.Bool
}

// subscribeCore subscribes to consumer.subject, in the queue group named
// after req.Group, else in consumer.queueGroup when set.
func (e *Endpoint) subscribeCore(ctx context.Context, req mediation.SubscribeRequest) (*coreSub, error) {
	switch {
	case req.Start == mediation.StartCursor:
		return nil, fmt.Errorf("%w: core NATS keeps no messages to resume from (set consumer.stream to read a JetStream stream)", mediation.ErrBadCursor)
	case req.Start != mediation.StartLatest:
		return nil, fmt.Errorf("nats: core NATS can only deliver new messages (set consumer.stream to read a JetStream stream): %w", mediation.ErrUnsupported)
	case req.QoS == mediation.QoSAtLeastOnce:
		return nil, fmt.Errorf("nats: qos at-least-once needs messages that can be delivered again, which core NATS cannot do (set consumer.stream to read a JetStream stream): %w", mediation.ErrUnsupported)
	}
	queue := e.cfg.Consumer.QueueGroup
	if req.Group != "" {
		queue = req.Group
	}
	subject := e.cfg.Consumer.Subject
	var (
		sub *nats.Subscription
		err error
	)
	if queue != "" {
		sub, err = e.nc.QueueSubscribeSync(subject, queue)
	} else {
		sub, err = e.nc.SubscribeSync(subject)
	}
	if err != nil {
		if isConnectionError(err) {
			return nil, unavailable(fmt.Sprintf("subscribe to %q", subject), err)
		}
		return nil, fmt.Errorf("nats: subscribe to %q: %w", subject, err)
	}
	if err := sub.SetPendingLimits(e.cfg.Consumer.BufferMessages, e.cfg.Consumer.BufferBytes); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("nats: subscribe to %q: %w", subject, err)
	}
	// A round trip, so that the server has the subscription when Subscribe
	// returns: what is published from then on is delivered.
	fctx, cancel := e.requestContext(ctx)
	defer cancel()
	if err := e.nc.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nats: subscribe to %q: %w", subject, ctx.Err())
		}
		return nil, unavailable(fmt.Sprintf("subscribe to %q", subject), err)
	}
	return &coreSub{e: e, sub: sub}, nil
}

// Start is empty: core NATS cannot replay.
func (s *coreSub) Start() mediation.Cursor { return mediation.Cursor{} }

// Next returns the next message received on the subject. It blocks until
// one arrives, ctx ends, or the subscription is closed (ErrClosed).
// Disconnections do not end it: the client reconnects and resubscribes.
func (s *coreSub) Next(ctx context.Context) (*mediation.Message, error) {
	for {
		if s.closed.Load() {
			return nil, mediation.ErrClosed
		}
		m, err := s.sub.NextMsgWithContext(ctx)
		if err == nil {
			s.seq++
			return coreMessage(m, s.seq), nil
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case s.closed.Load():
			return nil, mediation.ErrClosed
		case errors.Is(err, nats.ErrSlowConsumer):
			// Reported once per episode; the client has already logged the
			// drops through the error handler. Core NATS promises no more.
			continue
		case errors.Is(err, nats.ErrPermissionViolation):
			return nil, fmt.Errorf("nats: subscribe to %q: %w", s.sub.Subject, err)
		}
		return nil, unavailable(fmt.Sprintf("subscription to %q", s.sub.Subject), err)
	}
}

// Buffered is how many received messages Next returns without blocking.
func (s *coreSub) Buffered() int {
	n, _, err := s.sub.Pending()
	if err != nil {
		return 0
	}
	return n
}

// Close unsubscribes. It is idempotent; Next then returns ErrClosed.
func (s *coreSub) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("nats: unsubscribe from %q: %w", s.sub.Subject, err)
	}
	return nil
}

// coreMessage converts a received message; seq numbers the subscription's
// messages for their IDs.
func coreMessage(m *nats.Msg, seq uint64) *mediation.Message {
	return &mediation.Message{
		ID:        strconv.FormatUint(seq, 10),
		Content:   m.Data,
		Headers:   headersOf(m.Header),
		Metadata:  map[string]string{"subject": m.Subject},
		Timestamp: time.Now(),
	}
}

// headersOf converts NATS headers; names are lower-cased like every
// gateway header. JetStream's publish preconditions (Nats-Expected-*),
// which some servers store with the message, are left out: they are not
// part of it. Nil when there are none.
func headersOf(h nats.Header) mediation.Headers {
	if len(h) == 0 {
		return nil
	}
	out := make(mediation.Headers, len(h))
	for k, vs := range h {
		if len(k) >= len(expectedPrefix) && strings.EqualFold(k[:len(expectedPrefix)], expectedPrefix) {
			continue
		}
		for _, v := range vs {
			out.Add(k, v)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// expectedPrefix starts the headers of JetStream publish preconditions.
const expectedPrefix = "Nats-Expected-"

// Interface guards.
var _ mediation.BufferedSubscription = (*coreSub)(nil)
