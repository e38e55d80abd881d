package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sharedBroker is the machine's RabbitMQ; tests never stop or reconfigure
// it, and use names of their own that they delete at the end.
const (
	sharedBroker = "127.0.0.1:5672"
	sharedURL    = "amqp://guest:guest@" + sharedBroker + "/"
)

// waitTimeout bounds every wait for something that must happen; generous,
// so that a busy machine does not fail a test.
const waitTimeout = 30 * time.Second

// requireBroker skips the test when RabbitMQ is not running, or fails it
// with SLUICE_REQUIRE_SERVICES=1.
func requireBroker(t testing.TB) {
	t.Helper()
	conn, err := amqp.DialConfig(sharedURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("RabbitMQ is required (SLUICE_REQUIRE_SERVICES=1) but %s is unreachable: %v", sharedBroker, err)
		}
		t.Skipf("RabbitMQ is not running at %s (set SLUICE_REQUIRE_SERVICES=1 to make this a failure): %v", sharedBroker, err)
	}
	_ = conn.Close()
}

// uniqueName returns a name no other test (or earlier run) uses.
func uniqueName(t testing.TB, what string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	r := strings.NewReplacer("/", ".", " ", "_", "#", "", "*", "")
	return "sluice-test." + r.Replace(t.Name()) + "." + what + "." + hex.EncodeToString(b[:])
}

// raw is a plain amqp091 client, so that what the endpoint does is checked
// independently of the endpoint.
type raw struct {
	t    testing.TB
	conn *amqp.Connection
	ch   *amqp.Channel
}

func newRaw(t testing.TB) *raw {
	t.Helper()
	conn, err := amqp.Dial(sharedURL)
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("raw channel: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("raw confirm: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &raw{t: t, conn: conn, ch: ch}
}

// exchange declares a durable exchange of kind, deleted when the test ends.
func (r *raw) exchange(name, kind string) {
	r.t.Helper()
	if err := r.ch.ExchangeDeclare(name, kind, true, false, false, false, nil); err != nil {
		r.t.Fatalf("declare exchange %s: %v", name, err)
	}
	deleteAtEnd(r.t, name, "")
}

// queue declares a durable queue bound to exchange with key (unbound when
// exchange is ""), deleted when the test ends.
func (r *raw) queue(name, exchange, key string) {
	r.t.Helper()
	if _, err := r.ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		r.t.Fatalf("declare queue %s: %v", name, err)
	}
	deleteAtEnd(r.t, "", name)
	if exchange != "" {
		if err := r.ch.QueueBind(name, key, exchange, false, nil); err != nil {
			r.t.Fatalf("bind %s: %v", name, err)
		}
	}
}

// publish sends a message and waits for the broker's confirm.
func (r *raw) publish(exchange, key string, p amqp.Publishing) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	dc, err := r.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, p)
	if err != nil {
		r.t.Fatalf("raw publish: %v", err)
	}
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		r.t.Fatalf("raw publish not confirmed: ok=%v err=%v", ok, err)
	}
}

func (r *raw) publishText(exchange, key string, bodies ...string) {
	r.t.Helper()
	for _, b := range bodies {
		r.publish(exchange, key, amqp.Publishing{Body: []byte(b)})
	}
}

// get takes the next message of queue without waiting, acknowledging it.
func (r *raw) get(queue string) (amqp.Delivery, bool) {
	r.t.Helper()
	d, ok, err := r.ch.Get(queue, true)
	if err != nil {
		r.t.Fatalf("raw get %s: %v", queue, err)
	}
	return d, ok
}

// deleteAtEnd deletes an exchange and/or a queue when the test ends, on a
// connection of its own (the test's may be gone by then).
func deleteAtEnd(t testing.TB, exchange, queue string) {
	t.Cleanup(func() {
		conn, err := amqp.Dial(sharedURL)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		if queue != "" {
			_, _ = ch.QueueDelete(queue, false, false, false)
		}
		if exchange != "" {
			_ = ch.ExchangeDelete(exchange, false, false)
		}
	})
}

// testConfig consumes and produces exchange (topic) through url.
func testConfig(url, exchange string) *Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Consumer.Exchange = exchange
	cfg.Producer.Exchange = exchange
	cfg.Producer.RoutingKey = "test.key"
	cfg.Reconnect.InitialDelay = Duration(100 * time.Millisecond)
	cfg.Reconnect.MaxDelay = Duration(time.Second)
	return cfg
}

func newEndpoint(t testing.TB, cfg *Config) *Endpoint {
	t.Helper()
	e, err := New(cfg, Options{Logger: quietLogger(), Name: "sluice test " + t.Name()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
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

// expectQuiet fails the test if sub yields a message within d.
func expectQuiet(t testing.TB, sub mediation.Subscription, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := sub.Next(ctx)
	if err == nil {
		t.Fatalf("unexpected message %q", m.Content)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v, want a deadline", err)
	}
}

func publish(t testing.TB, e *Endpoint, msg *mediation.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.Publish(ctx, msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func contents(ms []*mediation.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Content)
	}
	return out
}
