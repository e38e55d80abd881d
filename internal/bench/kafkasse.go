package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	_ "github.com/sluicegw/sluice/plugins/standard"
)

const (
	kafkaSSEMessages = 200_000
	kafkaSSESize     = 100
	kafkaSSERounds   = 5
)

// benchKafkaSSE fills a single-partition kfake topic, then times a direct
// franz-go consumer reading it all, then one SSE client reading it all
// through the gateway from the same cluster.
func benchKafkaSSE() (row, error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "bench"))
	if err != nil {
		return row{}, err
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	if err := fill(addr, "bench", kafkaSSEMessages, kafkaSSESize); err != nil {
		return row{}, err
	}

	// Alternate the two readers over a few rounds and keep each one's
	// median, so that one hiccup of a busy machine does not decide.
	var direct, viaSSE []time.Duration
	for range kafkaSSERounds {
		d, err := timeDirect(addr, "bench", kafkaSSEMessages)
		if err != nil {
			return row{}, fmt.Errorf("direct consumer: %w", err)
		}
		s, err := timeSSE(addr, "bench", kafkaSSEMessages)
		if err != nil {
			return row{}, fmt.Errorf("sse: %w", err)
		}
		direct, viaSSE = append(direct, d), append(viaSSE, s)
	}
	rate := func(ds []time.Duration) float64 { return kafkaSSEMessages / median(ds).Seconds() }
	return row{
		Name:     fmt.Sprintf("Kafka → SSE, 200k × 100 B, 1 partition (msg/s, median of %d)", kafkaSSERounds),
		Sluice:   fmt.Sprintf("%.0f", rate(viaSSE)),
		Baseline: fmt.Sprintf("%.0f (franz-go consumer)", rate(direct)),
		Ratio:    fmt.Sprintf("%.2f", rate(viaSSE)/rate(direct)),
		Target:   "≥ 0.60",
	}, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func fill(addr, topic string, n, size int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	value := bytes.Repeat([]byte("x"), size)
	ctx := context.Background()
	errc := make(chan error, 1)
	for i := range n {
		v := append(fmt.Appendf(nil, "%08d", i), value[8:]...)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func timeDirect(addr, topic string, n int) (time.Duration, error) {
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if got == 0 && os.Getenv("BENCH_DEBUG") != "" {
			fmt.Fprintln(os.Stderr, "direct first fetch after", time.Since(start))
		}
		fs.EachRecord(func(*kgo.Record) { got++ })
	}
	return time.Since(start), nil
}

func timeSSE(addr, topic string, n int) (time.Duration, error) {
	yaml := fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: bench
    listeners:
      - {type: http, paths: [/bench], entrypoints: [{type: sse}]}
    endpointGroups:
      - name: default
        type: kafka
        sharedConfiguration:
          bootstrapServers: [%q]
          consumer: {topics: [%s], autoOffsetReset: earliest}
        endpoints: [{name: k}]
`, addr, topic)
	srv, stop, err := startGateway(yaml)
	if err != nil {
		return 0, err
	}
	defer stop()

	start := time.Now()
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+"/bench", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("%s: %s", resp.Status, b)
	}
	// Count events as the direct consumer counts records: as cheaply as
	// possible, so that the client's own work weighs little in the ratio.
	// Every event has exactly one "data:" line (the content has no newline).
	buf := make([]byte, 256<<10)
	marker := []byte("\ndata: ")
	carry := 0 // bytes kept from the previous read, in case a marker straddles
	got := 0
	for got < n {
		k, err := resp.Body.Read(buf[carry:])
		if k == 0 && err != nil {
			return 0, fmt.Errorf("after %d events: %w", got, err)
		}
		chunk := buf[:carry+k]
		if got == 0 && os.Getenv("BENCH_DEBUG") != "" {
			fmt.Fprintln(os.Stderr, "sse first bytes after", time.Since(start))
		}
		got += bytes.Count(chunk, marker)
		carry = min(len(marker)-1, len(chunk))
		copy(buf, chunk[len(chunk)-carry:])
	}
	return time.Since(start), nil
}
