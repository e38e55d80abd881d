package rabbitmq

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/internal/testutil/tcpproxy"
	"github.com/sluicegw/sluice/mediation"
)

// A publish returns only once the broker confirmed the message: right after
// it, the message is in the bound queue, with headers, properties and the
// routing key a plain AMQP client expects.
func TestPublishLandsWithHeaders(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	ex, q := uniqueName(t, "ex"), uniqueName(t, "q")
	e := newEndpoint(t, testConfig(sharedURL, ex)) // declares the exchange
	deleteAtEnd(t, ex, "")
	waitExchange(t, ex)
	r.queue(q, ex, "test.#")

	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	msg := &mediation.Message{
		ID:        "order-1",
		Content:   []byte(`{"id":1}`),
		Timestamp: ts,
		Headers: mediation.Headers{
			"content-type": {"application/json"},
			"x-tenant":     {"acme"},
			"x-tags":       {"a", "b"},
		},
	}
	publish(t, e, msg)
	d, ok := r.get(q) // no waiting: the confirm came after the enqueue
	if !ok {
		t.Fatal("the queue is empty right after Publish returned")
	}
	switch {
	case string(d.Body) != `{"id":1}`:
		t.Errorf("body %q", d.Body)
	case d.RoutingKey != "test.key" || d.Exchange != ex:
		t.Errorf("routed by %q to %q", d.RoutingKey, d.Exchange)
	case d.ContentType != "application/json":
		t.Errorf("content type %q", d.ContentType)
	case d.MessageId != "order-1":
		t.Errorf("message id %q", d.MessageId)
	case !d.Timestamp.Equal(ts):
		t.Errorf("timestamp %v", d.Timestamp)
	case d.DeliveryMode != amqp.Persistent:
		t.Errorf("delivery mode %d", d.DeliveryMode)
	case d.Headers["x-tenant"] != "acme":
		t.Errorf("x-tenant = %#v", d.Headers["x-tenant"])
	}
	if tags, _ := d.Headers["x-tags"].([]any); len(tags) != 2 || tags[0] != "a" || tags[1] != "b" {
		t.Errorf("x-tags = %#v", d.Headers["x-tags"])
	}
	if _, ok := d.Headers["content-type"]; ok {
		t.Errorf("content-type is in the table as well as the property")
	}

	// A message without ID gets a fresh one each time; transient when asked.
	e2cfg := testConfig(sharedURL, ex)
	e2cfg.Producer.Persistent = false
	e2 := newEndpoint(t, e2cfg)
	var ids []string
	for range 2 {
		publish(t, e2, mediation.NewMessage([]byte("x")))
		d, ok := r.get(q)
		if !ok {
			t.Fatal("queue empty after Publish")
		}
		if d.DeliveryMode == amqp.Persistent {
			t.Errorf("persistent although producer.persistent is false")
		}
		ids = append(ids, d.MessageId)
	}
	if ids[0] == "" || ids[0] == ids[1] {
		t.Fatalf("generated ids %q", ids)
	}
}

// waitExchange waits until the endpoint's publisher declared ex.
func waitExchange(t testing.TB, ex string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		conn, err := amqp.Dial(sharedURL)
		if err != nil {
			t.Fatal(err)
		}
		ch, _ := conn.Channel()
		err = ch.ExchangeDeclarePassive(ex, ExchangeTopic, true, false, false, false, nil)
		_ = conn.Close()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("exchange %s never declared: %v", ex, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With an empty producer.exchange, routingKey names the queue the default
// exchange delivers to.
func TestPublishDefaultExchange(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	q := uniqueName(t, "q")
	r.queue(q, "", "")
	cfg := DefaultConfig()
	cfg.URL = sharedURL
	cfg.Producer.RoutingKey = q
	e := newEndpoint(t, cfg)
	publish(t, e, mediation.NewMessage([]byte("direct")))
	if d, ok := r.get(q); !ok || string(d.Body) != "direct" {
		t.Fatalf("got %q %v", d.Body, ok)
	}
}

func TestPublishRefusals(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	for _, tc := range []struct {
		desc  string
		setup func(t *testing.T, r *raw, cfg *Config)
		want  string
	}{
		{
			desc: "mandatory and no queue bound",
			setup: func(t *testing.T, r *raw, cfg *Config) {
				r.exchange(cfg.Producer.Exchange, ExchangeTopic)
				cfg.Producer.Mandatory = true
			},
			want: "no queue received the message",
		},
		{
			desc: "the exchange does not exist and declare is off",
			setup: func(_ *testing.T, _ *raw, cfg *Config) {
				cfg.Declare = false
			},
			want: "NOT_FOUND",
		},
		{
			desc: "the exchange exists with another type",
			setup: func(_ *testing.T, r *raw, cfg *Config) {
				r.exchange(cfg.Producer.Exchange, ExchangeFanout)
			},
			want: "PRECONDITION_FAILED",
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := newRaw(t)
			cfg := testConfig(sharedURL, uniqueName(t, "ex"))
			cfg.Consumer.Exchange = ""
			tc.setup(t, r, cfg)
			e := newEndpoint(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			for range 2 {
				err := e.Publish(ctx, mediation.NewMessage([]byte("x")))
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Publish error = %v, want one mentioning %s", err, tc.want)
				}
				// A refusal is not an outage: retrying later will not help.
				if errors.Is(err, mediation.ErrUnavailable) {
					t.Fatalf("Publish error = %v, want no ErrUnavailable", err)
				}
			}
		})
	}
}

// A mandatory publish succeeds when a queue takes the message, also when
// many publishes share the channel with unroutable ones.
func TestPublishMandatoryMixed(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	ex, q := uniqueName(t, "ex"), uniqueName(t, "q")
	r.exchange(ex, ExchangeDirect)
	r.queue(q, ex, "routed")
	mk := func(key string) *Endpoint {
		cfg := testConfig(sharedURL, ex)
		cfg.Consumer.Exchange = ""
		cfg.Consumer.ExchangeType = ExchangeDirect
		cfg.Producer.RoutingKey = key
		cfg.Producer.Mandatory = true
		return newEndpoint(t, cfg)
	}
	routed, lost := mk("routed"), mk("nowhere")
	const n = 20
	errs := make(chan error, 2*n)
	for i := range n {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			errs <- routed.Publish(ctx, &mediation.Message{ID: "same-id", Content: []byte{byte(i)}})
		}()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			err := lost.Publish(ctx, mediation.NewMessage([]byte{byte(i)}))
			if err == nil {
				err = errors.New("an unroutable mandatory publish succeeded")
			} else if strings.Contains(err.Error(), "no queue received") {
				err = nil
			}
			errs <- err
		}()
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for {
		if _, ok := r.get(q); !ok {
			break
		}
		got++
	}
	if got != n {
		t.Fatalf("%d messages in the queue, want %d", got, n)
	}
}

// A broker that stops answering fails a publish with ErrUnavailable within
// publishTimeout, never a hang; once it answers again, publishing works
// again without any help.
func TestPublishUnavailable(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	proxy := tcpproxy.New(t, sharedBroker)
	ex, q := uniqueName(t, "ex"), uniqueName(t, "q")
	r.exchange(ex, ExchangeTopic)
	r.queue(q, ex, "#")
	cfg := testConfig("amqp://guest:guest@"+proxy.Addr()+"/", ex)
	cfg.Consumer.Exchange = ""
	cfg.PublishTimeout = Duration(2 * time.Second)
	cfg.ConnectTimeout = Duration(time.Second)
	e := newEndpoint(t, cfg)
	publish(t, e, mediation.NewMessage([]byte("before")))
	if proxy.Open() == 0 {
		t.Fatal("the endpoint does not go through the proxy")
	}

	for _, fault := range []struct {
		desc  string
		apply func()
	}{{"paused", proxy.Pause}, {"refusing", proxy.Refuse}} {
		fault.apply()
		for range 2 {
			start := time.Now()
			err := e.Publish(context.Background(), mediation.NewMessage([]byte("lost")))
			if !errors.Is(err, mediation.ErrUnavailable) {
				t.Fatalf("%s: Publish error = %v, want ErrUnavailable", fault.desc, err)
			}
			// Generous slack for a busy machine; what matters is no hang.
			if took := time.Since(start); took > time.Duration(cfg.PublishTimeout)+10*time.Second {
				t.Fatalf("%s: Publish took %v with publishTimeout %v", fault.desc, took, cfg.PublishTimeout)
			}
		}
		proxy.Resume()
		publishEventually(t, e, "after "+fault.desc)
	}
	var got []string
	for {
		d, ok := r.get(q)
		if !ok {
			break
		}
		got = append(got, string(d.Body))
	}
	if strings.Join(got, ",") != "before,after paused,after refusing" {
		t.Fatalf("queue holds %q", got)
	}
}

// publishEventually retries until a publish succeeds: the endpoint
// reconnects in the background.
func publishEventually(t testing.TB, e *Endpoint, body string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := e.Publish(context.Background(), mediation.NewMessage([]byte(body)))
		if err == nil {
			return
		}
		if !errors.Is(err, mediation.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Publish after recovery: %v", err)
		}
	}
}

// A broker that was never reachable is ErrUnavailable too, with the reason.
func TestPublishNeverConnected(t *testing.T) {
	t.Parallel()
	proxy := tcpproxy.New(t, "127.0.0.1:1") // nothing listens there
	proxy.Refuse()
	cfg := testConfig("amqp://guest:guest@"+proxy.Addr()+"/", "ex")
	cfg.PublishTimeout = Duration(500 * time.Millisecond)
	e := newEndpoint(t, cfg)
	err := e.Publish(context.Background(), mediation.NewMessage([]byte("x")))
	if !errors.Is(err, mediation.ErrUnavailable) {
		t.Fatalf("Publish error = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "guest:guest") {
		t.Fatalf("the error shows the credentials: %v", err)
	}

	// The caller's own cancellation is reported as such.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Publish(ctx, mediation.NewMessage([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Publish error = %v", err)
	}
}

func TestPublishUnsupportedAndClosed(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.URL = "amqp://127.0.0.1:1/"
	cfg.Consumer.Queue = "q"
	e := newEndpoint(t, cfg)
	if err := e.Publish(context.Background(), mediation.NewMessage(nil)); !errors.Is(err, mediation.ErrUnsupported) {
		t.Fatalf("Publish on a consume-only endpoint: %v", err)
	}

	cfg = testConfig("amqp://127.0.0.1:1/", "ex")
	e2, err := New(cfg, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e2.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := e2.Publish(context.Background(), mediation.NewMessage(nil)); !errors.Is(err, mediation.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if _, err := e2.Subscribe(context.Background(), mediation.SubscribeRequest{}); !errors.Is(err, mediation.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// A channel the broker closed (here: the exchange was deleted under it) is
// reopened, with confirms and the exchange declared again, without the
// connection being dropped.
func TestPublishReopensChannel(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	r := newRaw(t)
	ex := uniqueName(t, "ex")
	e := newEndpoint(t, testConfig(sharedURL, ex))
	deleteAtEnd(t, ex, "")
	publish(t, e, mediation.NewMessage([]byte("first")))
	if err := r.ch.ExchangeDelete(ex, false, false); err != nil {
		t.Fatal(err)
	}
	err := e.Publish(context.Background(), mediation.NewMessage([]byte("lost")))
	if err == nil || !strings.Contains(err.Error(), "NOT_FOUND") || errors.Is(err, mediation.ErrUnavailable) {
		t.Fatalf("Publish to a deleted exchange: %v, want NOT_FOUND", err)
	}
	q := uniqueName(t, "q")
	publishEventually(t, e, "again") // the exchange is declared again
	r.queue(q, ex, "#")
	publish(t, e, mediation.NewMessage([]byte("routed")))
	if d, ok := r.get(q); !ok || string(d.Body) != "routed" {
		t.Fatalf("got %q %v", d.Body, ok)
	}
}
