package solace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/mediation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sharedBroker is the machine's RabbitMQ, whose AMQP 1.0 plugin
// (rabbitmq_amqp1_0, enabled by scripts/services.sh) listens on the AMQP
// port. Tests never stop or reconfigure it, and use names of their own that
// they delete at the end.
const (
	sharedBroker = "127.0.0.1:5672"
	sharedURL    = "amqp://guest:guest@" + sharedBroker
)

// waitTimeout bounds every wait for something that must happen; generous,
// so that a busy machine does not fail a test.
const waitTimeout = 30 * time.Second

// requireBroker skips the test when RabbitMQ does not answer AMQP 1.0, or
// fails it with SLUICE_REQUIRE_SERVICES=1.
func requireBroker(t testing.TB) {
	t.Helper()
	gatewaytest.RequireService(t, "RabbitMQ", sharedBroker)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := amqp.Dial(ctx, sharedURL, nil)
	if err != nil {
		msg := "RabbitMQ at " + sharedBroker + " does not speak AMQP 1.0 (rabbitmq-plugins enable rabbitmq_amqp1_0, as scripts/services.sh does): " + err.Error()
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	_ = conn.Close()
}

// uniqueName returns a name no other test (or earlier run) uses, made of
// lower-case letters, digits and '-', so that it is a Solace topic level, a
// queue name and a RabbitMQ routing key word alike.
func uniqueName(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	r := strings.NewReplacer("/", "-", " ", "-", "#", "", "*", "", ".", "-", "_", "-")
	return "sluice-test-" + strings.ToLower(r.Replace(t.Name())) + "-" + hex.EncodeToString(b[:])
}

// deleteQueueAtEnd deletes a queue of the shared broker when the test ends
// (with AMQP 0-9-1: AMQP 1.0 cannot delete on RabbitMQ 3.x).
func deleteQueueAtEnd(t testing.TB, queue string) {
	t.Cleanup(func() {
		conn, err := amqp091.Dial("amqp://guest:guest@" + sharedBroker + "/")
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		_, _ = ch.QueueDelete(queue, false, false, false)
	})
}

// raw is a plain AMQP 1.0 client, so that what the endpoint does is checked
// independently of the endpoint.
type raw struct {
	t       testing.TB
	conn    *amqp.Conn
	session *amqp.Session
}

func newRaw(t testing.TB) *raw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conn, err := amqp.Dial(ctx, sharedURL, nil)
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatalf("raw session: %v", err)
	}
	return &raw{t: t, conn: conn, session: s}
}

// send sends msgs to address, each accepted by the broker before the next.
func (r *raw) send(address string, msgs ...*amqp.Message) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	mode := amqp.SenderSettleModeUnsettled
	s, err := r.session.NewSender(ctx, address, &amqp.SenderOptions{SettlementMode: &mode})
	if err != nil {
		r.t.Fatalf("raw sender %s: %v", address, err)
	}
	for _, m := range msgs {
		rc, err := s.SendWithReceipt(ctx, m, nil)
		if err != nil {
			r.t.Fatalf("raw send to %s: %v", address, err)
		}
		st, err := rc.Wait(ctx)
		if _, ok := st.(*amqp.StateAccepted); err != nil || !ok {
			r.t.Fatalf("raw send to %s: %v %v", address, st, err)
		}
	}
}

// receiver attaches a receiver to address; its messages are accepted when
// taken with next.
func (r *raw) receiver(address string) *amqp.Receiver {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rc, err := r.session.NewReceiver(ctx, address, &amqp.ReceiverOptions{Credit: 100})
	if err != nil {
		r.t.Fatalf("raw receiver %s: %v", address, err)
	}
	return rc
}

func (r *raw) next(rc *amqp.Receiver) *amqp.Message {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	m, err := rc.Receive(ctx, nil)
	if err != nil {
		r.t.Fatalf("raw receive: %v", err)
	}
	if err := rc.AcceptMessage(ctx, m); err != nil {
		r.t.Fatalf("raw accept: %v", err)
	}
	return m
}

// rabbitConfig is an endpoint on the shared broker (or a proxy in front of
// it at addr) with RabbitMQ addressing and quick reconnects.
func rabbitConfig(addr string) *Config {
	cfg := DefaultConfig()
	cfg.URL = "amqp://" + addr
	cfg.Username, cfg.Password = "guest", "guest"
	cfg.VPN = "default"
	cfg.Addressing = AddressingRabbitMQ
	cfg.PublishTimeout = Duration(5 * time.Second)
	cfg.ConnectTimeout = Duration(5 * time.Second)
	cfg.Reconnect = Reconnect{InitialDelay: Duration(100 * time.Millisecond), MaxDelay: Duration(time.Second)}
	return cfg
}

func newEndpoint(t testing.TB, cfg *Config) *Endpoint {
	t.Helper()
	e, err := New(cfg, Options{Logger: quietLogger(), Name: "sluice-test"})
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
	level := slog.LevelError
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
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
