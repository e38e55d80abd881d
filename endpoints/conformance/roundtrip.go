package conformance

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

// testRoundTrip publishes through the endpoint and reads through it.
func (s *suite) testRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		c    Case
		name string
		test func(*testing.T, *env)
	}{
		{RoundTrip, "content", testContent},
		{Keys, "key", testKey},
		{Headers, "headers", testHeaders},
		{Headers, "foreign-headers", s.testForeignHeaders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.skipIfAsked(t, tc.c)
			t.Parallel()
			e := s.newEnv(t, string(tc.c), s.h.BrokerAddr, s.h.BrokerAddr)
			e.needSubscribe(t)
			tc.test(t, e)
		})
	}
}

// roundTrip publishes m with the endpoint and returns what a subscription
// opened before yields.
func (e *env) roundTrip(t *testing.T, m *mediation.Message) *mediation.Message {
	t.Helper()
	if !e.caps.Publish {
		t.Skip("the endpoint cannot publish (Capabilities.Publish is false)")
	}
	sub := e.subscribe(t, mediation.SubscribeRequest{Start: e.start(), QoS: mediation.QoSAuto})
	ctx := e.context(t)
	if err := e.ep.Publish(ctx, m); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := e.next(t, ctx, sub)
	got.Ack()
	if !bytes.Equal(got.Content, m.Content) {
		t.Fatalf("content = %q, want %q", truncate(got.Content), truncate(m.Content))
	}
	return got
}

func testContent(t *testing.T, e *env) {
	// Not valid UTF-8 and with line breaks: content is bytes, never text.
	m := e.message(0)
	m.Content = append(m.Content, "\n\x00\xff\r\nend"...)
	got := e.roundTrip(t, m)
	if got.Identity() == "" {
		t.Error("the message has no identity (Message.ID, the broker's id, or a Position to derive one from)")
	}
	if got.Timestamp.IsZero() {
		t.Error("the message has no Timestamp (the broker's time, or when it was received)")
	}
	if e.caps.Replay && got.Position.Stream == "" {
		t.Error("the endpoint can replay, but the message has no Position: a client could not resume after it")
	}
}

func testKey(t *testing.T, e *env) {
	m := e.message(0)
	m.Key = []byte("key/0 ü")
	got := e.roundTrip(t, m)
	if !bytes.Equal(got.Key, m.Key) {
		t.Fatalf("key = %q, want %q", got.Key, m.Key)
	}
}

func testHeaders(t *testing.T, e *env) {
	m := e.message(0)
	m.Headers.Set("x-single", "one")
	m.Headers.Add("x-multi", "first")
	m.Headers.Add("x-multi", "second")
	m.Headers.Add("x-multi", "third")
	m.Headers.Set("x-empty", "")
	got := e.roundTrip(t, m)
	checkLowerCase(t, got.Headers)
	for _, name := range []string{"x-single", "x-multi", "x-empty"} {
		if want, have := m.Headers.Values(name), got.Headers.Values(name); !slices.Equal(have, want) {
			t.Errorf("header %s = %q, want %q (values in order)", name, have, want)
		}
	}
}

// testForeignHeaders sends, with Produce, a message whose header names have
// upper-case letters, as another producer may: they arrive lower-cased.
func (s *suite) testForeignHeaders(t *testing.T, e *env) {
	if s.h.Produce == nil {
		t.Skip("Harness.Produce is unset: cannot send headers the endpoint did not write")
	}
	sub := e.subscribe(t, mediation.SubscribeRequest{Start: e.start(), QoS: mediation.QoSAuto})
	m := e.message(0)
	m.Headers = mediation.Headers{"X-Trace-ID": {"abc"}, "Content-Type": {"text/plain"}}
	s.h.Produce(t, e.brokerAddr, e.channel, m)
	got := e.next(t, e.context(t), sub)
	got.Ack()
	checkLowerCase(t, got.Headers)
	if v := got.Headers["x-trace-id"]; !slices.Equal(v, []string{"abc"}) {
		t.Errorf(`header "x-trace-id" = %q, want ["abc"] (sent as "X-Trace-ID")`, v)
	}
	if v := got.Headers["content-type"]; !slices.Equal(v, []string{"text/plain"}) {
		t.Errorf(`header "content-type" = %q, want ["text/plain"] (sent as "Content-Type")`, v)
	}
}

// checkLowerCase fails for a header name with upper-case letters: Headers
// methods lower-case the name they look up, so such a header is invisible.
func checkLowerCase(t *testing.T, h mediation.Headers) {
	t.Helper()
	for name := range h {
		if name != strings.ToLower(name) {
			t.Errorf("header name %q is not lower-case", name)
		}
	}
}
