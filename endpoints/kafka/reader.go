package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicegw/sluice/mediation"
)

// pollBatch is how many records one poll of a group consumer hands over,
// and how many records a reader turns into messages at a time (see
// buildMessages) before handing them out one per Next: 128 fills one pooled
// batch of messages.
const pollBatch = 128

// retryBackoff paces polls that return only errors, so that a failing
// cluster is not polled in a busy loop.
const retryBackoff = 250 * time.Millisecond

// reader is a subscription that reads every consumed partition from its own
// position, with no consumer group: SSE, WebSocket and GET clients, and the
// shared live subscription of an API. Acks are no-ops: nothing is committed.
type reader struct {
	cl    *kgo.Client
	log   *slog.Logger
	start mediation.Cursor

	// Owned by the goroutine calling Next. fetched holds the records of
	// the last poll not yet turned into messages, one slice per partition:
	// a reader takes a whole fetch at once, so that franz-go fetches the
	// next one while this one is being delivered.
	batch    []mediation.Message
	next     int
	fetched  [][]*kgo.Record
	buffered int // records in fetched

	closed    atomic.Bool
	closeOnce sync.Once
}

// subscribeOwn resolves exact start offsets, then opens a client that
// fetches those partitions from there.
func (e *Endpoint) subscribeOwn(ctx context.Context, req mediation.SubscribeRequest) (*reader, error) {
	start, err := e.resolveStart(ctx, req)
	if err != nil {
		return nil, err
	}
	parts := make(map[string]map[int32]kgo.Offset)
	for _, p := range start.Positions() {
		if parts[p.Stream] == nil {
			parts[p.Stream] = make(map[int32]kgo.Offset)
		}
		parts[p.Stream][p.Partition] = kgo.NewOffset().At(p.Offset)
	}
	opts := append(e.readerOpts(), kgo.ConsumePartitions(parts))
	cl, err := kgo.NewClient(append(e.base[:len(e.base):len(e.base)], opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &reader{cl: cl, log: e.log, start: start}, nil
}

// Start is the next offset of every consumed partition.
func (r *reader) Start() mediation.Cursor { return r.start }

// Next returns the next record as a message. It blocks until one arrives,
// ctx ends, or the subscription is closed (mediation.ErrClosed) or cannot
// continue (wrong credentials or permissions). A cluster that is down is
// waited for, not reported.
func (r *reader) Next(ctx context.Context) (*mediation.Message, error) {
	for {
		if r.closed.Load() {
			return nil, mediation.ErrClosed
		}
		if r.next < len(r.batch) {
			m := &r.batch[r.next]
			r.next++
			return m, nil
		}
		if err := r.fill(ctx); err != nil {
			return nil, err
		}
	}
}

// Buffered is how many messages Next returns without polling; the engine
// uses it to hand a fetched batch to the client at once.
func (r *reader) Buffered() int { return len(r.batch) - r.next + r.buffered }

// fill turns the next records of the last fetch into r.batch, polling the
// next fetch when none is left. It returns nil after a poll that brought
// only transient errors, so that Next polls again.
func (r *reader) fill(ctx context.Context) error {
	for len(r.fetched) > 0 {
		recs := r.fetched[0]
		if len(recs) == 0 {
			r.fetched[0] = nil
			r.fetched = r.fetched[1:]
			continue
		}
		n := min(len(recs), pollBatch)
		r.batch, r.next = buildMessages(recs[:n]), 0
		clear(recs[:n]) // messages keep what they need of a record
		r.fetched[0] = recs[n:]
		r.buffered -= n
		return nil
	}
	// Taking the whole fetch lets franz-go start the next one now (it
	// buffers one fetch per broker), so fetching overlaps delivering.
	fs := r.cl.PollFetches(ctx)
	if fs.IsClientClosed() {
		return mediation.ErrClosed
	}
	if !fs.Empty() {
		// Even when ctx ended meanwhile, keep what was fetched: the next
		// call hands it out and nothing is skipped.
		r.fetched, r.buffered = r.fetched[:0], 0
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				r.fetched = append(r.fetched, p.Records)
				r.buffered += len(p.Records)
			}
		})
		if r.buffered > 0 {
			return nil
		}
	}
	r.batch, r.next, r.fetched = nil, 0, nil
	if err := ctx.Err(); err != nil {
		return err
	}
	return pollErrors(ctx, fs, r.log)
}

// Close releases the subscription's client; it is idempotent and safe to
// call while Next blocks, which then returns mediation.ErrClosed.
func (r *reader) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.cl.Close()
	})
	return nil
}

// pollErrors looks at the errors of a poll that brought no record: a fatal
// one is returned, transient ones are logged and waited out briefly.
func pollErrors(ctx context.Context, fs kgo.Fetches, log *slog.Logger) error {
	var fatal error
	transient := false
	fs.EachError(func(topic string, partition int32, err error) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		case isFatalConsume(err):
			if fatal == nil {
				fatal = fmt.Errorf("kafka: consume %s/%d: %w", topic, partition, err)
			}
		default:
			transient = true
			log.Debug("kafka fetch error, retrying", "topic", topic, "partition", partition, "error", err)
		}
	})
	if fatal != nil {
		return fatal
	}
	if transient {
		t := time.NewTimer(retryBackoff)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Interface guards.
var _ mediation.BufferedSubscription = (*reader)(nil)
