package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/mediation"
)

// Fetch timing: a pull request waits up to fetchExpiry for messages, and the
// server sends a heartbeat every fetchHeartbeat while it waits, so that a
// server that went away is noticed within two heartbeats even when the
// client missed the disconnection.
const (
	fetchExpiry    = 30 * time.Second
	fetchHeartbeat = 5 * time.Second
	maxBackoff     = 5 * time.Second
)

// jsSub reads a JetStream stream through a pull consumer, in fetched
// batches of at most consumer.bufferMessages messages and
// consumer.bufferBytes bytes.
//
// Without a group (durable == "") the consumer is ephemeral and
// unacknowledged, and the reader is its own ordered consumer: it tracks the
// next stream sequence it has to yield and, whenever the consumer may have
// lost track (a reconnection, a failed fetch, a gap in the delivery
// sequence, the server deleting an idle consumer), recreates the consumer
// exactly there. Nothing is lost or repeated across server restarts.
//
// With a group the consumer is durable with explicit acks: Message.Ack acks
// the delivery, Message.Nack asks for redelivery at once, and Close gives
// back (nacks) what was fetched or yielded and not settled, so that it is
// redelivered at once rather than after ackWait. A delivery lost in a
// reconnection is redelivered by the server after ackWait.
//
// Next and Buffered are called from one goroutine; Close may be called
// from any, also while Next runs.
type jsSub struct {
	e       *Endpoint
	stream  string
	durable string
	start   mediation.Cursor

	// ctx ends when the subscription is closed; fetches derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	// Durable subscriptions: where a consumer created later starts.
	durableStart mediation.StartKind
	durableTime  time.Time

	// Owned by the goroutine calling Next.
	cons        jetstream.Consumer // nil: (re)open before fetching
	next        uint64             // ephemeral: next stream sequence to yield
	lastDeliver uint64             // ephemeral: consumer sequence of the last message received
	batch       jetstream.MessageBatch
	msgs        <-chan jetstream.Msg // the batch's messages; nil when no fetch runs
	stopFetch   context.CancelFunc
	reconnected <-chan struct{} // fires on the next reconnection
	failures    int             // consecutive failed attempts, for the backoff

	mu        sync.Mutex
	closed    bool
	consName  string                   // ephemeral: the consumer to delete on Close
	fetching  <-chan jetstream.Msg     // msgs, for Close to give back
	unsettled map[uint64]jetstream.Msg // durable: yielded, not settled; by delivery sequence
}

func (e *Endpoint) newJSSub(durable string) *jsSub {
	ctx, cancel := context.WithCancel(context.Background())
	return &jsSub{e: e, stream: e.cfg.Consumer.Stream, durable: durable, ctx: ctx, cancel: cancel}
}

// setConsumer makes cons the one to fetch from.
func (s *jsSub) setConsumer(cons jetstream.Consumer) {
	s.cons = cons
	s.lastDeliver = 0
	if s.durable == "" {
		s.mu.Lock()
		s.consName = cons.CachedInfo().Name
		s.mu.Unlock()
	}
}

// Start is the resolved start of the client's own reads: the next stream
// sequence. Empty for a group, which resumes from its acknowledgements.
func (s *jsSub) Start() mediation.Cursor { return s.start }

// Next returns the next message of the stream. It blocks until one is
// fetched, ctx ends, or the subscription is closed (ErrClosed). Server
// restarts and disconnections do not end it: it waits for the connection
// and resumes where it was.
func (s *jsSub) Next(ctx context.Context) (*mediation.Message, error) {
	for {
		if s.ctx.Err() != nil {
			return nil, mediation.ErrClosed
		}
		if s.msgs == nil {
			if err := s.fetch(ctx); err != nil {
				return nil, err
			}
			continue
		}
		select {
		case m, ok := <-s.msgs:
			if !ok {
				s.fetchEnded()
				continue
			}
			if out := s.accept(m); out != nil {
				return out, nil
			}
		case <-s.reconnected:
			// The pull request may have died with the old connection.
			s.endFetch()
			s.lost()
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ctx.Done():
			return nil, mediation.ErrClosed
		}
	}
}

// Buffered is how many fetched messages Next returns without blocking.
func (s *jsSub) Buffered() int { return len(s.msgs) }

// fetch starts a pull request, (re)opening the consumer first when needed.
// Failures are retried with a backoff until ctx ends or the subscription
// closes.
func (s *jsSub) fetch(ctx context.Context) error {
	for {
		err := s.tryFetch(ctx)
		if err == nil {
			return nil
		}
		if s.ctx.Err() != nil {
			return mediation.ErrClosed
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.e.nc.IsClosed() {
			return unavailable(fmt.Sprintf("stream %q", s.stream), nats.ErrConnectionClosed)
		}
		s.failed(err)
		if err := s.backoff(ctx); err != nil {
			return err
		}
	}
}

func (s *jsSub) tryFetch(ctx context.Context) error {
	// Taken before anything is sent: a reconnection from now on ends the
	// fetch.
	s.reconnected = s.e.reconnected.wait()
	if s.cons == nil {
		if err := s.reopen(ctx); err != nil {
			return err
		}
	}
	maxBytes := max(s.e.cfg.Consumer.BufferBytes, int(s.e.nc.MaxPayload())+4096)
	fctx, stop := context.WithTimeout(s.ctx, fetchExpiry)
	batch, err := s.cons.Fetch(s.e.cfg.Consumer.BufferMessages,
		jetstream.FetchMaxBytes(maxBytes), jetstream.FetchHeartbeat(fetchHeartbeat), jetstream.FetchContext(fctx))
	if err != nil {
		stop()
		s.lost()
		return err
	}
	s.batch, s.msgs, s.stopFetch = batch, batch.Messages(), stop
	s.mu.Lock()
	s.fetching = s.msgs
	s.mu.Unlock()
	return nil
}

// reopen creates the ephemeral consumer at the next sequence, or binds the
// durable one again.
func (s *jsSub) reopen(ctx context.Context) error {
	ctx, cancel := s.e.requestContext(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	if s.durable != "" {
		return s.openDurable(ctx)
	}
	s.deleteEphemeral(ctx)
	cons, err := s.e.js.CreateConsumer(ctx, s.stream, s.ephemeralConfig(jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   s.next,
	}))
	if err != nil {
		return err
	}
	s.setConsumer(cons)
	return nil
}

// fetchEnded handles the end of a pull request: expired or complete
// (fetch again), or failed (recover first).
func (s *jsSub) fetchEnded() {
	err := s.batch.Error()
	s.endFetch()
	switch {
	case err == nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, jetstream.ErrNoMessages), errors.Is(err, jetstream.ErrBatchCompleted):
		s.failures = 0 // a pull request that ran its course: the server is fine
		return
	case s.ctx.Err() != nil:
		return
	}
	s.failed(err)
	s.lost()
}

// endFetch stops the running pull request; a durable subscription gives
// back what it fetched and did not yield.
func (s *jsSub) endFetch() {
	if s.msgs == nil {
		return
	}
	s.stopFetch()
	s.mu.Lock()
	s.fetching = nil
	s.mu.Unlock()
	if s.durable != "" {
		nakBuffered(s.msgs)
	}
	s.batch, s.msgs, s.stopFetch = nil, nil, nil
}

// lost records that the consumer may have lost track: an ephemeral one is
// recreated at the next sequence, a durable one is bound again when the
// server says it is gone.
func (s *jsSub) lost() {
	if s.durable == "" {
		s.cons = nil
	}
}

// failed logs a failed fetch: the first of a series as a warning, the rest
// at debug level.
func (s *jsSub) failed(err error) {
	s.failures++
	if s.durable != "" && (errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, nats.ErrNoResponders)) {
		s.cons = nil
	}
	log := s.e.log.Debug
	if s.failures == 1 {
		log = s.e.log.Warn
	}
	log("nats: reading stream failed; retrying", "stream", s.stream, "durable", s.durable, "err", err)
}

// backoff waits before the next attempt: longer after each failure, cut
// short by a reconnection.
func (s *jsSub) backoff(ctx context.Context) error {
	d := min(100*time.Millisecond<<min(s.failures, 10), maxBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.reconnected:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return mediation.ErrClosed
	}
	return nil
}

// accept turns a fetched message into the message to yield; nil when it
// must be skipped.
func (s *jsSub) accept(m jetstream.Msg) *mediation.Message {
	meta, err := m.Metadata()
	if err != nil {
		s.e.log.Warn("nats: message without JetStream metadata skipped", "stream", s.stream, "err", err)
		return nil
	}
	s.failures = 0
	seq := meta.Sequence
	if s.durable == "" {
		if seq.Consumer != s.lastDeliver+1 {
			// A delivery went missing: start again after the last yielded.
			s.endFetch()
			s.lost()
			return nil
		}
		s.lastDeliver = seq.Consumer
		if seq.Stream < s.next {
			return nil // already yielded by an earlier consumer
		}
		s.next = seq.Stream + 1
		return s.message(m, meta)
	}
	out := s.message(m, meta)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		giveBack(m)
		return nil
	}
	s.unsettled[seq.Consumer] = m
	s.mu.Unlock()
	out.SetAck(func(err error) { s.settle(seq.Consumer, err) })
	return out
}

// message converts a fetched message.
func (s *jsSub) message(m jetstream.Msg, meta *jetstream.MsgMetadata) *mediation.Message {
	return &mediation.Message{
		ID:        strconv.FormatUint(meta.Sequence.Stream, 10),
		Content:   m.Data(),
		Headers:   headersOf(m.Headers()),
		Metadata:  map[string]string{"subject": m.Subject(), "stream": s.stream},
		Timestamp: meta.Timestamp,
		Position:  mediation.Position{Stream: s.stream, Offset: int64(meta.Sequence.Stream)},
	}
}

// settle acks or nacks a durable delivery, once; after Close it does
// nothing (Close gave the message back).
func (s *jsSub) settle(delivery uint64, err error) {
	s.mu.Lock()
	m, ok := s.unsettled[delivery]
	if ok {
		delete(s.unsettled, delivery)
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	var aerr error
	if err == nil {
		aerr = m.Ack()
	} else {
		aerr = m.Nak()
	}
	if aerr != nil {
		// The server redelivers it after ackWait.
		s.e.log.Debug("nats: acknowledgement not sent", "stream", s.stream, "durable", s.durable, "err", aerr)
	}
}

// Close ends the subscription. A durable one gives back what it holds
// unsettled; an ephemeral consumer is deleted. Idempotent.
func (s *jsSub) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	unsettled, fetching, name := s.unsettled, s.fetching, s.consName
	s.unsettled = nil
	s.mu.Unlock()
	s.cancel()

	for _, m := range unsettled {
		giveBack(m)
	}
	if s.durable != "" && fetching != nil {
		nakBuffered(fetching)
	}
	if name != "" && s.e.nc.IsConnected() {
		ctx, cancel := context.WithTimeout(context.Background(), min(time.Duration(s.e.cfg.RequestTimeout), 2*time.Second))
		defer cancel()
		s.deleteConsumer(ctx, name)
	}
	return nil
}

// deleteEphemeral deletes the ephemeral consumer being replaced, if the
// server still has it.
func (s *jsSub) deleteEphemeral(ctx context.Context) {
	s.mu.Lock()
	name := s.consName
	s.consName = ""
	s.mu.Unlock()
	if name != "" && s.e.nc.IsConnected() {
		s.deleteConsumer(ctx, name)
	}
}

func (s *jsSub) deleteConsumer(ctx context.Context, name string) {
	err := s.e.js.DeleteConsumer(ctx, s.stream, name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		// The server removes it after ephemeralInactivity anyway.
		s.e.log.Debug("nats: ephemeral consumer not deleted", "stream", s.stream, "consumer", name, "err", err)
	}
}

// nakBuffered gives back the fetched messages waiting in msgs.
func nakBuffered(msgs <-chan jetstream.Msg) {
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return
			}
			giveBack(m)
		default:
			return
		}
	}
}

// giveBackDelay is how long the server waits before it redelivers a
// message given back when a fetch ends. An immediate redelivery could go to
// the fetch's own pull request, still waiting on the server until the
// client's unsubscription reaches it, and be lost there until ackWait.
const giveBackDelay = time.Second

// giveBack nacks a message the subscription will not yield.
func giveBack(m jetstream.Msg) { _ = m.NakWithDelay(giveBackDelay) }

// Interface guards.
var _ mediation.BufferedSubscription = (*jsSub)(nil)
