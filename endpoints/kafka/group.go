package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicegw/sluice/mediation"
)

// topicPart names one partition.
type topicPart struct {
	topic     string
	partition int32
}

// groupSub is a subscription that joins a Kafka consumer group: gateways
// sharing the group split the partitions, and each commits, per partition,
// the highest position below which every message it yielded was acked.
//
// A nack stops commits of its partition at the nacked message for as long as
// this member holds the partition; the message is read again by whoever
// holds the partition next (after a restart or a rebalance), together with
// everything after it: at-least-once, nothing acked is lost, nothing skipped.
//
// Rebalances are blocked only between a poll and the moment its records are
// in buf (BlockRebalanceOnPoll, then AllowRebalance at once), so a revoke
// callback always sees, and can drop, every record of a revoked partition.
type groupSub struct {
	cl       *kgo.Client
	log      *slog.Logger
	timeout  time.Duration // bounds each commit
	interval time.Duration

	mu    sync.Mutex
	parts map[topicPart]*partAcks // the partitions this member holds
	buf   []*kgo.Record           // polled, not yet handed out
	next  int

	commitMu sync.Mutex // one commit at a time; a revoke waits for it
	stop     chan struct{}
	loopDone chan struct{}

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// subscribeGroup joins the group "<groupId>.<req.Group>". The group's
// committed offsets say where each partition resumes; partitions it never
// committed start where req.Start says.
func (e *Endpoint) subscribeGroup(ctx context.Context, req mediation.SubscribeRequest) (*groupSub, error) {
	var reset kgo.Offset
	switch req.Start {
	case mediation.StartEarliest:
		reset = kgo.NewOffset().AtStart()
	case mediation.StartLatest:
		reset = kgo.NewOffset().AtEnd()
	case mediation.StartTime:
		reset = kgo.NewOffset().AfterMilli(req.Time.UnixMilli())
	default:
		return nil, fmt.Errorf("kafka: a consumer group resumes from its committed offsets, not from a cursor: %w", mediation.ErrUnsupported)
	}
	g := &groupSub{
		log:      e.log.With("group", e.cfg.Consumer.GroupID+"."+req.Group),
		timeout:  time.Duration(e.cfg.RequestTimeout),
		interval: time.Duration(e.cfg.Consumer.CommitInterval),
		parts:    make(map[topicPart]*partAcks),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	opts := append(e.base[:len(e.base):len(e.base)], e.consumerOpts()...)
	opts = append(opts,
		kgo.ConsumerGroup(e.cfg.Consumer.GroupID+"."+req.Group),
		kgo.SessionTimeout(time.Duration(e.cfg.Consumer.SessionTimeout)),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(g.onAssigned),
		kgo.OnPartitionsRevoked(g.onRevoked),
		kgo.OnPartitionsLost(g.onLost),
	)
	if e.pattern != nil {
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(e.pattern.String()))
	} else {
		opts = append(opts, kgo.ConsumeTopics(e.cfg.Consumer.Topics...))
	}
	if req.Start == mediation.StartLatest && e.pattern == nil {
		if err := e.pinNewGroup(ctx, e.cfg.Consumer.GroupID+"."+req.Group); err != nil {
			g.log.Warn("kafka: could not pin a new group to the end of its topics; it starts there when it first joins", "error", err)
		}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	g.cl = cl
	go g.commitLoop()
	return g, nil
}

// Start is empty: a group resumes from its committed offsets, which are
// known only once partitions are assigned.
func (g *groupSub) Start() mediation.Cursor { return mediation.Cursor{} }

// Next returns the next record of the partitions this member holds, with an
// ack handle that feeds the commits. It blocks like reader.Next.
func (g *groupSub) Next(ctx context.Context) (*mediation.Message, error) {
	for {
		if g.closed.Load() {
			return nil, mediation.ErrClosed
		}
		if m := g.take(); m != nil {
			return m, nil
		}
		if err := g.fill(ctx); err != nil {
			return nil, err
		}
	}
}

// take hands out the next buffered record of a partition still held.
func (g *groupSub) take() *mediation.Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.next < len(g.buf) {
		rec := g.buf[g.next]
		g.buf[g.next] = nil
		g.next++
		st := g.parts[topicPart{rec.Topic, rec.Partition}]
		if st == nil {
			continue // revoked after the poll: the next owner reads it
		}
		st.yielded(rec.Offset)
		m := newMessage(rec)
		off := rec.Offset
		m.SetAck(func(err error) { g.settle(st, off, err == nil) })
		return m
	}
	return nil
}

func (g *groupSub) fill(ctx context.Context) error {
	fs := g.cl.PollRecords(ctx, pollBatch)
	if fs.IsClientClosed() {
		return mediation.ErrClosed
	}
	recs := fs.Records()
	g.mu.Lock()
	g.buf, g.next = recs, 0
	g.mu.Unlock()
	g.cl.AllowRebalance() // the records are in buf, where a revoke finds them
	if len(recs) > 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return pollErrors(ctx, fs, g.log)
}

func (g *groupSub) settle(st *partAcks, off int64, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !st.dropped {
		st.settle(off, ok)
	}
}

func (g *groupSub) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for t, ps := range assigned {
		for _, p := range ps {
			tp := topicPart{t, p}
			if g.parts[tp] == nil {
				g.parts[tp] = newPartAcks()
			}
		}
	}
}

// onRevoked commits what was acked on the revoked partitions, then forgets
// them: their unacked messages go to the next owner.
func (g *groupSub) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return
	}
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	if err := g.commitLocked(ctx, revoked); err != nil {
		g.log.Warn("kafka: commit on revoke failed; the next owner may read some acked messages again", "error", err)
	}
	g.drop(revoked)
}

// onLost forgets partitions taken away without a chance to commit.
func (g *groupSub) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	g.drop(lost)
}

func (g *groupSub) drop(parts map[string][]int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for t, ps := range parts {
		for _, p := range ps {
			tp := topicPart{t, p}
			if st := g.parts[tp]; st != nil {
				st.dropped = true
				delete(g.parts, tp)
			}
		}
	}
	g.buf = slices.DeleteFunc(g.buf[g.next:], func(r *kgo.Record) bool {
		return g.parts[topicPart{r.Topic, r.Partition}] == nil
	})
	g.next = 0
}

func (g *groupSub) commitLoop() {
	defer close(g.loopDone)
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			if err := g.commit(nil); err != nil {
				g.log.Warn("kafka: offset commit failed; retrying at the next interval", "error", err)
			}
		}
	}
}

// commit commits every held partition (or those of only) whose commit point
// moved.
func (g *groupSub) commit(only map[string][]int32) error {
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	return g.commitLocked(ctx, only)
}

func (g *groupSub) commitLocked(ctx context.Context, only map[string][]int32) error {
	type planned struct {
		st *partAcks
		at int64
	}
	plan := make(map[topicPart]planned)
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	g.mu.Lock()
	for tp, st := range g.parts {
		if only != nil && !slices.Contains(only[tp.topic], tp.partition) {
			continue
		}
		if at, ok := st.commitPoint(); ok {
			plan[tp] = planned{st, at}
			if offsets[tp.topic] == nil {
				offsets[tp.topic] = make(map[int32]kgo.EpochOffset)
			}
			offsets[tp.topic][tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
		}
	}
	g.mu.Unlock()
	if len(plan) == 0 {
		return nil
	}

	var cerr error
	done := make(map[topicPart]bool, len(plan))
	g.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					cerr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
					continue
				}
				done[topicPart{t.Topic, p.Partition}] = true
			}
		}
	})
	g.mu.Lock()
	for tp, pl := range plan {
		if done[tp] {
			pl.st.committed = max(pl.st.committed, pl.at)
		}
	}
	g.mu.Unlock()
	if cerr != nil {
		return fmt.Errorf("kafka: commit offsets: %w", cerr)
	}
	return nil
}

// Close commits what was acked, leaves the group and releases the client.
// Messages handed out but not acked are not committed: the group reads them
// again. It is idempotent; a Next blocked meanwhile returns ErrClosed.
func (g *groupSub) Close() error {
	g.closeOnce.Do(func() {
		g.closed.Store(true)
		close(g.stop)
		<-g.loopDone
		g.closeErr = g.commit(nil)
		g.cl.Close() // leaving the group runs onRevoked: acks that came meanwhile are committed too
		g.mu.Lock()
		for _, st := range g.parts {
			st.dropped = true
		}
		g.parts, g.buf, g.next = nil, nil, 0
		g.mu.Unlock()
	})
	return g.closeErr
}

// Interface guards.
var _ mediation.Subscription = (*groupSub)(nil)

// pinNewGroup commits the current end offsets for a group that has never
// committed on the consumed topics. Without it a new group asking for
// "latest" would start at the end as of its first join, a moment later,
// and miss what was produced in between: a webhook subscription must get
// everything produced after it was created.
func (e *Endpoint) pinNewGroup(ctx context.Context, group string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(e.cfg.RequestTimeout))
	defer cancel()
	committed, err := e.admin.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) { // not found: no commits
		return err
	}
	for _, t := range e.cfg.Consumer.Topics {
		if len(committed[t]) > 0 {
			return nil // the group has a position: it resumes from it
		}
	}
	ends, err := e.admin.ListEndOffsets(ctx, e.cfg.Consumer.Topics...)
	if err != nil {
		return err
	}
	if err := ends.Error(); err != nil {
		return err
	}
	resp, err := e.admin.CommitOffsets(ctx, group, ends.Offsets())
	if err != nil {
		return err
	}
	return resp.Error()
}

// DeleteGroup deletes the consumer group "<groupId>.<group>" and its
// committed offsets.
func (e *Endpoint) DeleteGroup(ctx context.Context, group string) error {
	name := e.cfg.Consumer.GroupID + "." + group
	resp, err := e.admin.DeleteGroup(ctx, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("kafka: delete consumer group %q: %w", name, err)
	}
	return nil
}

var _ mediation.GroupDeleter = (*Endpoint)(nil)
