package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/mediation"
)

// ephemeralInactivity is how long the server keeps the consumer of a
// client's own reads when nothing pulls from it (the client stopped reading
// or the gateway died); the reader recreates it where it left off if it
// comes back later.
const ephemeralInactivity = 5 * time.Minute

// subscribeJetStream opens a subscription on consumer.stream. Without a
// group it reads from the client's own position with an ephemeral consumer
// whose exact start Start reports; with a group it reads the durable
// consumer of the group, which remembers what was acknowledged.
func (e *Endpoint) subscribeJetStream(ctx context.Context, req mediation.SubscribeRequest) (*jsSub, error) {
	if req.Group != "" {
		return e.subscribeDurable(ctx, req)
	}
	s := e.newJSSub("")
	if err := s.openEphemeral(ctx, req); err != nil {
		s.cancel()
		return nil, err
	}
	return s, nil
}

// openEphemeral resolves where the reads start, creates the ephemeral
// consumer there, and records the start.
//
// The start is always a stream sequence: the stream's first for earliest,
// one past its last for latest, a cursor's next sequence (raised to the
// first retained one when retention deleted it), so that the start Start
// reports is exactly where the consumer begins. A cursor that names another
// stream, a partition other than 0, or a sequence past the end of the
// stream wraps mediation.ErrBadCursor.
func (s *jsSub) openEphemeral(ctx context.Context, req mediation.SubscribeRequest) error {
	e := s.e
	rctx, cancel := e.requestContext(ctx)
	defer cancel()
	stream, err := e.js.Stream(rctx, s.stream)
	if err != nil {
		return jsError(fmt.Sprintf("stream %q", s.stream), err)
	}
	state := stream.CachedInfo().State
	first := max(state.FirstSeq, 1)
	switch req.Start {
	case mediation.StartEarliest:
		s.next = first
	case mediation.StartLatest:
		s.next = state.LastSeq + 1
	case mediation.StartCursor:
		next, err := cursorStart(req.Cursor, s.stream, state.LastSeq)
		if err != nil {
			return err
		}
		s.next = max(next, first)
	case mediation.StartTime:
		// The server finds the first message at or after the time; the
		// consumer's info says which sequence that is.
		cons, err := e.js.CreateConsumer(rctx, s.stream, s.ephemeralConfig(jetstream.ConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartTimePolicy,
			OptStartTime:  &req.Time,
		}))
		if err != nil {
			return jsError(fmt.Sprintf("create a consumer on stream %q", s.stream), err)
		}
		s.next = cons.CachedInfo().Delivered.Stream + 1
		s.setConsumer(cons)
	default:
		return fmt.Errorf("nats: unknown start %d: %w", req.Start, mediation.ErrUnsupported)
	}
	if s.cons == nil {
		cons, err := e.js.CreateConsumer(rctx, s.stream, s.ephemeralConfig(jetstream.ConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   s.next,
		}))
		if err != nil {
			return jsError(fmt.Sprintf("create a consumer on stream %q", s.stream), err)
		}
		s.setConsumer(cons)
	}
	s.start = mediation.NewCursor(mediation.Position{Stream: s.stream, Offset: int64(s.next)})
	return nil
}

// cursorStart returns the next sequence a cursor asks for in stream, whose
// last sequence is last. A cursor that names no position of the stream
// starts at its beginning (0).
func cursorStart(c mediation.Cursor, stream string, last uint64) (uint64, error) {
	for _, p := range c.Positions() {
		if p.Stream != stream {
			return 0, fmt.Errorf("%w: it names stream %q, which this API does not read (it reads %q)", mediation.ErrBadCursor, p.Stream, stream)
		}
		if p.Partition != 0 {
			return 0, fmt.Errorf("%w: it names partition %d of stream %q; JetStream streams have only partition 0", mediation.ErrBadCursor, p.Partition, stream)
		}
	}
	next, ok := c.Next(stream, 0)
	if !ok {
		return 0, nil
	}
	if next < 0 || uint64(next) > last+1 {
		return 0, fmt.Errorf("%w: sequence %d is past the end of stream %q (its last message is %d)", mediation.ErrBadCursor, next, stream, last)
	}
	return uint64(next), nil
}

// ephemeralConfig completes cfg for a client's own reads: no
// acknowledgements (the client's cursor is its position), kept in memory,
// removed by the server when unused.
func (s *jsSub) ephemeralConfig(cfg jetstream.ConsumerConfig) jetstream.ConsumerConfig {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.FilterSubject = s.e.cfg.Consumer.Subject
	cfg.MemoryStorage = true
	cfg.Replicas = 1
	cfg.InactiveThreshold = ephemeralInactivity
	return cfg
}

// subscribeDurable opens a group subscription on the durable consumer of
// req.Group, creating it when it does not exist yet. A durable consumer
// resumes from what its group acknowledged, not from a cursor.
func (e *Endpoint) subscribeDurable(ctx context.Context, req mediation.SubscribeRequest) (*jsSub, error) {
	if req.Start == mediation.StartCursor {
		return nil, fmt.Errorf("nats: a durable consumer resumes from what its group acknowledged, not from a cursor: %w", mediation.ErrUnsupported)
	}
	s := e.newJSSub(durableName(e.cfg.Consumer.Durable, req.Group))
	s.durableStart = req.Start
	s.durableTime = req.Time
	s.unsettled = make(map[uint64]jetstream.Msg)
	if err := s.openDurable(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	return s, nil
}

// openDurable binds to the group's durable consumer, creating it (starting
// where the subscription request said) when it does not exist.
func (s *jsSub) openDurable(ctx context.Context) error {
	e := s.e
	rctx, cancel := e.requestContext(ctx)
	defer cancel()
	cons, err := e.js.Consumer(rctx, s.stream, s.durable)
	if err == nil {
		if err := s.checkDurable(cons.CachedInfo().Config); err != nil {
			return err
		}
		s.setConsumer(cons)
		return nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return jsError(fmt.Sprintf("durable consumer %q of stream %q", s.durable, s.stream), err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       s.durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Duration(e.cfg.Consumer.AckWait),
		FilterSubject: e.cfg.Consumer.Subject,
		DeliverPolicy: jetstream.DeliverNewPolicy,
	}
	switch s.durableStart {
	case mediation.StartEarliest:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case mediation.StartTime:
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &s.durableTime
	}
	cons, err = e.js.CreateConsumer(rctx, s.stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Another gateway created it meanwhile: use that one.
		cons, err = e.js.Consumer(rctx, s.stream, s.durable)
	}
	if err != nil {
		return jsError(fmt.Sprintf("create durable consumer %q on stream %q", s.durable, s.stream), err)
	}
	s.setConsumer(cons)
	return nil
}

// checkDurable refuses an existing durable consumer that would not deliver
// what this endpoint is configured to read, or not wait for acks.
func (s *jsSub) checkDurable(c jetstream.ConsumerConfig) error {
	filter := c.FilterSubject
	if filter == "" && len(c.FilterSubjects) == 1 {
		filter = c.FilterSubjects[0]
	}
	if filter != s.e.cfg.Consumer.Subject || len(c.FilterSubjects) > 1 || c.AckPolicy != jetstream.AckExplicitPolicy {
		return fmt.Errorf("nats: durable consumer %q of stream %q exists with another subject filter or ack policy than this endpoint's; delete it or change consumer.durable: %w",
			s.durable, s.stream, mediation.ErrUnsupported)
	}
	return nil
}

// jsError classifies a JetStream API failure. A missing stream is reported
// as unavailable too: it may be being created, and retrying later cures it.
func jsError(what string, err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("nats: %s: %w", what, err)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return unavailable(what+" does not exist", err)
	case errors.As(err, &apiErr) && apiErr.Code < 500 && apiErr.Code != 404 && apiErr.Code != 408:
		return fmt.Errorf("nats: %s: %w", what, err)
	}
	return unavailable(what, err)
}

// DeleteGroup deletes the JetStream durable consumer of group. Core NATS
// queue groups keep no state, so there is nothing to delete without a
// stream.
func (e *Endpoint) DeleteGroup(ctx context.Context, group string) error {
	stream := e.cfg.Consumer.Stream
	if stream == "" {
		return nil
	}
	name := durableName(e.cfg.Consumer.Durable, group)
	rctx, cancel := e.requestContext(ctx)
	defer cancel()
	if err := e.js.DeleteConsumer(rctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return jsError(fmt.Sprintf("delete durable consumer %q of stream %q", name, stream), err)
	}
	return nil
}

var _ mediation.GroupDeleter = (*Endpoint)(nil)
