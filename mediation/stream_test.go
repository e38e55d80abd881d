package mediation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

// A client that reconnects with the cursor of the k-th message it got reads
// exactly the messages after it, across partitions: nothing twice, nothing
// lost.
func TestStreamResumesFromEveryCursor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		start mediation.StartKind
		qos   mediation.QoS
	}{
		{desc: "autoOffsetReset earliest, qos none", start: mediation.StartEarliest, qos: mediation.QoSNone},
		{desc: "autoOffsetReset earliest, qos auto", start: mediation.StartEarliest, qos: mediation.QoSAuto},
		{desc: "autoOffsetReset latest, at-least-once", start: mediation.StartLatest, qos: mediation.QoSAtLeastOnce},
		{desc: "autoOffsetReset latest, at-most-once", start: mediation.StartLatest, qos: mediation.QoSAtMostOnce},
	}
	// Partitions in an uneven order, so that cursors hold partitions at
	// different offsets, and one partition stays empty for a while.
	order := []int32{0, 0, 2, 1, 0, 2, 2, 1, 0, 1, 2, 0}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{partitions: 3, start: tc.start, qos: tc.qos})
			s := h.stream(t, mediation.StreamRequest{})
			if got := positions(t, s.Cursor()); !slices.Equal(got, offsets(0, 0, 0)) {
				t.Errorf("cursor before any message = %v, want the start of every partition", got)
			}
			var want []string
			for i, p := range order {
				c := fmt.Sprintf("m%02d", i)
				h.ep.append(p, c)
				want = append(want, c)
			}

			var cursors []string
			nextOff := []int64{0, 0, 0}
			for i, p := range order {
				m := next(t, s)
				if string(m.Content) != want[i] {
					t.Fatalf("message %d = %q, want %q", i, m.Content, want[i])
				}
				if m.Cursor == "" {
					t.Fatalf("message %q carries no cursor", m.Content)
				}
				if m.Cursor != s.Cursor() {
					t.Errorf("message %q: cursor %q differs from Stream.Cursor() %q right after Next", m.Content, m.Cursor, s.Cursor())
				}
				nextOff[p]++
				if got := positions(t, m.Cursor); !slices.Equal(got, offsets(nextOff...)) {
					t.Errorf("cursor of message %q = %v, want %v", m.Content, got, offsets(nextOff...))
				}
				m.Ack()
				cursors = append(cursors, m.Cursor)
			}

			for k, cur := range cursors {
				r := h.stream(t, mediation.StreamRequest{Cursor: cur})
				got := readN(t, r, len(want)-k-1)
				if !slices.Equal(got, want[k+1:]) {
					t.Errorf("resumed after %s: got %v, want %v", want[k], got, want[k+1:])
				}
				if err := r.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}

			// After the last message, a resumed client gets only what comes next.
			r := h.stream(t, mediation.StreamRequest{Cursor: cursors[len(cursors)-1]})
			h.ep.append(1, "tail")
			if got := string(next(t, r).Content); got != "tail" {
				t.Errorf("resumed after the last message got %q, want tail", got)
			}
			if n := h.ep.subscribeCount(); n != len(cursors)+2 {
				t.Errorf("%d subscriptions opened, want one per client (%d): cursor clients must read from their own position", n, len(cursors)+2)
			}
		})
	}
}

// With at-least-once the broker position moves only once the client said the
// message was delivered; weaker levels let the source move on at once.
func TestStreamAcknowledgesSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc         string
		qos          mediation.QoS
		ackOnReceive bool // the source is acked when Next returns, before the client acks
	}{
		{desc: "at-least-once waits for the client", qos: mediation.QoSAtLeastOnce},
		{desc: "at-most-once acks before delivery", qos: mediation.QoSAtMostOnce, ackOnReceive: true},
		{desc: "none acks before delivery", qos: mediation.QoSNone, ackOnReceive: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{partitions: 1, start: mediation.StartEarliest, qos: tc.qos})
			pos := h.ep.append(0, "a", "b", "c", "d")
			s := h.stream(t, mediation.StreamRequest{})
			src := h.ep.sub(t, 0)
			var msgs []*mediation.Message
			for range pos {
				msgs = append(msgs, next(t, s))
			}
			for i, p := range pos {
				err, settled := src.outcome(p)
				if settled != tc.ackOnReceive || err != nil {
					t.Errorf("message %q before the client acked: source settled=%v (err %v), want settled=%v", msgs[i].Content, settled, err, tc.ackOnReceive)
				}
			}

			lost := errors.New("client went away")
			msgs[0].Ack()
			msgs[1].Nack(lost)
			msgs[3].Ack()
			msgs[1].Ack() // too late: the first outcome stands
			msgs[0].Nack(lost)

			if !tc.ackOnReceive {
				check := func(i int, wantErr error, wantSettled bool) {
					t.Helper()
					err, settled := src.outcome(pos[i])
					if settled != wantSettled || !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
						t.Errorf("source outcome of %q = %v (settled %v), want %v (settled %v)", msgs[i].Content, err, settled, wantErr, wantSettled)
					}
				}
				check(0, nil, true)
				check(1, lost, true)
				check(2, nil, false)
				check(3, nil, true)
				if got := src.committed(0); got != 1 {
					t.Errorf("committable offset = %d, want 1: nothing may be committed past the nacked message", got)
				}
			}
			src.ep.mu.Lock()
			settles := src.settles
			src.ep.mu.Unlock()
			if want := map[bool]int{true: 4, false: 3}[tc.ackOnReceive]; settles != want {
				t.Errorf("the source ack handles were called %d times, want %d (once per settled message)", settles, want)
			}
		})
	}
}

// The window bounds what a stream reads ahead of the client's acks: a client
// that stops acking stops the broker reads.
func TestStreamWindowStopsReads(t *testing.T) {
	t.Parallel()
	for _, qos := range []mediation.QoS{mediation.QoSAtLeastOnce, mediation.QoSNone} {
		t.Run(string(qos), func(t *testing.T) {
			t.Parallel()
			const window = 4
			h := newHarness(t, setup{partitions: 2, start: mediation.StartEarliest, qos: qos, window: window})
			for i := range 10 {
				h.ep.append(int32(i%2), fmt.Sprintf("m%d", i))
			}
			s := h.stream(t, mediation.StreamRequest{})
			src := h.ep.sub(t, 0)
			eventually(t, "the stream read ahead", func() bool { return src.yieldedCount() == window })
			settle()
			if n, calls := src.yieldedCount(), src.callCount(); n != window || calls != window {
				t.Fatalf("with nothing delivered the source was read %d times (%d messages), want at most the window of %d", calls, n, window)
			}
			var held []*mediation.Message
			for range window {
				held = append(held, next(t, s))
			}
			ctx := context.Background()
			if m, err := s.TryNext(ctx); m != nil || err != nil {
				t.Fatalf("TryNext with a full window = %v, %v; want nil, nil", m, err)
			}
			settle()
			if n := src.yieldedCount(); n != window {
				t.Fatalf("with %d messages unacked the source yielded %d, want %d", window, n, window)
			}
			held[0].Ack()
			if got := string(next(t, s).Content); got != "m4" {
				t.Errorf("after one ack the stream returned %q, want m4", got)
			}
			if n := src.yieldedCount(); n > window+1 {
				t.Errorf("after one ack the source yielded %d messages, want at most %d", n, window+1)
			}
		})
	}
}

// Close gives back what the stream read ahead: those messages were never
// delivered, so the source must not commit them.
func TestStreamCloseNacksReadAhead(t *testing.T) {
	t.Parallel()
	for _, qos := range []mediation.QoS{mediation.QoSAtLeastOnce, mediation.QoSNone} {
		t.Run(string(qos), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{partitions: 1, start: mediation.StartEarliest, qos: qos, window: 4})
			pos := h.ep.append(0, "a", "b", "c", "d", "e", "f")
			s := h.stream(t, mediation.StreamRequest{})
			src := h.ep.sub(t, 0)
			eventually(t, "the stream read ahead", func() bool { return src.yieldedCount() == 4 })
			next(t, s).Ack() // frees a slot: the stream reads "e" ahead too
			inFlight := next(t, s)
			eventually(t, "the stream refilled its window", func() bool { return src.yieldedCount() == 5 })

			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if !src.isClosed() {
				t.Error("Close left the subscription open")
			}
			for _, p := range pos[2:5] {
				if err, settled := src.outcome(p); !settled || !errors.Is(err, mediation.ErrClosed) {
					t.Errorf("read-ahead message at offset %d: outcome %v (settled %v), want a nack wrapping ErrClosed", p.Offset, err, settled)
				}
			}
			if err, settled := src.outcome(pos[0]); !settled || err != nil {
				t.Errorf("the acked message: outcome %v (settled %v), want acked", err, settled)
			}
			// The returned but unacked message is simply never committed
			// (at-least-once) or was acked when returned (weaker levels).
			if err, settled := src.outcome(pos[1]); (qos == mediation.QoSAtLeastOnce) == settled || err != nil {
				t.Errorf("the in-flight message %q: outcome %v (settled %v)", inFlight.Content, err, settled)
			}
			if n := src.yieldedCount(); n != 5 {
				t.Errorf("the source yielded %d messages, want 5 (the window plus the one acked)", n)
			}
			if err := nextErr(t, s); !errors.Is(err, mediation.ErrClosed) {
				t.Errorf("Next after Close = %v, want ErrClosed", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			inFlight.Ack() // late acks after Close must not panic or block
		})
	}
}

func TestStreamTryNext(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{start: mediation.StartEarliest, qos: mediation.QoSAtLeastOnce})
	s := h.stream(t, mediation.StreamRequest{})
	ctx := context.Background()
	if m, err := s.TryNext(ctx); m != nil || err != nil {
		t.Fatalf("TryNext on an idle stream = %v, %v; want nil, nil", m, err)
	}
	h.ep.append(0, "a", "b")
	var got []string
	eventually(t, "TryNext returned both messages", func() bool {
		m, err := s.TryNext(ctx)
		if err != nil {
			t.Fatalf("TryNext: %v", err)
		}
		if m != nil {
			got = append(got, string(m.Content))
			m.Ack()
		}
		return len(got) == 2
	})
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("TryNext returned %v, want [a b]", got)
	}
	if m, err := s.TryNext(ctx); m != nil || err != nil {
		t.Errorf("TryNext once drained = %v, %v; want nil, nil", m, err)
	}
}

// A source failure reaches the client after the messages read before it.
func TestStreamSourceFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{start: mediation.StartEarliest, qos: mediation.QoSAtLeastOnce})
	h.ep.append(0, "a", "b")
	s := h.stream(t, mediation.StreamRequest{})
	src := h.ep.sub(t, 0)
	eventually(t, "the stream read both messages", func() bool { return src.yieldedCount() == 2 })
	src.fail(fmt.Errorf("broker gone: %w", mediation.ErrUnavailable))
	if got := readN(t, s, 2); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("before the failure the client got %v, want [a b]", got)
	}
	if err := nextErr(t, s); !errors.Is(err, mediation.ErrUnavailable) {
		t.Errorf("Next = %v, want the source's error", err)
	}
	ctx := context.Background()
	if _, err := s.TryNext(ctx); !errors.Is(err, mediation.ErrUnavailable) {
		t.Errorf("TryNext = %v, want the source's error", err)
	}
}

func TestSubscribeRefusesBadCursors(t *testing.T) {
	t.Parallel()
	otherStream := mediation.NewCursor(mediation.Position{Stream: "other", Offset: 1}).String()
	tests := []struct {
		desc     string
		noReplay bool
		cursor   string
	}{
		{desc: "garbage", cursor: "%%%"},
		{desc: "truncated", cursor: mediation.NewCursor(offsets(5, 6)...).String()[:8]},
		{desc: "another topic", cursor: otherStream},
		{desc: "endpoint cannot replay", noReplay: true, cursor: mediation.NewCursor(offsets(1)...).String()},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{start: mediation.StartLatest, noReplay: tc.noReplay})
			s, err := h.exchange(t).Subscribe(context.Background(), mediation.StreamRequest{Cursor: tc.cursor})
			if !errors.Is(err, mediation.ErrBadCursor) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("Subscribe = %v, want an error wrapping ErrBadCursor (never a silent restart)", err)
			}
		})
	}
}

// AckAll, with which SSE acks a flushed batch, settles like Ack one by one:
// every source is acked once, the window frees for every message, already
// settled messages keep their outcome, and the stream reads on.
func TestStreamAckAll(t *testing.T) {
	t.Parallel()
	const window = 4
	h := newHarness(t, setup{partitions: 1, start: mediation.StartEarliest, qos: mediation.QoSAtLeastOnce, window: window})
	pos := h.ep.append(0, "a", "b", "c", "d", "e", "f", "g", "h")
	s := h.stream(t, mediation.StreamRequest{})
	src := h.ep.sub(t, 0)
	var held []*mediation.Message
	for range window {
		held = append(held, next(t, s))
	}
	lost := errors.New("client went away")
	held[1].Nack(lost)
	mediation.AckAll(held)
	for i, want := range []error{nil, lost, nil, nil} {
		if err, settled := src.outcome(pos[i]); !settled || !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("source outcome of message %d = %v (settled %v), want %v", i, err, settled, want)
		}
	}
	// The window is free again: the next four come without another ack.
	var rest []*mediation.Message
	for i := range window {
		m := next(t, s)
		if want := string(rune('e' + i)); string(m.Content) != want {
			t.Fatalf("after AckAll the stream returned %q, want %q", m.Content, want)
		}
		rest = append(rest, m)
	}
	mediation.AckAll(rest)
	mediation.AckAll(rest) // twice: the first outcome stands
	src.ep.mu.Lock()
	settles := src.settles
	src.ep.mu.Unlock()
	if settles != 8 {
		t.Errorf("the source ack handles were called %d times, want 8 (once per message)", settles)
	}
}
