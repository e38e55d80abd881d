package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	webhookMessages = 20_000
	webhookSize     = 100
	webhookKeys     = 1_000 // distinct keys, so that per-key lanes spread
	webhookRounds   = 5
)

// benchWebhook returns a benchmark of one webhook subscription delivering
// a pre-filled Kafka topic to a local receiver with the given
// maxConcurrentDeliveries (1: in order), against a plain net/http client
// POSTing the same bodies to the same receiver with as many in flight.
func benchWebhook(concurrency int) func() (row, error) {
	return func() (row, error) {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "bench"))
		if err != nil {
			return row{}, err
		}
		defer cluster.Close()
		addr := cluster.ListenAddrs()[0]
		if err := fillKeyed(addr, "bench", webhookMessages, webhookSize, webhookKeys); err != nil {
			return row{}, err
		}
		recv, err := startWebhookReceiver(webhookMessages)
		if err != nil {
			return row{}, err
		}
		defer recv.close()

		var direct, gateway []time.Duration
		for range webhookRounds {
			d, err := timeDirectPOSTs(recv, concurrency)
			if err != nil {
				return row{}, fmt.Errorf("direct client: %w", err)
			}
			g, err := timeWebhook(addr, recv, concurrency)
			if err != nil {
				return row{}, fmt.Errorf("gateway: %w", err)
			}
			direct, gateway = append(direct, d), append(gateway, g)
		}
		rate := func(ds []time.Duration) float64 { return webhookMessages / median(ds).Seconds() }
		mode := "in order"
		if concurrency > 1 {
			mode = fmt.Sprintf("maxConcurrentDeliveries: %d", concurrency)
		}
		return row{
			Name:     fmt.Sprintf("Kafka → webhook, %s, 20k × 100 B (deliveries/s, median of %d)", mode, webhookRounds),
			Sluice:   fmt.Sprintf("%.0f", rate(gateway)),
			Baseline: fmt.Sprintf("%.0f (net/http client, %d in flight)", rate(direct), concurrency),
			Ratio:    fmt.Sprintf("%.2f", rate(gateway)/rate(direct)),
			Target:   "— (none set)",
		}, nil
	}
}

// fillKeyed writes n records of size bytes whose values start with their
// index and whose keys cycle through keys distinct values.
func fillKeyed(addr, topic string, n, size, keys int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx := context.Background()
	errc := make(chan error, 1)
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "key-%d", i%keys), Value: webhookBody(i, size)},
			func(_ *kgo.Record, err error) {
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

// webhookBody is message i: its index in eight digits, then padding.
func webhookBody(i, size int) []byte {
	return append(fmt.Appendf(nil, "%08d", i), bytes.Repeat([]byte("x"), size-8)...)
}

// webhookReceiver is the callback both sides POST to. It answers 204 and
// notes which message indexes arrived, so that a round ends when every
// message came at least once (webhooks are at-least-once); it checks
// nothing costly, so that its own work weighs little in the ratio.
type webhookReceiver struct {
	url   string
	srv   *http.Server
	seen  []atomic.Bool
	left  atomic.Int64
	dups  atomic.Int64
	first atomic.Int64 // unix nanoseconds of the round's first arrival
	done  chan struct{}
}

func startWebhookReceiver(n int) (*webhookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &webhookReceiver{url: "http://" + ln.Addr().String() + "/hook", seen: make([]atomic.Bool, n)}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *webhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	var buf [webhookSize]byte
	k, _ := io.ReadFull(req.Body, buf[:])
	i, err := strconv.Atoi(string(buf[:min(k, 8)]))
	if err != nil || i < 0 || i >= len(r.seen) {
		http.Error(w, "not a benchmark message", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	r.first.CompareAndSwap(0, time.Now().UnixNano())
	if r.seen[i].Swap(true) {
		r.dups.Add(1)
		return
	}
	if r.left.Add(-1) == 0 {
		close(r.done)
	}
}

// reset readies the receiver for a round.
func (r *webhookReceiver) reset() {
	for i := range r.seen {
		r.seen[i].Store(false)
	}
	r.dups.Store(0)
	r.first.Store(0)
	r.done = make(chan struct{})
	r.left.Store(int64(len(r.seen)))
}

// wait returns when every message arrived, or an error after timeout.
func (r *webhookReceiver) wait(timeout time.Duration) error {
	select {
	case <-r.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%d of %d messages did not arrive within %s", r.left.Load(), len(r.seen), timeout)
	}
}

func (r *webhookReceiver) close() { _ = r.srv.Close() }

// timeDirectPOSTs POSTs every body to the receiver with a plain net/http
// client, concurrency requests in flight.
func timeDirectPOSTs(recv *webhookReceiver, concurrency int) (time.Duration, error) {
	recv.reset()
	tr := &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	d, err := runConcurrent(webhookMessages, concurrency, func(i int) error {
		resp, err := client.Post(recv.url, "application/octet-stream", bytes.NewReader(webhookBody(i, webhookSize)))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("receiver answered %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return d, recv.wait(time.Second)
}

// timeWebhook starts a gateway with a webhook API on the topic, then times
// from creating a subscription (maxConcurrentDeliveries: concurrency) until
// every message arrived at the receiver.
func timeWebhook(kafkaAddr string, recv *webhookReceiver, concurrency int) (time.Duration, error) {
	yaml := fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "127.0.0.1:0", token: bench}
  webhooks: {allowPrivateNetworks: true}
apis:
  - id: bench
    type: message
    listeners:
      - type: subscription
        entrypoints: [{type: webhook, qos: at-least-once}]
    endpointGroups:
      - name: default
        type: kafka
        sharedConfiguration:
          bootstrapServers: [%q]
          consumer: {topics: [bench], autoOffsetReset: earliest}
        endpoints: [{name: k}]
    plans:
      - {name: hooks, mode: push}
`, kafkaAddr)
	srv, stop, err := startGateway(yaml)
	if err != nil {
		return 0, err
	}
	defer stop()
	admin := "http://" + srv.AdminAddr()

	recv.reset()
	start := time.Now()
	body := fmt.Sprintf(`{"plan": "hooks", "configuration": {"callbackUrl": %q, "maxConcurrentDeliveries": %d}}`, recv.url, concurrency)
	var created struct{ ID string }
	if err := adminJSON(http.MethodPost, admin+"/v1/apis/bench/subscriptions", body, http.StatusCreated, &created); err != nil {
		return 0, fmt.Errorf("create subscription: %w", err)
	}
	if err := recv.wait(5 * time.Minute); err != nil {
		var status json.RawMessage
		_ = adminJSON(http.MethodGet, admin+"/v1/subscriptions/"+created.ID, "", http.StatusOK, &status)
		return 0, fmt.Errorf("%w; subscription: %s", err, status)
	}
	elapsed := time.Since(start)
	if os.Getenv("BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "webhook: all in %s, first after %s, %d duplicates\n",
			elapsed, time.Unix(0, recv.first.Load()).Sub(start), recv.dups.Load())
	}
	return elapsed, nil
}

// adminJSON calls the management API and decodes its answer into out.
func adminJSON(method, url, body string, want int, out any) error {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer bench")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s %s", method, url, resp.Status, b)
	}
	return json.Unmarshal(b, out)
}
