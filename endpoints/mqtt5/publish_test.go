package mqtt5

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sluicegw/sluice/mediation"
)

// A publish carries headers as user properties (one per value, in order)
// and content-type as the Content Type property, at the configured QoS, and
// a plain MQTT subscriber sees all of it.
func TestPublishHeadersAndQoS(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	for _, qos := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("qos %d", qos), func(t *testing.T) {
			t.Parallel()
			topic := uniqueTopic(t)
			raw := dialRaw(t, addr)
			raw.subscribe(t, topic, 2)

			cfg := testConfig(addr, topic)
			cfg.Producer.QoS = qos
			e := newEndpoint(t, cfg)
			msg := mediation.NewMessage([]byte(`{"status":"paid"}`))
			msg.Headers = mediation.Headers{}
			msg.Headers.Set("Content-Type", "application/json")
			msg.Headers.Add("x-order-id", "o-42")
			msg.Headers.Add("x-tag", "a")
			msg.Headers.Add("x-tag", "b")
			publish(t, e, msg)

			got := raw.next(t)
			if string(got.Payload) != `{"status":"paid"}` || got.Topic != topic || int(got.QoS) != qos || got.Retain {
				t.Fatalf("received %s", got)
			}
			if got.Properties.ContentType != "application/json" {
				t.Fatalf("content type %q", got.Properties.ContentType)
			}
			if v := got.Properties.User.Get("x-order-id"); v != "o-42" {
				t.Fatalf("user property x-order-id = %q (all: %v)", v, got.Properties.User)
			}
			if v := got.Properties.User.GetAll("x-tag"); !slices.Equal(v, []string{"a", "b"}) {
				t.Fatalf("user property x-tag = %q, want both values in order", v)
			}
			if v := got.Properties.User.Get("content-type"); v != "" {
				t.Fatalf("content-type also sent as a user property: %q", v)
			}
		})
	}
}

// producer.retain keeps the message for later subscribers, and
// producer.messageExpiry travels as the Message Expiry property.
func TestPublishRetainAndExpiry(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	topic := uniqueTopic(t)
	cfg := testConfig(addr, topic)
	cfg.Producer.Retain = true
	cfg.Producer.MessageExpiry = Duration(time.Hour)
	e := newEndpoint(t, cfg)
	publish(t, e, mediation.NewMessage([]byte("state")))
	t.Cleanup(func() {
		// Clear the retained message: an empty retained payload deletes it.
		c := dialRaw(t, addr)
		c.publish(t, &paho.Publish{Topic: topic, Retain: true, QoS: 1})
	})

	late := dialRaw(t, addr)
	late.subscribe(t, topic, 1)
	got := late.next(t)
	if string(got.Payload) != "state" || !got.Retain {
		t.Fatalf("late subscriber got %s, want the retained message", got)
	}
	if got.Properties.MessageExpiry == nil || *got.Properties.MessageExpiry == 0 || *got.Properties.MessageExpiry > 3600 {
		t.Fatalf("message expiry %v, want at most 3600s left", got.Properties.MessageExpiry)
	}
}

// Header text that MQTT cannot carry is repaired rather than making the
// broker drop the connection; a header too long for MQTT is refused.
func TestPublishHeaderText(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	topic := uniqueTopic(t)
	raw := dialRaw(t, addr)
	raw.subscribe(t, topic, 1)
	e := newEndpoint(t, testConfig(addr, topic))

	msg := mediation.NewMessage([]byte("x"))
	msg.Headers = mediation.Headers{"x-bin": {"a\xffb\x00c"}}
	publish(t, e, msg)
	if got := raw.next(t); got.Properties.User.Get("x-bin") != "a\uFFFDbc" {
		t.Fatalf("x-bin = %q", got.Properties.User.Get("x-bin"))
	}

	long := mediation.NewMessage([]byte("x"))
	long.Headers = mediation.Headers{"x-long": {strings.Repeat("v", 70000)}}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := e.Publish(ctx, long)
	if err == nil || errors.Is(err, mediation.ErrUnavailable) || !strings.Contains(err.Error(), "x-long") {
		t.Fatalf("Publish with a 70000-byte header: %v, want an error naming it", err)
	}
	// The connection survived both.
	publish(t, e, mediation.NewMessage([]byte("after")))
	if got := raw.next(t); string(got.Payload) != "after" {
		t.Fatalf("got %q", got.Payload)
	}
}

func TestPublishWithoutProducer(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.ServerURL = "mqtt://127.0.0.1:1"
	cfg.Consumer.Topic = "a"
	e := newEndpoint(t, cfg)
	if err := e.Publish(context.Background(), mediation.NewMessage(nil)); !errors.Is(err, mediation.ErrUnsupported) {
		t.Fatalf("Publish = %v, want ErrUnsupported", err)
	}
}

// With nothing listening, a publish fails with ErrUnavailable after
// publishTimeout instead of hanging, and a closed endpoint says so.
func TestPublishNoBroker(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.ServerURL = "mqtt://" + freeAddr(t)
	cfg.Producer.Topic = "a"
	cfg.PublishTimeout = Duration(300 * time.Millisecond)
	e := newEndpoint(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := e.Publish(ctx, mediation.NewMessage([]byte("x")))
	if !errors.Is(err, mediation.ErrUnavailable) || !strings.Contains(err.Error(), "publishTimeout") {
		t.Fatalf("Publish = %v, want ErrUnavailable after publishTimeout", err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Publish(ctx, mediation.NewMessage([]byte("x"))); !errors.Is(err, mediation.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
}

// A broker that reports a session takeover (another client under the same
// id) gets the cause explained, since two such clients would take turns
// kicking each other out. (Mosquitto 2.0 closes the connection without
// saying why, so this is checked on the handler itself.)
func TestTakeoverIsExplained(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	l := &link{log: slog.New(slog.NewTextHandler(logs, nil))}
	l.serverDisconnect("gw-1", &paho.Disconnect{ReasonCode: 0x8E})
	l.serverDisconnect("gw-1", &paho.Disconnect{ReasonCode: 0x8B, Properties: &paho.DisconnectProperties{ReasonString: "bye"}})
	out := logs.String()
	for _, want := range []string{"level=ERROR", "took the session over", "clientId=gw-1", "level=WARN", "code=0x8b", "reason=bye"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
}
