package devbrokers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// feedDeliveryTimeout bounds one demo record's delivery, so that a feed
// never stalls for good on a record the cluster will not take.
const feedDeliveryTimeout = 10 * time.Second

// Feed produces a record into the embedded Kafka topic right away and then
// once every interval, until ctx ends or Close is called; it then returns
// nil. Record i (counting from 1) has key i and value fn(i); a nil fn
// produces DemoOrder(i, now). The topic is created, with
// Options.DefaultPartitions partitions, when it does not exist.
//
// Feed blocks: run it in its own goroutine. A record that fails is logged at
// warn level on Options.Logger (once per run of failures) and the feed goes
// on, so that a demo survives a hiccup.
func (b *Brokers) Feed(ctx context.Context, topic string, every time.Duration, fn func(i int) []byte) error {
	if topic == "" {
		return errors.New("devbrokers: feed: empty topic")
	}
	if every <= 0 {
		return fmt.Errorf("devbrokers: feed: interval must be positive, got %s", every)
	}
	if fn == nil {
		fn = func(i int) []byte { return DemoOrder(i, time.Now()) }
	}
	ctx, done, err := b.track(ctx)
	if err != nil {
		return err
	}
	defer done()

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.kafkaAddr),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordDeliveryTimeout(feedDeliveryTimeout),
	)
	if err != nil {
		return fmt.Errorf("devbrokers: feed: %w", err)
	}
	defer cl.Close()

	log := b.log.With("topic", topic)
	if err := b.ensureTopic(ctx, cl, topic); err != nil && ctx.Err() == nil {
		log.Warn("devbrokers: feed could not create its topic", "error", err)
	}

	tick := time.NewTicker(every)
	defer tick.Stop()
	failing := false
	for i := 1; ; i++ {
		rec := &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: fn(i)}
		err := cl.ProduceSync(ctx, rec).FirstErr()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			log.Warn("devbrokers: feed produce failed", "record", i, "error", err)
			failing = true
		case err == nil && failing:
			log.Info("devbrokers: feed produces again", "record", i)
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// ensureTopic creates topic with the default partition count, accepting
// that it may already exist.
func (b *Brokers) ensureTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = b.defParts
	rt.ReplicationFactor = -1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return err
		}
	}
	return nil
}

// DemoOrder returns the JSON of demo order i at time at, as `sluice dev`
// streams it:
//
//	{"id":1,"status":"paid","amount":79.19,"at":"2026-01-02T15:04:05Z"}
//
// Every third order is "pending", the others "paid", so that a
// message-filter on status visibly drops some. Amounts vary with i but are
// the same on every run.
func DemoOrder(i int, at time.Time) []byte {
	status := "paid"
	if i%3 == 0 {
		status = "pending"
	}
	cents := 1000 + (i*7919)%99000
	out, _ := json.Marshal(demoOrder{
		ID:     i,
		Status: status,
		Amount: json.Number(fmt.Sprintf("%d.%02d", cents/100, cents%100)),
		At:     at.UTC().Format(time.RFC3339),
	})
	return out
}

// demoOrder is the shape of DemoOrder's JSON. Amount is a json.Number so
// that it prints with exactly two decimals, as money does.
type demoOrder struct {
	ID     int         `json:"id"`
	Status string      `json:"status"`
	Amount json.Number `json:"amount"`
	At     string      `json:"at"`
}
