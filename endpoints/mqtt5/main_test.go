package mqtt5

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait for something that must happen; generous,
// so that a busy machine does not fail a test.
const waitTimeout = 60 * time.Second

// sharedBroker is the machine's Mosquitto, shared with other test runs:
// tests use topics and client ids of their own and never stop it.
const sharedBroker = "127.0.0.1:1883"

// needBroker returns the shared broker's address, or skips the test when it
// is not running (fails instead with SLUICE_REQUIRE_SERVICES=1).
func needBroker(t testing.TB) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", sharedBroker, 2*time.Second)
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Mosquitto is required (SLUICE_REQUIRE_SERVICES=1) but %s is unreachable: %v", sharedBroker, err)
		}
		t.Skipf("no MQTT broker at %s (start Mosquitto to run this test): %v", sharedBroker, err)
	}
	c.Close()
	return sharedBroker
}

// uniqueTopic returns a topic no other test or test run uses.
func uniqueTopic(t testing.TB) string {
	return "sluice-test/" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "/" + randomHex()
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testConfig publishes to and subscribes to topic on the broker at addr.
func testConfig(addr, topic string) *Config {
	cfg := DefaultConfig()
	cfg.ServerURL = "mqtt://" + addr
	cfg.ClientID = "sluice-test-" + randomHex()
	cfg.Consumer.Topic = topic
	cfg.Producer.Topic = topic
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

func subscribe(t testing.TB, e *Endpoint, req mediation.SubscribeRequest) *Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sub, err := e.Subscribe(ctx, req)
	if err != nil {
		t.Fatalf("Subscribe(%+v): %v", req, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub.(*Subscription)
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

// expectNothing asserts that no message arrives for d.
func expectNothing(t testing.TB, sub mediation.Subscription, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if m, err := sub.Next(ctx); err == nil {
		t.Fatalf("unexpected message %q on %s", m.Content, m.Metadata["topic"])
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v, want nothing until the deadline", err)
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

// rawClient is a plain paho client, so that each side of the endpoint is
// tested against something other than itself.
type rawClient struct {
	*paho.Client
	received chan *paho.Publish
}

// dialRaw connects a paho client with a clean session to the broker at addr.
func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	rc := &rawClient{received: make(chan *paho.Publish, 4096)}
	rc.Client = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			rc.received <- pr.Packet
			return true, nil
		}},
		OnClientError: func(error) {},
	})
	ack, err := rc.Connect(ctx, &paho.Connect{ClientID: "raw-" + randomHex(), CleanStart: true, KeepAlive: 30})
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("raw connect: %v (%+v)", err, ack)
	}
	t.Cleanup(func() { _ = rc.Disconnect(&paho.Disconnect{}); <-rc.Done() })
	return rc
}

func (rc *rawClient) subscribe(t testing.TB, filter string, qos byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := rc.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}}); err != nil {
		t.Fatalf("raw subscribe %s: %v", filter, err)
	}
}

func (rc *rawClient) publish(t testing.TB, p *paho.Publish) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := rc.Publish(ctx, p); err != nil {
		t.Fatalf("raw publish: %v", err)
	}
}

func (rc *rawClient) next(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case p := <-rc.received:
		return p
	case <-time.After(waitTimeout):
		t.Fatal("raw client: no message")
		return nil
	}
}

// freeAddr returns a loopback address nothing listens on (for now).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
