package memtest

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The fake must behave like a replaying broker, or the entrypoint tests
// built on it prove nothing.
func TestEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := New(Options{DefaultStart: mediation.StartEarliest})
	e.Append("a", "b")

	sub, err := e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartCursor,
		Cursor: mediation.NewCursor(mediation.Position{Stream: Stream, Offset: 1})})
	if err != nil {
		t.Fatal(err)
	}
	if next, _ := sub.Start().Next(Stream, 0); next != 1 {
		t.Fatalf("start %d, want 1", next)
	}
	m, err := sub.Next(ctx)
	if err != nil || string(m.Content) != "b" || m.Position.Offset != 1 {
		t.Fatalf("first from cursor: %+v, %v", m, err)
	}
	m.Ack()

	// Next blocks until a publish.
	got := make(chan *mediation.Message, 1)
	go func() {
		m, _ := sub.Next(ctx)
		got <- m
	}()
	if err := e.Publish(ctx, mediation.NewMessage([]byte("c"))); err != nil {
		t.Fatal(err)
	}
	if m := <-got; string(m.Content) != "c" || m.Position.Offset != 2 {
		t.Fatalf("live message %+v", m)
	} else {
		m.Nack(nil)
	}
	st := e.Await(t, "the ack and the nack", func(s State) bool { return s.Acked[1] == 1 && s.Nacked[2] == 1 })
	if st.Open != 1 {
		t.Fatalf("%d open subscriptions", st.Open)
	}
	_ = sub.Close()
	if _, err := sub.Next(ctx); !errors.Is(err, mediation.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}

	e.SetUnavailable(true)
	if err := e.Publish(ctx, mediation.NewMessage(nil)); !errors.Is(err, mediation.ErrUnavailable) {
		t.Fatalf("publish while unavailable: %v", err)
	}
	if _, err := e.Subscribe(ctx, mediation.SubscribeRequest{}); !errors.Is(err, mediation.ErrUnavailable) {
		t.Fatalf("subscribe while unavailable: %v", err)
	}
	e.SetUnavailable(false)
	for _, c := range []mediation.Cursor{
		mediation.NewCursor(mediation.Position{Stream: "other"}),
		mediation.NewCursor(mediation.Position{Stream: Stream, Offset: 99}),
	} {
		if _, err := e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: c}); !errors.Is(err, mediation.ErrBadCursor) {
			t.Errorf("cursor %v: %v, want ErrBadCursor", c.Positions(), err)
		}
	}
}
