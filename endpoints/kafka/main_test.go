package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait for something that must happen; generous,
// so that a busy machine does not fail a test.
const waitTimeout = 60 * time.Second

// testTopic is the topic every test cluster is seeded with, 3 partitions.
const testTopic = "t"

func newCluster(t testing.TB, topics ...string) *kfake.Cluster {
	t.Helper()
	if len(topics) == 0 {
		topics = []string{testTopic}
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// testConfig consumes and produces testTopic on c.
func testConfig(c *kfake.Cluster) *Config {
	cfg := DefaultConfig()
	cfg.BootstrapServers = c.ListenAddrs()
	cfg.Consumer.Topics = []string{testTopic}
	cfg.Producer.Topic = testTopic
	return cfg
}

func newEndpoint(t testing.TB, cfg *Config) *Endpoint {
	t.Helper()
	e, err := New(cfg, quietLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// produce writes n records to each listed partition of testTopic, values
// "p<partition>-<i>", with a plain franz-go client so that the reading side
// is tested independently of Publish. It returns after every record is
// acknowledged.
func produce(t testing.TB, c *kfake.Cluster, n int, partitions ...int32) {
	t.Helper()
	var recs []*kgo.Record
	for _, p := range partitions {
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: testTopic, Partition: p, Value: fmt.Appendf(nil, "p%d-%d", p, i)})
		}
	}
	produceRecords(t, c, recs...)
}

func produceRecords(t testing.TB, c *kfake.Cluster, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func subscribe(t testing.TB, e *Endpoint, req mediation.SubscribeRequest) mediation.Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sub, err := e.Subscribe(ctx, req)
	if err != nil {
		t.Fatalf("Subscribe(%+v): %v", req, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// next reads one message or fails the test.
func next(t testing.TB, sub mediation.Subscription) *mediation.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return m
}

func readN(t testing.TB, sub mediation.Subscription, n int) []*mediation.Message {
	t.Helper()
	out := make([]*mediation.Message, 0, n)
	for range n {
		out = append(out, next(t, sub))
	}
	return out
}

// pos renders a position for comparisons and messages.
func pos(p mediation.Position) string {
	return fmt.Sprintf("%s/%d/%d", p.Stream, p.Partition, p.Offset)
}

// cursorOf builds a cursor of next offsets per partition of testTopic.
func cursorOf(next map[int32]int64) mediation.Cursor {
	var c mediation.Cursor
	for p, o := range next {
		c.Set(mediation.Position{Stream: testTopic, Partition: p, Offset: o})
	}
	return c
}

func wantErrIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one wrapping %v", err, target)
	}
}
