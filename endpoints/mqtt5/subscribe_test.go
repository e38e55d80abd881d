package mqtt5

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sluicegw/sluice/mediation"
)

// A plain MQTT publish reaches a subscription with its content, user
// properties as headers, content type, and where it came from.
func TestSubscribeReceivesRawPublish(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	base := uniqueTopic(t)
	cfg := testConfig(addr, base+"/+/telemetry")
	cfg.Producer.Topic = ""
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{QoS: mediation.QoSAuto})
	if !sub.Start().IsZero() {
		t.Fatalf("Start = %v, want the empty cursor", sub.Start())
	}

	raw := dialRaw(t, addr)
	raw.publish(t, &paho.Publish{
		Topic: base + "/dev-1/telemetry", QoS: 1, Payload: []byte(`{"t":21.5}`),
		Properties: &paho.PublishProperties{
			ContentType: "application/json",
			User:        paho.UserProperties{{Key: "X-Device", Value: "dev-1"}, {Key: "x-tag", Value: "a"}, {Key: "x-tag", Value: "b"}},
		},
	})
	raw.publish(t, &paho.Publish{Topic: base + "/dev-2/telemetry", QoS: 0, Payload: []byte("plain")})

	m := next(t, sub)
	if string(m.Content) != `{"t":21.5}` {
		t.Fatalf("content %q", m.Content)
	}
	if m.Headers.Get("content-type") != "application/json" || m.Headers.Get("x-device") != "dev-1" ||
		!slices.Equal(m.Headers.Values("x-tag"), []string{"a", "b"}) {
		t.Fatalf("headers %v", m.Headers)
	}
	wantMD := map[string]string{"topic": base + "/dev-1/telemetry", "qos": "1", "retain": "false"}
	if fmt.Sprint(m.Metadata) != fmt.Sprint(wantMD) {
		t.Fatalf("metadata %v, want %v", m.Metadata, wantMD)
	}
	if m.ID != sub.ClientID()+"/1" || m.Position != (mediation.Position{}) || m.Timestamp.IsZero() {
		t.Fatalf("id %q, position %+v, timestamp %v", m.ID, m.Position, m.Timestamp)
	}
	m.Ack()

	m = next(t, sub)
	if string(m.Content) != "plain" || m.Metadata["qos"] != "0" || m.Metadata["topic"] != base+"/dev-2/telemetry" || len(m.Headers) != 0 {
		t.Fatalf("second message %q %v %v", m.Content, m.Metadata, m.Headers)
	}
	if m.ID != sub.ClientID()+"/2" {
		t.Fatalf("second id %q", m.ID)
	}
}

// Messages published through the endpoint at QoS 1 and 2 come back
// through an at-least-once subscription of the same endpoint, headers
// intact. With a receive maximum of 2, six messages get through only if
// every acknowledgement completes its QoS 1 or QoS 2 exchange.
func TestRoundTripAtLeastOnce(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	for _, qos := range []int{1, 2} {
		t.Run(fmt.Sprintf("qos %d", qos), func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(addr, uniqueTopic(t))
			cfg.SessionExpiry = Duration(30 * time.Second)
			cfg.Consumer.QoS, cfg.Producer.QoS = qos, qos
			cfg.Consumer.ReceiveMaximum = 2
			e := newEndpoint(t, cfg)
			if !e.Capabilities().Supports(mediation.QoSAtLeastOnce) {
				t.Fatal("at-least-once not offered with a session and a client id")
			}
			sub := subscribe(t, e, mediation.SubscribeRequest{QoS: mediation.QoSAtLeastOnce})
			if !strings.HasPrefix(sub.ClientID(), cfg.ClientID+"-s-") {
				t.Fatalf("subscription client id %q", sub.ClientID())
			}
			const n = 6
			for i := range n {
				msg := mediation.NewMessage(fmt.Appendf(nil, "m%d", i))
				msg.Headers = mediation.Headers{"x-n": {fmt.Sprint(i)}}
				publish(t, e, msg)
			}
			for i := range n {
				m := next(t, sub)
				if string(m.Content) != fmt.Sprintf("m%d", i) || m.Headers.Get("x-n") != fmt.Sprint(i) || m.Metadata["qos"] != fmt.Sprint(qos) {
					t.Fatalf("message %d: %q %v %v", i, m.Content, m.Headers, m.Metadata)
				}
				m.Ack()
			}
		})
	}
}

// At least once: a message the client did not acknowledge is sent again
// when the group subscription's persistent session resumes, one that was
// acknowledged is not.
func TestAtLeastOnceRedeliversUnacked(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	cfg := testConfig(addr, uniqueTopic(t))
	cfg.SessionExpiry = Duration(30 * time.Second)
	e := newEndpoint(t, cfg)
	group := "redeliver-" + randomHex()
	req := mediation.SubscribeRequest{Group: group, QoS: mediation.QoSAtLeastOnce}

	first := subscribe(t, e, req)
	publish(t, e, mediation.NewMessage([]byte("acked")))
	publish(t, e, mediation.NewMessage([]byte("unacked")))
	if m := next(t, first); string(m.Content) != "acked" {
		t.Fatalf("first message %q", m.Content)
	} else {
		m.Ack()
	}
	if m := next(t, first); string(m.Content) != "unacked" {
		t.Fatalf("second message %q", m.Content)
	}
	// Acknowledgements go out in batches every 20ms; give this one ample
	// time to reach the broker before the connection goes.
	time.Sleep(500 * time.Millisecond)
	id := first.ClientID()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	again := subscribe(t, e, req)
	if again.ClientID() != id {
		t.Fatalf("group subscription reopened as %q, want its stable id %q", again.ClientID(), id)
	}
	m := next(t, again)
	if string(m.Content) != "unacked" || m.Metadata["duplicate"] != "true" {
		t.Fatalf("after reopening: %q %v, want the unacknowledged message again", m.Content, m.Metadata)
	}
	m.Ack()
	expectNothing(t, again, time.Second)
	// End the session on the shared broker now rather than in 30s.
	end := *cfg
	end.SessionExpiry = 0
	_ = subscribe(t, newEndpoint(t, &end), mediation.SubscribeRequest{Group: group}).Close()
}

// Subscriptions in one group (the request's, or consumer.sharedGroup) split
// the messages: each goes to exactly one of them.
func TestSharedSubscriptionSplits(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	for _, tc := range []struct {
		desc        string
		sharedGroup string
		group       string
	}{
		{desc: "request group", group: "g-" + randomHex()},
		{desc: "configured sharedGroup", sharedGroup: "sg-" + randomHex()},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(addr, uniqueTopic(t))
			cfg.Consumer.SharedGroup = tc.sharedGroup
			e := newEndpoint(t, cfg)
			req := mediation.SubscribeRequest{Group: tc.group}
			subs := []*Subscription{subscribe(t, e, req), subscribe(t, e, req)}
			if subs[0].ClientID() == subs[1].ClientID() {
				t.Fatalf("both subscriptions connect as %q", subs[0].ClientID())
			}
			if !strings.HasPrefix(subs[0].Filter(), "$share/") {
				t.Fatalf("filter %q is not shared", subs[0].Filter())
			}

			const n = 20
			raw := dialRaw(t, addr)
			for i := range n {
				raw.publish(t, &paho.Publish{Topic: cfg.Consumer.Topic, QoS: 1, Payload: fmt.Appendf(nil, "m%02d", i)})
			}
			got := make([][]string, len(subs))
			var mu sync.Mutex
			total := 0
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			var wg sync.WaitGroup
			for i, s := range subs {
				wg.Go(func() {
					for {
						m, err := s.Next(ctx)
						if err != nil {
							return
						}
						mu.Lock()
						got[i] = append(got[i], string(m.Content))
						if total++; total == n {
							cancel()
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			all := slices.Concat(got...)
			slices.Sort(all)
			want := make([]string, n)
			for i := range want {
				want[i] = fmt.Sprintf("m%02d", i)
			}
			if !slices.Equal(all, want) {
				t.Fatalf("received %v, want each of %v once", all, want)
			}
			if len(got[0]) == 0 || len(got[1]) == 0 {
				t.Fatalf("one subscription got everything: %v", got)
			}
			for _, s := range subs {
				expectNothing(t, s, 500*time.Millisecond)
			}
		})
	}
}

// The broker sends at most receiveMaximum unacknowledged QoS 1 messages, so
// a subscription nobody reads buffers no more than that, and loses nothing.
func TestReceiveMaximumBoundsBuffer(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	cfg := testConfig(addr, uniqueTopic(t))
	cfg.Consumer.ReceiveMaximum = 5
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{QoS: mediation.QoSAtMostOnce})
	raw := dialRaw(t, addr)
	const n = 30
	for i := range n {
		raw.publish(t, &paho.Publish{Topic: cfg.Consumer.Topic, QoS: 1, Payload: fmt.Appendf(nil, "m%02d", i)})
	}
	waitFor(t, "5 messages buffered", func() bool { return len(sub.msgs) == 5 })
	time.Sleep(300 * time.Millisecond)
	if l := len(sub.msgs); l > 5 {
		t.Fatalf("%d messages buffered with receiveMaximum 5", l)
	}
	for i := range n {
		if m := next(t, sub); string(m.Content) != fmt.Sprintf("m%02d", i) {
			t.Fatalf("message %d is %q", i, m.Content)
		}
	}
}

// QoS 0 messages beyond the buffer are dropped and counted, never queued
// without bound; the buffered ones are delivered in order.
func TestQoS0OverflowDrops(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	cfg := testConfig(addr, uniqueTopic(t))
	cfg.Consumer.QoS = 0
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{})
	raw := dialRaw(t, addr)
	const n = qos0Buffer + 100
	for i := range n {
		raw.publish(t, &paho.Publish{Topic: cfg.Consumer.Topic, QoS: 0, Payload: fmt.Appendf(nil, "m%04d", i)})
	}
	waitFor(t, "every message buffered or dropped", func() bool { return len(sub.msgs)+int(sub.Dropped()) == n })
	if len(sub.msgs) != qos0Buffer || sub.Dropped() != 100 || e.Dropped() != 100 {
		t.Fatalf("buffered %d, dropped %d (endpoint %d); want %d and 100", len(sub.msgs), sub.Dropped(), e.Dropped(), qos0Buffer)
	}
	for i := range qos0Buffer {
		if m := next(t, sub); string(m.Content) != fmt.Sprintf("m%04d", i) {
			t.Fatalf("message %d is %q", i, m.Content)
		}
	}
}

// A retained message sent because the subscription is new is marked so.
func TestRetainedOnSubscribe(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	topic := uniqueTopic(t)
	raw := dialRaw(t, addr)
	raw.publish(t, &paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("last")})
	t.Cleanup(func() { raw.publish(t, &paho.Publish{Topic: topic, QoS: 1, Retain: true}) })

	e := newEndpoint(t, testConfig(addr, topic))
	sub := subscribe(t, e, mediation.SubscribeRequest{})
	if m := next(t, sub); string(m.Content) != "last" || m.Metadata["retain"] != "true" {
		t.Fatalf("got %q %v, want the retained message marked retain=true", m.Content, m.Metadata)
	}
}

func TestSubscribeRefusals(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.ServerURL = "mqtt://127.0.0.1:1"
	cfg.Consumer.Topic = "a"
	e := newEndpoint(t, cfg)
	pubOnly := DefaultConfig()
	pubOnly.ServerURL = cfg.ServerURL
	pubOnly.Producer.Topic = "a"
	for _, tc := range []struct {
		desc string
		e    *Endpoint
		req  mediation.SubscribeRequest
	}{
		{"earliest", e, mediation.SubscribeRequest{Start: mediation.StartEarliest}},
		{"a cursor", e, mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: mediation.NewCursor(mediation.Position{Stream: "a", Offset: 1})}},
		{"a time", e, mediation.SubscribeRequest{Start: mediation.StartTime, Time: time.Now()}},
		{"at-least-once without a persistent session", e, mediation.SubscribeRequest{QoS: mediation.QoSAtLeastOnce}},
		{"no consumer", newEndpoint(t, pubOnly), mediation.SubscribeRequest{}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			sub, err := tc.e.Subscribe(context.Background(), tc.req)
			if !errors.Is(err, mediation.ErrUnsupported) || sub != nil {
				t.Fatalf("Subscribe = %v, %v; want ErrUnsupported", sub, err)
			}
		})
	}
}

// With no broker a subscription fails with ErrUnavailable after
// connectTimeout, and releases its connection attempts.
func TestSubscribeNoBroker(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.ServerURL = "mqtt://" + freeAddr(t)
	cfg.Consumer.Topic = "a"
	cfg.ConnectTimeout = Duration(300 * time.Millisecond)
	e := newEndpoint(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sub, err := e.Subscribe(ctx, mediation.SubscribeRequest{})
	if !errors.Is(err, mediation.ErrUnavailable) || sub != nil {
		t.Fatalf("Subscribe = %v, %v; want ErrUnavailable", sub, err)
	}
}

// Close ends a blocked Next with ErrClosed, is idempotent, and every later
// Next returns ErrClosed even with messages buffered.
func TestCloseEndsNext(t *testing.T) {
	t.Parallel()
	addr := needBroker(t)
	cfg := testConfig(addr, uniqueTopic(t))
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{})
	raw := dialRaw(t, addr)
	raw.publish(t, &paho.Publish{Topic: cfg.Consumer.Topic, QoS: 1, Payload: []byte("x")})
	waitFor(t, "a buffered message", func() bool { return len(sub.msgs) == 1 })

	blocked := subscribe(t, e, mediation.SubscribeRequest{})
	done := make(chan error, 1)
	go func() {
		_, err := blocked.Next(context.Background())
		done <- err
	}()
	if err := blocked.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, mediation.ErrClosed) {
		t.Fatalf("blocked Next = %v, want ErrClosed", err)
	}

	for range 2 {
		if err := sub.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if _, err := sub.Next(context.Background()); !errors.Is(err, mediation.ErrClosed) {
		t.Fatalf("Next after Close = %v, want ErrClosed", err)
	}
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
