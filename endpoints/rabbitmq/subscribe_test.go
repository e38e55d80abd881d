package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/internal/testutil/tcpproxy"
	"github.com/sluicegw/sluice/mediation"
)

// A message published by a plain client reaches a subscription with its
// body, headers (AMQP types as text), properties and metadata.
func TestSubscribeYieldsHeaders(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	ex := uniqueName(t, "ex")
	r.exchange(ex, ExchangeTopic)
	cfg := testConfig(sharedURL, ex)
	cfg.Consumer.RoutingKey = "orders.*"
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{QoS: mediation.QoSAtLeastOnce})
	if !sub.Start().IsZero() {
		t.Fatalf("Start = %v, want empty", sub.Start())
	}

	ts := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	r.publish(ex, "orders.paid", amqp.Publishing{
		Body:        []byte("paid"),
		ContentType: "text/plain",
		MessageId:   "m-1",
		Timestamp:   ts,
		Headers:     amqp.Table{"X-Tenant": "acme", "x-count": int32(3), "x-tags": []any{"a", "b"}},
	})
	r.publishText(ex, "other.paid", "not bound")
	r.publish(ex, "orders.new", amqp.Publishing{Body: []byte("new")})

	m := next(t, sub)
	m.Ack()
	switch {
	case string(m.Content) != "paid":
		t.Fatalf("content %q", m.Content)
	case m.ID != "m-1" || !m.Timestamp.Equal(ts):
		t.Errorf("id %q timestamp %v", m.ID, m.Timestamp)
	case m.Headers.Get("x-tenant") != "acme" || m.Headers.Get("x-count") != "3" || m.Headers.Get("content-type") != "text/plain":
		t.Errorf("headers %v", m.Headers)
	case !slices.Equal(m.Headers.Values("x-tags"), []string{"a", "b"}):
		t.Errorf("x-tags %q", m.Headers.Values("x-tags"))
	case m.Metadata["exchange"] != ex || m.Metadata["routingKey"] != "orders.paid" || m.Metadata["redelivered"] != "false":
		t.Errorf("metadata %v", m.Metadata)
	}

	// Without a message id, the ID is the message's number; without a
	// timestamp, the time it arrived.
	m = next(t, sub)
	m.Ack()
	if string(m.Content) != "new" || m.ID != "2" || m.Timestamp.IsZero() || m.Headers != nil {
		t.Fatalf("second message %q id %q ts %v headers %v", m.Content, m.ID, m.Timestamp, m.Headers)
	}
	expectQuiet(t, sub, 300*time.Millisecond)
}

// Every subscription without a group gets every message (a queue of its
// own); subscriptions of one group share a durable queue and split the
// messages between them, none twice.
func TestSubscribeFanOutAndCompetingConsumers(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	ex := uniqueName(t, "ex")
	r.exchange(ex, ExchangeFanout)
	cfg := testConfig(sharedURL, ex)
	cfg.Consumer.ExchangeType = ExchangeFanout
	e := newEndpoint(t, cfg)
	group := uniqueName(t, "g")
	deleteAtEnd(t, "", groupQueuePrefix+group)

	own1 := subscribe(t, e, mediation.SubscribeRequest{})
	own2 := subscribe(t, e, mediation.SubscribeRequest{})
	g1 := subscribe(t, e, mediation.SubscribeRequest{Group: group})
	g2 := subscribe(t, e, mediation.SubscribeRequest{Group: group})

	const n = 20
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("m%02d", i))
	}
	r.publishText(ex, "", want...)

	for _, sub := range []mediation.Subscription{own1, own2} {
		var got []string
		for range n {
			m := next(t, sub)
			m.Ack()
			got = append(got, string(m.Content))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("own subscription got %q", got)
		}
	}

	// Read both group members at once until all n arrived.
	var mu sync.Mutex
	per := map[mediation.Subscription][]string{}
	total := 0
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, sub := range []mediation.Subscription{g1, g2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				m.Ack()
				mu.Lock()
				per[sub] = append(per[sub], string(m.Content))
				total++
				if total == n {
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	all := append(slices.Clone(per[g1]), per[g2]...)
	slices.Sort(all)
	if !slices.Equal(all, want) {
		t.Fatalf("the group got %q, want each of %q once", all, want)
	}
	if len(per[g1]) == 0 || len(per[g2]) == 0 {
		t.Fatalf("one member got everything: %d and %d", len(per[g1]), len(per[g2]))
	}
}

// At least once with a group: what was acked is gone, what was nacked comes
// back at once, and what was not acked when the subscription closed comes
// back to the next subscription of the group.
func TestSubscribeAtLeastOnce(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	ex := uniqueName(t, "ex")
	r.exchange(ex, ExchangeTopic)
	e := newEndpoint(t, testConfig(sharedURL, ex))
	group := uniqueName(t, "g")
	deleteAtEnd(t, "", groupQueuePrefix+group)
	req := mediation.SubscribeRequest{Group: group, QoS: mediation.QoSAtLeastOnce}

	sub := subscribe(t, e, req)
	r.publishText(ex, "k", "m0", "m1", "m2", "m3", "m4")
	ms := map[string]*mediation.Message{}
	for range 5 {
		m := next(t, sub)
		ms[string(m.Content)] = m
	}
	ms["m0"].Ack()
	ms["m1"].Ack()
	ms["m2"].Nack(errors.New("client went away"))
	again := next(t, sub)
	if string(again.Content) != "m2" || again.Metadata["redelivered"] != "true" {
		t.Fatalf("after a nack got %q redelivered=%s, want m2 again", again.Content, again.Metadata["redelivered"])
	}
	// m2 (again), m3 and m4 are not acked: closing returns them.
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := sub.Next(context.Background()); !errors.Is(err, mediation.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	ms["m3"].Ack() // too late: ignored, the message is back in the queue

	sub2 := subscribe(t, e, req)
	var got []string
	for range 3 {
		m := next(t, sub2)
		if m.Metadata["redelivered"] != "true" {
			t.Errorf("%q not marked redelivered", m.Content)
		}
		m.Ack()
		got = append(got, string(m.Content))
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"m2", "m3", "m4"}) {
		t.Fatalf("the group's next subscription got %q, want m2 m3 m4", got)
	}
	expectQuiet(t, sub2, 500*time.Millisecond)
}

// With consumer.queue, subscriptions consume that durable queue, declared
// and bound to the exchange; with declare off it must exist.
func TestSubscribeConfiguredQueue(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	ex, q := uniqueName(t, "ex"), uniqueName(t, "q")
	r.exchange(ex, ExchangeDirect)
	deleteAtEnd(t, "", q)
	cfg := testConfig(sharedURL, ex)
	cfg.Consumer.ExchangeType = ExchangeDirect
	cfg.Consumer.RoutingKey = "k"
	cfg.Consumer.Queue = q
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{Group: "ignored-with-a-queue"})
	r.publishText(ex, "k", "one")
	if m := next(t, sub); string(m.Content) != "one" {
		t.Fatalf("got %q", m.Content)
	} else {
		m.Ack()
	}
	_ = sub.Close()
	// The queue outlives its subscriptions and keeps what arrives meanwhile.
	r.publishText(ex, "k", "two")
	if d, ok := r.get(q); !ok || string(d.Body) != "two" {
		t.Fatalf("queue holds %q %v", d.Body, ok)
	}

	cfg = DefaultConfig()
	cfg.URL = sharedURL
	cfg.Declare = false
	cfg.Consumer.Queue = uniqueName(t, "missing")
	e2 := newEndpoint(t, cfg)
	_, err := e2.Subscribe(context.Background(), mediation.SubscribeRequest{})
	if err == nil || !strings.Contains(err.Error(), "NOT_FOUND") || errors.Is(err, mediation.ErrUnavailable) {
		t.Fatalf("Subscribe to a missing queue: %v, want NOT_FOUND", err)
	}
}

func TestSubscribeRefusesReplay(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.URL = "amqp://127.0.0.1:1/"
	cfg.Consumer.Exchange = "e"
	e := newEndpoint(t, cfg)
	ctx := context.Background()
	if _, err := e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartCursor}); !errors.Is(err, mediation.ErrBadCursor) {
		t.Fatalf("cursor: %v", err)
	}
	for _, start := range []mediation.StartKind{mediation.StartEarliest, mediation.StartTime} {
		if _, err := e.Subscribe(ctx, mediation.SubscribeRequest{Start: start}); !errors.Is(err, mediation.ErrUnsupported) {
			t.Fatalf("start %d: %v", start, err)
		}
	}
	if _, err := e.Subscribe(ctx, mediation.SubscribeRequest{Group: strings.Repeat("g", 250)}); err == nil {
		t.Fatal("a group too long for a queue name was accepted")
	}

	cfg = DefaultConfig()
	cfg.URL = "amqp://127.0.0.1:1/"
	cfg.Producer.Exchange = "e"
	e2 := newEndpoint(t, cfg)
	if _, err := e2.Subscribe(ctx, mediation.SubscribeRequest{}); !errors.Is(err, mediation.ErrUnsupported) {
		t.Fatalf("publish-only endpoint: %v", err)
	}
}

// A broker that cannot be reached fails Subscribe with ErrUnavailable within
// connectTimeout.
func TestSubscribeUnavailable(t *testing.T) {
	t.Parallel()
	proxy := tcpproxy.New(t, "127.0.0.1:1")
	proxy.Pause()
	cfg := testConfig("amqp://guest:guest@"+proxy.Addr()+"/", "ex")
	cfg.ConnectTimeout = Duration(500 * time.Millisecond)
	e := newEndpoint(t, cfg)
	_, err := e.Subscribe(context.Background(), mediation.SubscribeRequest{})
	if !errors.Is(err, mediation.ErrUnavailable) {
		t.Fatalf("Subscribe error = %v, want ErrUnavailable", err)
	}
}

// A dropped connection in the middle of a stream: every subscription
// reconnects and goes on without Next failing. A group's durable queue
// keeps what was published meanwhile and redelivers what was not acked; a
// subscription's own queue starts afresh.
func TestSubscribeSurvivesDroppedConnection(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	proxy := tcpproxy.New(t, sharedBroker)
	ex := uniqueName(t, "ex")
	r.exchange(ex, ExchangeTopic)
	cfg := testConfig("amqp://guest:guest@"+proxy.Addr()+"/", ex)
	e := newEndpoint(t, cfg)
	group := uniqueName(t, "g")
	deleteAtEnd(t, "", groupQueuePrefix+group)
	durable := subscribe(t, e, mediation.SubscribeRequest{Group: group, QoS: mediation.QoSAtLeastOnce})
	own := subscribe(t, e, mediation.SubscribeRequest{})

	r.publishText(ex, "k", "a1", "a2")
	for _, sub := range []mediation.Subscription{durable, own} {
		for _, want := range []string{"a1", "a2"} {
			m := next(t, sub)
			if string(m.Content) != want {
				t.Fatalf("got %q, want %q", m.Content, want)
			}
			if want == "a1" || sub == own {
				m.Ack()
			} // a2 stays unacked on the durable subscription
		}
	}
	accepted := proxy.Accepted()
	proxy.CutAll()
	r.publishText(ex, "k", "b1", "b2") // straight to the broker, while the endpoint is cut off

	// The durable queue redelivers a2 and keeps b1 and b2. a1 may come
	// again too: its ack may have been cut off on the way.
	missing := map[string]bool{"a2": true, "b1": true, "b2": true}
	for len(missing) > 0 {
		m := next(t, durable)
		m.Ack()
		body := string(m.Content)
		switch {
		case body == "a2" && m.Metadata["redelivered"] != "true":
			t.Fatalf("a2 was not acked before the cut but is not marked redelivered")
		case !missing[body] && body != "a1":
			t.Fatalf("durable subscription after the cut got %q (still missing %v)", body, missing)
		}
		delete(missing, body)
	}

	// The own queue was deleted with the connection: probe until the
	// re-created one receives, then the stream goes on in order.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for i := 0; ; i++ {
		probe := fmt.Sprintf("probe%d", i)
		r.publishText(ex, "k", probe)
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m, err := own.Next(pctx)
		pcancel()
		if err == nil {
			m.Ack()
			if !strings.HasPrefix(string(m.Content), "probe") && !strings.HasPrefix(string(m.Content), "b") {
				t.Fatalf("own subscription got %q", m.Content)
			}
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			t.Fatalf("own subscription after the cut: %v", err)
		}
	}
	// Both go on: c1 arrives after whatever probes (or, on the durable
	// queue, duplicates) each got.
	r.publishText(ex, "k", "c1")
	for _, sub := range []mediation.Subscription{durable, own} {
		for {
			m := next(t, sub)
			m.Ack()
			if string(m.Content) == "c1" {
				break
			}
			dup := sub == durable && slices.Contains([]string{"a1", "a2", "b1", "b2"}, string(m.Content))
			if !strings.HasPrefix(string(m.Content), "probe") && !dup {
				t.Fatalf("after recovery got %q, want probes then c1", m.Content)
			}
		}
	}
	if proxy.Accepted() <= accepted {
		t.Fatal("no new connection went through the proxy")
	}
}

// Closing the endpoint ends subscriptions still open with ErrClosed, and a
// blocked Next returns when its context ends.
func TestSubscribeEndpointClose(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	ex := uniqueName(t, "ex")
	r.exchange(ex, ExchangeTopic)
	e, err := New(testConfig(sharedURL, ex), Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, e, mediation.SubscribeRequest{})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with an ended context: %v", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := sub.Next(context.Background())
		done <- err
	}()
	cctx, ccancel := context.WithTimeout(context.Background(), waitTimeout)
	defer ccancel()
	if err := e.Close(cctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, mediation.ErrClosed) {
			t.Fatalf("Next after the endpoint closed: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Next still blocked after the endpoint closed")
	}
}
