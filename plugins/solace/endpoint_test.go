package solace

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/sluicegw/sluice/mediation"
)

// A nacked message comes again, marked redelivered; one nacked with a
// *mediation.Rejection (poison) is rejected and does not: the next message
// is the one sent after it.
func TestNackReleasesRejectionRejects(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	q := uniqueName(t)
	deleteQueueAtEnd(t, q)
	cfg := rabbitConfig(sharedBroker)
	cfg.Consumer.Queue = q
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartLatest, QoS: mediation.QoSAtLeastOnce})
	r := newRaw(t)

	r.send("/queue/"+q, amqp.NewMessage([]byte("retry-me")))
	m := next(t, sub)
	m.Nack(errors.New("client went away"))
	again := next(t, sub)
	if string(again.Content) != "retry-me" || again.Metadata["redelivered"] != "true" {
		t.Fatalf("after a nack got %q redelivered=%s, want retry-me again", again.Content, again.Metadata["redelivered"])
	}
	again.Nack(&mediation.Rejection{Status: 422, Title: "policy refused it"})
	r.send("/queue/"+q, amqp.NewMessage([]byte("after")))
	if m := next(t, sub); string(m.Content) != "after" {
		t.Fatalf("after a rejection got %q, want the next message: a rejected message must not come back", m.Content)
	}
}

// Persistent publishes are durable and confirmed; direct ones are neither
// durable nor confirmed, but still arrive.
func TestDeliveryModes(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	for _, mode := range []string{DeliveryPersistent, DeliveryDirect} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			q := uniqueName(t)
			deleteQueueAtEnd(t, q)
			r := newRaw(t)
			rc := r.receiver("/queue/" + q) // declares the queue
			cfg := rabbitConfig(sharedBroker)
			cfg.Producer.Address = "/queue/" + q
			cfg.Producer.DeliveryMode = mode
			e := newEndpoint(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			msg := mediation.NewMessage([]byte("m"))
			msg.Headers = mediation.Headers{"x-a": {"1"}}
			if err := e.Publish(ctx, msg); err != nil {
				t.Fatal(err)
			}
			got := r.next(rc)
			if got.Header == nil || got.Header.Durable != (mode == DeliveryPersistent) {
				t.Fatalf("header %+v: durable should be %v", got.Header, mode == DeliveryPersistent)
			}
			if got.ApplicationProperties["x-a"] != "1" {
				t.Fatalf("application properties %v", got.ApplicationProperties)
			}
		})
	}
}

// vpn travels as the AMQP open hostname: RabbitMQ reads "vhost:<name>" as
// its virtual host, so with a VPN naming a vhost that does not exist the
// broker refuses access, and "vhost:/" is the default one.
func TestVPNIsTheOpenHostname(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	q := uniqueName(t)
	deleteQueueAtEnd(t, q)
	for _, tc := range []struct {
		vpn string
		ok  bool
	}{{"vhost:/", true}, {"vhost:sluice-no-such-vhost", false}} {
		cfg := rabbitConfig(sharedBroker)
		cfg.VPN = tc.vpn
		cfg.Producer.Address = "/queue/" + q
		cfg.PublishTimeout = Duration(2 * time.Second)
		e := newEndpoint(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		err := e.Publish(ctx, mediation.NewMessage([]byte("x")))
		cancel()
		if tc.ok && err != nil {
			t.Errorf("vpn %q: %v", tc.vpn, err)
		}
		if !tc.ok && (err == nil || errors.Is(err, mediation.ErrUnavailable)) {
			t.Errorf("vpn %q: publish = %v, want the broker's refusal", tc.vpn, err)
		}
	}
}

// A subscription to a queue that the broker refuses fails at once with the
// broker's reason, not after connectTimeout as "unavailable".
func TestSubscribeRefused(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	cfg := rabbitConfig(sharedBroker)
	cfg.Consumer.Address = "/amq/queue/" + uniqueName(t) // /amq/queue/ does not declare
	cfg.ConnectTimeout = Duration(20 * time.Second)
	e := newEndpoint(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sub, err := e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartLatest})
	if err == nil {
		sub.Close()
		t.Fatal("subscribed to a queue that does not exist")
	}
	if errors.Is(err, mediation.ErrUnavailable) {
		t.Fatalf("Subscribe = %v, want the broker's refusal", err)
	}
}

func TestTopicsRefuseGroups(t *testing.T) {
	t.Parallel()
	cfg := rabbitConfig("127.0.0.1:1") // never dialed
	cfg.Consumer.Topics = []string{"a/>"}
	e := newEndpoint(t, cfg)
	_, err := e.Subscribe(context.Background(), mediation.SubscribeRequest{Start: mediation.StartLatest, Group: "g"})
	if !errors.Is(err, mediation.ErrUnsupported) {
		t.Fatalf("Subscribe with a group on topics = %v, want ErrUnsupported", err)
	}
	_, err = e.Subscribe(context.Background(), mediation.SubscribeRequest{Start: mediation.StartCursor})
	if !errors.Is(err, mediation.ErrBadCursor) {
		t.Fatalf("Subscribe from a cursor = %v, want ErrBadCursor", err)
	}
}
