package kafka

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicegw/sluice/mediation"
)

// benchRecords is how many records a benchmark cluster holds; a benchmark
// re-reads them from the start as often as b.N needs.
const benchRecords = 100_000

// benchCluster is a cluster with benchRecords 100-byte keyed records spread
// over the 3 partitions of testTopic.
func benchCluster(b *testing.B) *kfake.Cluster {
	b.Helper()
	c := newCluster(b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	value := make([]byte, 100)
	for i := range benchRecords {
		cl.Produce(ctx, &kgo.Record{Topic: testTopic, Key: fmt.Appendf(nil, "k%d", i%64), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkSubscribeNext measures the per-message cost of a subscription:
// fetch, decode, and the message built for the engine.
func BenchmarkSubscribeNext(b *testing.B) {
	c := benchCluster(b)
	e := newEndpoint(b, testConfig(c))
	ctx := context.Background()
	var sub mediation.Subscription
	left := 0
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if left == 0 {
			b.StopTimer()
			if sub != nil {
				_ = sub.Close()
			}
			var err error
			if sub, err = e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartEarliest}); err != nil {
				b.Fatal(err)
			}
			left = benchRecords
			b.StartTimer()
		}
		m, err := sub.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		m.Ack()
		left--
	}
	b.StopTimer()
	_ = sub.Close()
}

// BenchmarkDirectFranzGo is the baseline: a bare franz-go consumer polling
// the same records, touching each one.
func BenchmarkDirectFranzGo(b *testing.B) {
	c := benchCluster(b)
	ctx := context.Background()
	var cl *kgo.Client
	var recs []*kgo.Record
	left, sum := 0, 0
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if left == 0 {
			b.StopTimer()
			if cl != nil {
				cl.Close()
			}
			var err error
			cl, err = kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(testTopic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(1<<20))
			if err != nil {
				b.Fatal(err)
			}
			left = benchRecords
			b.StartTimer()
		}
		if len(recs) == 0 {
			fs := cl.PollRecords(ctx, pollBatch)
			if err := fs.Err0(); err != nil {
				b.Fatal(err)
			}
			recs = fs.Records()
		}
		sum += len(recs[0].Value)
		recs = recs[1:]
		left--
	}
	b.StopTimer()
	cl.Close()
	_ = sum
}
