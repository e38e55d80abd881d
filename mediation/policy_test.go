package mediation_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

// dropPolicy drops messages whose content is drop and fails those whose
// content is fail; it tags the others.
type dropPolicy struct{}

var errPolicy = errors.New("policy refused the message")

func (dropPolicy) OnMessage(_ context.Context, _ *mediation.Exchange, m *mediation.Message) (*mediation.Message, error) {
	switch string(m.Content) {
	case "drop":
		return nil, nil
	case "fail":
		return nil, errPolicy
	}
	c := m.Clone()
	c.Headers.Set("X-Seen", "yes")
	return c, nil
}

var _ mediation.MessagePolicy = dropPolicy{}

func dropFlow() []mediation.Flow {
	return []mediation.Flow{{Name: "filter", Subscribe: []mediation.Policy{dropPolicy{}}, Publish: []mediation.Policy{dropPolicy{}}}}
}

// A message a subscribe-phase policy drops counts as handled: the source is
// acked, it takes no room in the window, and the cursor moves past it, so a
// client resuming never sees it again.
func TestSubscribePolicyDropAdvancesCursor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		start mediation.StartKind
		qos   mediation.QoS
		own   bool
	}{
		{desc: "own stream, at-least-once", start: mediation.StartEarliest, qos: mediation.QoSAtLeastOnce, own: true},
		{desc: "own stream, none", start: mediation.StartEarliest, qos: mediation.QoSNone, own: true},
		{desc: "shared stream", start: mediation.StartLatest, qos: mediation.QoSNone},
	}
	// With a window of one, dropped messages must free their slot or "keep"
	// never arrives on an own stream. A shared stream gets the same window
	// with the block policy, so that the hub never disconnects it.
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{partitions: 2, start: tc.start, qos: tc.qos, window: 1,
				slow: mediation.SlowConsumerBlock, flows: dropFlow()})
			s := h.stream(t, mediation.StreamRequest{})
			src := h.ep.sub(t, 0)
			drops := h.ep.append(0, "drop", "drop", "drop")
			h.ep.append(1, "keep")
			m := next(t, s)
			if string(m.Content) != "keep" {
				t.Fatalf("got %q, want keep", m.Content)
			}
			if m.Headers.Get("x-seen") != "yes" {
				t.Error("the policy's change did not reach the client")
			}
			if got := positions(t, m.Cursor); !slices.Equal(got, offsets(3, 1)) {
				t.Errorf("cursor after the dropped messages and keep = %v, want %v", got, offsets(3, 1))
			}
			if tc.own {
				for _, p := range drops {
					if err, settled := src.outcome(p); !settled || err != nil {
						t.Errorf("dropped message at offset %d: outcome %v (settled %v), want acked", p.Offset, err, settled)
					}
				}
				if err, settled := src.outcome(m.Position); settled != (tc.qos != mediation.QoSAtLeastOnce) || err != nil {
					t.Errorf("delivered message before the client's ack: outcome %v, settled %v", err, settled)
				}
			}
			m.Ack()

			// A drop with nothing after it still moves the stream's cursor: an
			// empty GET page carries a nextCursor past it.
			h.ep.append(0, "drop")
			eventually(t, "the cursor moved past the trailing dropped message", func() bool {
				m, err := s.TryNext(context.Background())
				if m != nil || err != nil {
					t.Fatalf("TryNext = %v, %v; want nothing to deliver", m, err)
				}
				return slices.Equal(positions(t, s.Cursor()), offsets(4, 1))
			})
		})
	}
}

// A subscribe-phase policy failure nacks the message and reaches the client.
func TestSubscribePolicyFailureNacks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{start: mediation.StartEarliest, qos: mediation.QoSAtLeastOnce, flows: dropFlow()})
	pos := h.ep.append(0, "ok", "fail")
	s := h.stream(t, mediation.StreamRequest{})
	src := h.ep.sub(t, 0)
	next(t, s).Ack()
	if err := nextErr(t, s); !errors.Is(err, errPolicy) {
		t.Fatalf("Next = %v, want the policy's error", err)
	}
	if err, settled := src.outcome(pos[1]); !settled || !errors.Is(err, errPolicy) {
		t.Errorf("the failed message: outcome %v (settled %v), want a nack with the policy's error", err, settled)
	}
	if got := src.committed(0); got != 1 {
		t.Errorf("committable offset %d, want 1: the failed message must be read again", got)
	}
}

// Publish runs the publish phase: a dropped message is done without reaching
// the broker, a failed one fails the publish.
func TestPublishPhase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{flows: dropFlow()})
	x := h.exchange(t)
	ctx := context.Background()
	for _, c := range []string{"a", "drop", "b"} {
		if err := x.Publish(ctx, mediation.NewMessage([]byte(c))); err != nil {
			t.Fatalf("Publish(%q): %v", c, err)
		}
	}
	if err := x.Publish(ctx, mediation.NewMessage([]byte("fail"))); !errors.Is(err, errPolicy) {
		t.Errorf("Publish(fail) = %v, want the policy's error", err)
	}
	h.ep.mu.Lock()
	got := slices.Clone(h.ep.published)
	h.ep.mu.Unlock()
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("the broker got %v, want [a b]", got)
	}
	if n := h.meter.in.Load(); n != 2 {
		t.Errorf("messages-in metric = %d, want 2", n)
	}
}
