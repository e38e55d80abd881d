package mock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
	"github.com/sluicegw/sluice/plugins/plugintest"
)

func read(t *testing.T, sub mediation.Subscription, n int) []*mediation.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*mediation.Message
	for range n {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(out), err)
		}
		out = append(out, m)
	}
	return out
}

func TestSequenceHeadersAndCount(t *testing.T) {
	e := &Endpoint{cfg: Config{MessageInterval: plugins.Duration(time.Millisecond), MessageContent: "hi",
		MessageCount: 3, Headers: map[string]string{"X-Kind": "demo"}, Metadata: map[string]string{"source": "mock"}}}
	sub, err := e.Subscribe(context.Background(), mediation.SubscribeRequest{Start: mediation.StartEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i, m := range read(t, sub, 3) {
		if string(m.Content) != "hi" || m.Headers.Get("x-kind") != "demo" || m.Metadata["source"] != "mock" ||
			m.Position.Offset != int64(i) {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	// After messageCount the sequence ends: Next waits until ctx or Close.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after the count: %v", err)
	}
	sub.Close()
	if _, err := sub.Next(context.Background()); !errors.Is(err, mediation.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestCursorResumes(t *testing.T) {
	e := &Endpoint{cfg: Config{MessageInterval: 0, MessageContent: "x"}}
	c := mediation.NewCursor(mediation.Position{Stream: stream, Offset: 5})
	sub, err := e.Subscribe(context.Background(), mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: c})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if got := sub.Start().String(); got != c.String() {
		t.Fatalf("Start %s, want %s", got, c)
	}
	if m := read(t, sub, 1)[0]; m.Position.Offset != 5 {
		t.Fatalf("resumed at %d, want 5", m.Position.Offset)
	}
	bad := mediation.NewCursor(mediation.Position{Stream: "orders", Offset: 1})
	if _, err := e.Subscribe(context.Background(), mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: bad}); !errors.Is(err, mediation.ErrBadCursor) {
		t.Fatalf("foreign cursor: %v", err)
	}
}

func TestIntervalPaces(t *testing.T) {
	e := &Endpoint{cfg: Config{MessageInterval: plugins.Duration(30 * time.Millisecond)}}
	sub, _ := e.Subscribe(context.Background(), mediation.SubscribeRequest{})
	defer sub.Close()
	start := time.Now()
	read(t, sub, 4)
	// Three intervals at least lie between the first and the fourth message.
	if took := time.Since(start); took < 90*time.Millisecond {
		t.Fatalf("4 messages in %v: the interval was not honoured", took)
	}
}

func TestConfigDecodeAndValidate(t *testing.T) {
	for _, tc := range []struct {
		desc, yaml string
		ok         bool
	}{
		{"defaults", `{}`, true},
		{"all fields", `{messageInterval: 250ms, messageContent: "x", messageCount: 10, headers: {a: b}, metadata: {c: d}}`, true},
		{"negative count", `{messageCount: -1}`, false},
		{"negative interval", `{messageInterval: -1s}`, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := plugintest.Decode(t, func() *Config { return &Config{MessageInterval: plugins.Duration(time.Second)} }, tc.yaml)
			if err == nil {
				err = c.Validate()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
