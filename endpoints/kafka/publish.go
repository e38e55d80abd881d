package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicegw/sluice/mediation"
)

// producerOpts configures the shared client for publishing. The producer is
// idempotent (franz-go's default, acks from all in-sync replicas), so a
// retried batch is never written twice.
func producerOpts(p Producer) []kgo.Opt {
	timeout := time.Duration(p.DeliveryTimeout)
	return []kgo.Opt{
		kgo.DefaultProduceTopic(p.Topic),
		kgo.ProducerBatchCompression(codec(p.Compression)),
		kgo.ProducerLinger(time.Duration(p.Linger)),
		kgo.RecordDeliveryTimeout(timeout),
		kgo.ProduceRequestTimeout(min(timeout, 10*time.Second)),
	}
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// Publish writes msg to producer.topic and returns once every in-sync
// replica has it. It never waits longer than producer.deliveryTimeout: a
// cluster that does not confirm in time yields an error wrapping
// mediation.ErrUnavailable. Message.Metadata["topic"] is ignored (clients
// only reach the configured topic); on success Metadata gets the record's
// topic, partition and offset.
func (e *Endpoint) Publish(ctx context.Context, msg *mediation.Message) error {
	if !e.caps.Publish {
		return fmt.Errorf("kafka: publish: no producer.topic configured: %w", mediation.ErrUnsupported)
	}
	if e.closed.Load() {
		return fmt.Errorf("kafka: publish: %w", mediation.ErrClosed)
	}
	rec := e.record(msg)
	timeout := time.Duration(e.cfg.Producer.DeliveryTimeout)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// Buffered: when we stop waiting, the promise still completes later
	// without blocking franz-go.
	done := make(chan error, 1)
	e.client.Produce(pctx, rec, func(_ *kgo.Record, err error) { done <- err })
	var err error
	select {
	case err = <-done:
	case <-pctx.Done():
		err = pctx.Err()
	}
	if err != nil {
		return e.publishError(ctx, err, timeout)
	}

	md := make(map[string]string, len(msg.Metadata)+3)
	maps.Copy(md, msg.Metadata)
	md["topic"] = rec.Topic
	md["partition"] = strconv.FormatInt(int64(rec.Partition), 10)
	md["offset"] = strconv.FormatInt(rec.Offset, 10)
	msg.Metadata = md
	return nil
}

// record builds the Kafka record of msg. Every value of a multi-valued
// header becomes a record header of its own; the key header becomes the key
// unless the message already has one.
func (e *Endpoint) record(msg *mediation.Message) *kgo.Record {
	rec := &kgo.Record{
		Topic:     e.cfg.Producer.Topic,
		Key:       msg.Key,
		Value:     msg.Content,
		Timestamp: msg.Timestamp,
	}
	if len(msg.Headers) == 0 {
		return rec
	}
	keyHeader := e.cfg.Producer.KeyHeader
	names := slices.Sorted(maps.Keys(msg.Headers)) // a stable order on the wire
	n := 0
	for _, vs := range msg.Headers {
		n += len(vs)
	}
	rec.Headers = make([]kgo.RecordHeader, 0, n)
	for _, name := range names {
		values := msg.Headers[name]
		if keyHeader != "" && strings.EqualFold(name, keyHeader) {
			if rec.Key == nil && len(values) > 0 {
				rec.Key = []byte(values[0])
			}
			continue
		}
		for _, v := range values {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: name, Value: []byte(v)})
		}
	}
	return rec
}

// publishError says why a publish failed. Anything that retrying later may
// cure wraps ErrUnavailable; a refusal the cluster will repeat (record too
// large, not authorized, unknown topic) does not.
func (e *Endpoint) publishError(ctx context.Context, err error, timeout time.Duration) error {
	topic := e.cfg.Producer.Topic
	var ke *kerr.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("kafka: publish to %q: %w", topic, ctx.Err())
	case ctx.Err() != nil:
		return unavailable(fmt.Sprintf("publish to %q not confirmed before the request's deadline", topic), ctx.Err())
	case errors.Is(err, kgo.ErrClientClosed):
		return fmt.Errorf("kafka: publish to %q: %w", topic, mediation.ErrClosed)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrRecordTimeout):
		return unavailable(fmt.Sprintf("publish to %q not confirmed within %v", topic, timeout), err)
	case errors.As(err, &ke) && !ke.Retriable:
		return fmt.Errorf("kafka: publish to %q: %w", topic, err)
	}
	return unavailable(fmt.Sprintf("publish to %q", topic), err)
}
