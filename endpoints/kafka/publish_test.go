package kafka

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

func TestPublishSubscribeRoundTrip(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	e := newEndpoint(t, testConfig(c))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ts := time.Now().Truncate(time.Millisecond) // Kafka keeps milliseconds

	keyed := mediation.NewMessage([]byte("from header"))
	keyed.Timestamp = ts
	keyed.Headers = mediation.Headers{"x-trace": {"a", "b"}, "kafka-key": {"k1"}}
	keyed.Metadata = map[string]string{"topic": "elsewhere"} // must not redirect the record

	explicit := mediation.NewMessage([]byte("explicit key"))
	explicit.Key = []byte("k2")
	explicit.Headers = mediation.Headers{"kafka-key": {"ignored"}}

	plain := mediation.NewMessage([]byte("no key"))

	for _, m := range []*mediation.Message{keyed, explicit, plain} {
		if err := e.Publish(ctx, m); err != nil {
			t.Fatalf("Publish(%q): %v", m.Content, err)
		}
		if m.Metadata["topic"] != testTopic || m.Metadata["partition"] == "" || m.Metadata["offset"] == "" {
			t.Fatalf("after Publish, Metadata = %v; want the record's topic, partition and offset", m.Metadata)
		}
	}

	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest})
	got := map[string]*mediation.Message{}
	for _, m := range readN(t, sub, 3) {
		got[string(m.Content)] = m
	}

	m := got["from header"]
	if m == nil {
		t.Fatalf("the keyed message was not read back; got %q", slices.Collect(maps.Keys(got)))
	}
	md := m.AllMetadata()
	if string(m.Key) != "k1" || md["key"] != "k1" {
		t.Errorf("key = %q, metadata key %q; want k1 from the kafka-key header", m.Key, md["key"])
	}
	if !slices.Equal(m.Headers.Values("X-Trace"), []string{"a", "b"}) {
		t.Errorf("x-trace = %q, want both values in order", m.Headers.Values("x-trace"))
	}
	if _, ok := m.Headers["kafka-key"]; ok {
		t.Errorf("the key header was written as a record header too: %v", m.Headers)
	}
	if !m.Timestamp.Equal(ts) {
		t.Errorf("timestamp = %v, want %v", m.Timestamp, ts)
	}
	if md["topic"] != testTopic || md["partition"] != keyed.Metadata["partition"] || md["offset"] != keyed.Metadata["offset"] {
		t.Errorf("metadata = %v, want what Publish reported %v", md, keyed.Metadata)
	}
	if want := testTopic + "/" + keyed.Metadata["partition"] + "/" + keyed.Metadata["offset"]; m.Identity() != want || pos(m.Position) != want {
		t.Errorf("ID = %q, position %s; want %s", m.Identity(), pos(m.Position), want)
	}

	if m := got["explicit key"]; m == nil || string(m.Key) != "k2" || len(m.Headers) != 0 {
		t.Errorf("explicit key message = %+v; want key k2 and no headers", m)
	}
	if m := got["no key"]; m == nil || m.Key != nil || m.Headers != nil {
		t.Errorf("plain message = %+v; want no key and no headers", m)
	} else if _, ok := m.Metadata["key"]; ok {
		t.Errorf("plain message metadata has a key: %v", m.Metadata)
	}
}

func TestPublishToUnreachableClusterIsUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		addrs func(t *testing.T) []string
	}{
		{"a cluster that was closed", func(t *testing.T) []string {
			c := newCluster(t)
			addrs := c.ListenAddrs()
			c.Close()
			return addrs
		}},
		{"an address nothing listens on", func(*testing.T) []string { return []string{"127.0.0.1:1"} }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.BootstrapServers = tc.addrs(t)
			cfg.Producer.Topic = testTopic
			cfg.Consumer.Topics = []string{testTopic}
			cfg.Producer.DeliveryTimeout = Duration(time.Second)
			cfg.RequestTimeout = Duration(time.Second)
			e := newEndpoint(t, cfg)

			// The deadline is only a backstop against a hang; deliveryTimeout
			// must end the publish long before it.
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			err := e.Publish(ctx, mediation.NewMessage([]byte("x")))
			wantErrIs(t, err, mediation.ErrUnavailable)
			if ctx.Err() != nil {
				t.Fatal("Publish returned only when the test's backstop deadline passed")
			}

			_, err = e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartLatest})
			wantErrIs(t, err, mediation.ErrUnavailable)
		})
	}
}

func TestUnsupportedDirections(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	consumeOnly := testConfig(c)
	consumeOnly.Producer.Topic = ""
	err := newEndpoint(t, consumeOnly).Publish(ctx, mediation.NewMessage([]byte("x")))
	wantErrIs(t, err, mediation.ErrUnsupported)

	produceOnly := testConfig(c)
	produceOnly.Consumer.Topics = nil
	_, err = newEndpoint(t, produceOnly).Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartLatest})
	wantErrIs(t, err, mediation.ErrUnsupported)
}

func TestClosedEndpoint(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	e := newEndpoint(t, testConfig(c))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wantErrIs(t, e.Publish(ctx, mediation.NewMessage([]byte("x"))), mediation.ErrClosed)
	_, err := e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartLatest})
	wantErrIs(t, err, mediation.ErrClosed)
}
