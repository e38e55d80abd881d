package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicegw/sluice/mediation"
)

// topicPartitions lists the partitions of every consumed topic, sorted.
type topicPartitions map[string][]int32

// consumedPartitions asks the cluster for the partitions of the configured
// topics, or of the topics that match topicPattern now.
func (e *Endpoint) consumedPartitions(ctx context.Context) (topicPartitions, error) {
	var (
		details kadm.TopicDetails
		err     error
	)
	if e.pattern != nil {
		details, err = e.admin.ListTopics(ctx)
	} else {
		details, err = e.admin.ListTopics(ctx, e.cfg.Consumer.Topics...)
	}
	if err != nil {
		return nil, unavailable("list topics", err)
	}
	tps := make(topicPartitions, len(details))
	for name, td := range details {
		if e.pattern != nil && !e.pattern.MatchString(name) {
			continue
		}
		if td.Err != nil {
			if e.pattern != nil {
				continue // a matching topic being created or deleted: not ours yet
			}
			if errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
				return nil, unavailable(fmt.Sprintf("topic %q does not exist", name), td.Err)
			}
			return nil, unavailable(fmt.Sprintf("topic %q", name), td.Err)
		}
		tps[name] = slices.Sorted(maps.Keys(td.Partitions))
	}
	return tps, nil
}

// resolveStart returns, for every consumed partition, the next offset a new
// subscription reads: the exact position Start reports and the consumer is
// told, so that the cursor of the first message and the start agree.
//
// A cursor's partitions resume at their next offset (at the log start when
// retention deleted it); partitions it does not list start at the log
// start, so a partition added since the cursor was made loses nothing. A
// cursor that names a partition this endpoint does not consume, or an
// offset past a partition's end, wraps mediation.ErrBadCursor.
func (e *Endpoint) resolveStart(ctx context.Context, req mediation.SubscribeRequest) (mediation.Cursor, error) {
	ctx, cancel := e.requestContext(ctx)
	defer cancel()
	tps, err := e.consumedPartitions(ctx)
	if err != nil {
		return mediation.Cursor{}, err
	}
	if req.Start == mediation.StartCursor {
		if err := checkCursor(req.Cursor, tps); err != nil {
			return mediation.Cursor{}, err
		}
	}
	if len(tps) == 0 {
		return mediation.Cursor{}, nil // no matching topic: nothing to list (an empty list means every topic)
	}
	topics := slices.Sorted(maps.Keys(tps))
	list := func(what string, f func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
		l, err := f(ctx, topics...)
		if err == nil {
			err = l.Error()
		}
		if err != nil {
			return nil, unavailable("list "+what+" offsets", err)
		}
		return l, nil
	}

	var first, ends kadm.ListedOffsets
	switch req.Start {
	case mediation.StartEarliest:
		first, err = list("start", e.admin.ListStartOffsets)
	case mediation.StartLatest:
		first, err = list("end", e.admin.ListEndOffsets)
	case mediation.StartTime:
		afterMilli := func(ctx context.Context, ts ...string) (kadm.ListedOffsets, error) {
			return e.admin.ListOffsetsAfterMilli(ctx, req.Time.UnixMilli(), ts...)
		}
		if first, err = list("time", afterMilli); err == nil {
			ends, err = list("end", e.admin.ListEndOffsets)
		}
	case mediation.StartCursor:
		if first, err = list("start", e.admin.ListStartOffsets); err == nil {
			ends, err = list("end", e.admin.ListEndOffsets)
		}
	default:
		return mediation.Cursor{}, fmt.Errorf("kafka: unknown start %d: %w", req.Start, mediation.ErrUnsupported)
	}
	if err != nil {
		return mediation.Cursor{}, err
	}

	var start mediation.Cursor
	for _, t := range topics {
		for _, p := range tps[t] {
			o, ok := first.Lookup(t, p)
			if !ok {
				return mediation.Cursor{}, unavailable(fmt.Sprintf("offsets of %s/%d", t, p), errors.New("missing from the broker's answer"))
			}
			next := o.Offset
			switch req.Start {
			case mediation.StartTime:
				if next < 0 { // nothing at or after the time: start at the end
					end, _ := ends.Lookup(t, p)
					next = end.Offset
				}
			case mediation.StartCursor:
				if c, ok := req.Cursor.Next(t, p); ok {
					end, _ := ends.Lookup(t, p)
					if c > end.Offset {
						return mediation.Cursor{}, fmt.Errorf("%w: offset %d of %s/%d is past the end of the partition (%d)", mediation.ErrBadCursor, c, t, p, end.Offset)
					}
					next = max(c, o.Offset) // below the log start: retention deleted it
				}
			}
			start.Set(mediation.Position{Stream: t, Partition: p, Offset: max(next, 0)})
		}
	}
	return start, nil
}

// checkCursor refuses a cursor that names a topic or partition this
// endpoint does not consume.
func checkCursor(c mediation.Cursor, tps topicPartitions) error {
	for _, p := range c.Positions() {
		parts, ok := tps[p.Stream]
		if !ok {
			return fmt.Errorf("%w: it names topic %q, which this API does not consume", mediation.ErrBadCursor, p.Stream)
		}
		if _, ok := slices.BinarySearch(parts, p.Partition); !ok {
			return fmt.Errorf("%w: it names partition %d of topic %q, which does not exist", mediation.ErrBadCursor, p.Partition, p.Stream)
		}
	}
	return nil
}
