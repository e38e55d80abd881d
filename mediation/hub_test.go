package mediation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// Which clients share the API's live broker subscription and which read from
// their own position.
func TestSubscribeSharesOnlyLiveClients(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		start  mediation.StartKind
		qos    mediation.QoS
		req    mediation.StreamRequest
		shared bool
	}{
		{desc: "latest, qos none", start: mediation.StartLatest, qos: mediation.QoSNone, shared: true},
		{desc: "latest, qos auto", start: mediation.StartLatest, qos: mediation.QoSAuto, shared: true},
		{desc: "latest, at-most-once", start: mediation.StartLatest, qos: mediation.QoSAtMostOnce},
		{desc: "latest, at-least-once", start: mediation.StartLatest, qos: mediation.QoSAtLeastOnce},
		{desc: "earliest, qos none", start: mediation.StartEarliest, qos: mediation.QoSNone},
		{desc: "latest, qos none, with a cursor", start: mediation.StartLatest, qos: mediation.QoSNone,
			req: mediation.StreamRequest{Cursor: mediation.NewCursor(offsets(0)...).String()}},
		{desc: "latest, qos none, in a group", start: mediation.StartLatest, qos: mediation.QoSNone,
			req: mediation.StreamRequest{Group: "billing"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{start: tc.start, qos: tc.qos})
			a := h.stream(t, tc.req)
			b := h.stream(t, tc.req)
			want := map[bool]int{true: 1, false: 2}[tc.shared]
			if n := h.ep.subscribeCount(); n != want {
				t.Fatalf("two clients opened %d broker subscriptions, want %d", n, want)
			}
			for i := range want {
				req := h.ep.sub(t, i).req
				if req.Group != tc.req.Group {
					t.Errorf("subscription group %q, want %q", req.Group, tc.req.Group)
				}
				if !tc.shared && req.QoS != tc.qos {
					t.Errorf("own subscription asked qos %q, want the entrypoint's %q", req.QoS, tc.qos)
				}
			}
			h.ep.append(0, "x")
			for _, s := range []*mediation.Stream{a, b} {
				if got := string(next(t, s).Content); got != "x" {
					t.Errorf("client got %q, want x", got)
				}
			}
		})
	}
}

// Live clients share one broker subscription; each gets every message from
// the moment it joined, and the subscription lives as long as a client does.
func TestHubFanOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{partitions: 2, start: mediation.StartLatest, qos: mediation.QoSNone})
	h.ep.append(0, "before") // history a live client never sees
	a := h.stream(t, mediation.StreamRequest{})
	b := h.stream(t, mediation.StreamRequest{})
	if n := h.ep.subscribeCount(); n != 1 {
		t.Fatalf("two live clients opened %d broker subscriptions, want 1", n)
	}
	if got := positions(t, a.Cursor()); !slices.Equal(got, offsets(1, 0)) {
		t.Errorf("a live client starts at %v, want the latest positions %v", got, offsets(1, 0))
	}

	var first []string
	for i := range 6 {
		c := fmt.Sprintf("m%d", i)
		h.ep.append(int32(i%2), c)
		first = append(first, c)
	}
	for name, s := range map[string]*mediation.Stream{"a": a, "b": b} {
		var cursor string
		for _, want := range first {
			m := next(t, s)
			if string(m.Content) != want {
				t.Fatalf("client %s got %q, want %q", name, m.Content, want)
			}
			if m.Cursor == "" {
				t.Fatalf("client %s: message %q has no cursor", name, m.Content)
			}
			cursor = m.Cursor
			m.Ack()
		}
		if got := positions(t, cursor); !slices.Equal(got, offsets(4, 3)) {
			t.Errorf("client %s: cursor after every message = %v, want %v", name, got, offsets(4, 3))
		}
	}

	// A client joining now starts where the shared subscription is.
	c := h.stream(t, mediation.StreamRequest{})
	joinedAt := c.Cursor()
	if got := positions(t, joinedAt); !slices.Equal(got, offsets(4, 3)) {
		t.Errorf("a late client starts at %v, want the current position %v", got, offsets(4, 3))
	}
	h.ep.append(1, "late1")
	h.ep.append(0, "late2")
	for name, s := range map[string]*mediation.Stream{"a": a, "b": b, "c": c} {
		if got := readN(t, s, 2); !slices.Equal(got, []string{"late1", "late2"}) {
			t.Errorf("client %s got %v, want [late1 late2]", name, got)
		}
	}
	if m, err := c.TryNext(context.Background()); m != nil || err != nil {
		t.Errorf("the late client got more: %v, %v", m, err)
	}
	// Its starting cursor means the same thing to a client that reads from
	// its own position.
	own := h.stream(t, mediation.StreamRequest{Cursor: joinedAt})
	if got := readN(t, own, 2); !slices.Equal(got, []string{"late1", "late2"}) {
		t.Errorf("resuming from the late client's start gave %v, want [late1 late2]", got)
	}
	if n := h.ep.subscribeCount(); n != 2 {
		t.Errorf("%d broker subscriptions, want 2 (the shared one and the cursor client's)", n)
	}

	shared := h.ep.sub(t, 0)
	for _, s := range []*mediation.Stream{a, b} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	h.ep.append(0, "after-a-b")
	if got := string(next(t, c).Content); got != "after-a-b" {
		t.Errorf("the remaining client got %q, want after-a-b", got)
	}
	if shared.isClosed() {
		t.Fatal("the shared subscription closed while a client still reads it")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !shared.isClosed() {
		t.Error("the last client left but the shared subscription stays open")
	}

	// The next live client opens a fresh subscription.
	d := h.stream(t, mediation.StreamRequest{})
	if n := h.ep.subscribeCount(); n != 3 {
		t.Fatalf("%d broker subscriptions, want a new one for the next live client", n)
	}
	h.ep.append(1, "fresh")
	if got := string(next(t, d).Content); got != "fresh" {
		t.Errorf("the new client got %q, want fresh", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := own.Close(); err != nil {
		t.Fatal(err)
	}
	if n := h.meter.streams.Load(); n != 0 {
		t.Errorf("open streams gauge = %d after every stream closed, want 0", n)
	}
}

// lockstep appends each message and waits until the fast client received it.
// The hub offers a message to clients in the order they joined, so once the
// fast client (joined second) has it, the slow one was offered it too.
func lockstep(t *testing.T, h *harness, fast *mediation.Stream, contents ...string) {
	t.Helper()
	for _, c := range contents {
		h.ep.append(0, c)
		m := next(t, fast)
		if string(m.Content) != c {
			t.Fatalf("the fast client got %q, want %q", m.Content, c)
		}
		m.Ack()
	}
}

// Under the disconnect policy a client that cannot keep up loses its stream
// (and gets every message it was given up to then), and never receives a
// message after a gap: it reconnects with its last cursor instead.
func TestHubSlowConsumerDisconnect(t *testing.T) {
	t.Parallel()
	for _, policy := range []mediation.SlowConsumerPolicy{mediation.SlowConsumerDisconnect, ""} {
		t.Run(fmt.Sprintf("policy %q", policy), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{start: mediation.StartLatest, window: 2, slow: policy})
			slow := h.stream(t, mediation.StreamRequest{})
			fast := h.stream(t, mediation.StreamRequest{})
			lockstep(t, h, fast, "1", "2", "3", "4", "5")
			if n := h.meter.dropped.Load(); n < 1 {
				t.Errorf("dropped metric = %d, want the disconnect counted", n)
			}

			var got []string
			var last string
			for range 2 {
				m := next(t, slow)
				got = append(got, string(m.Content))
				last = m.Cursor
				m.Ack()
			}
			if !slices.Equal(got, []string{"1", "2"}) {
				t.Fatalf("the slow client got %v before its disconnect, want [1 2]", got)
			}
			lockstep(t, h, fast, "6") // the fast client keeps receiving

			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			if m, err := slow.Next(ctx); !errors.Is(err, mediation.ErrSlowConsumer) {
				desc := fmt.Sprint(err)
				if m != nil {
					desc = fmt.Sprintf("message %q, silently skipping 3, 4 and 5", m.Content)
				}
				t.Fatalf("the disconnected client's Next = %s, want ErrSlowConsumer", desc)
			}

			// Reconnecting with the last cursor loses nothing.
			again := h.stream(t, mediation.StreamRequest{Cursor: last})
			if got := readN(t, again, 4); !slices.Equal(got, []string{"3", "4", "5", "6"}) {
				t.Errorf("resumed after the disconnect: got %v, want [3 4 5 6]", got)
			}
		})
	}
}

// Under drop-oldest a slow client keeps the newest window of messages.
func TestHubSlowConsumerDropOldest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{start: mediation.StartLatest, window: 2, slow: mediation.SlowConsumerDropOldest})
	slow := h.stream(t, mediation.StreamRequest{})
	fast := h.stream(t, mediation.StreamRequest{})
	lockstep(t, h, fast, "1", "2", "3", "4", "5")
	if got := readN(t, slow, 2); !slices.Equal(got, []string{"4", "5"}) {
		t.Errorf("the slow client got %v, want the newest window [4 5]", got)
	}
	if m, err := slow.TryNext(context.Background()); m != nil || err != nil {
		t.Errorf("the slow client got more: %v, %v", m, err)
	}
	if n := h.meter.dropped.Load(); n != 3 {
		t.Errorf("dropped metric = %d, want 3", n)
	}
	lockstep(t, h, fast, "6")
	if got := readN(t, slow, 1); !slices.Equal(got, []string{"6"}) {
		t.Errorf("the slow client got %v, want [6]: it stays connected", got)
	}
}

// Under block the shared subscription waits for the slowest client.
func TestHubSlowConsumerBlock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{start: mediation.StartLatest, window: 1, slow: mediation.SlowConsumerBlock})
	slow := h.stream(t, mediation.StreamRequest{})
	fast := h.stream(t, mediation.StreamRequest{})
	src := h.ep.sub(t, 0)
	lockstep(t, h, fast, "1")
	h.ep.append(0, "2", "3")
	eventually(t, "the hub read message 2", func() bool { return src.yieldedCount() == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	m, err := fast.Next(ctx)
	cancel()
	if m != nil {
		t.Fatalf("the fast client got %q while the slow one's window was full: the hub did not wait", m.Content)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fast.Next = %v, want to wait", err)
	}
	if n := src.yieldedCount(); n != 2 {
		t.Errorf("the hub read %d messages while blocked, want 2", n)
	}
	if n := h.meter.dropped.Load(); n != 0 {
		t.Errorf("dropped metric = %d under block, want 0", n)
	}

	// Each read of the slow client lets the hub go one message further.
	for _, step := range []struct {
		s    *mediation.Stream
		want string
	}{{slow, "1"}, {fast, "2"}, {slow, "2"}, {fast, "3"}, {slow, "3"}} {
		if got := readN(t, step.s, 1); got[0] != step.want {
			t.Fatalf("got %q, want %q", got[0], step.want)
		}
	}

	// A blocked hub does not keep a leaving client's stream: closing the slow
	// client unblocks the others.
	h.ep.append(0, "4", "5")
	eventually(t, "the hub read message 5", func() bool { return src.yieldedCount() == 5 })
	if err := slow.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, fast, 2); !slices.Equal(got, []string{"4", "5"}) {
		t.Errorf("after the slow client left the fast one got %v, want [4 5]", got)
	}
}

// A shared subscription that fails ends every client's stream with its
// error; the next client opens a new one.
func TestHubSourceFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{start: mediation.StartLatest})
	a := h.stream(t, mediation.StreamRequest{})
	b := h.stream(t, mediation.StreamRequest{})
	h.ep.sub(t, 0).fail(fmt.Errorf("lost the broker: %w", mediation.ErrUnavailable))
	for _, s := range []*mediation.Stream{a, b} {
		if err := nextErr(t, s); !errors.Is(err, mediation.ErrUnavailable) {
			t.Errorf("Next = %v, want the subscription's error", err)
		}
	}
	c := h.stream(t, mediation.StreamRequest{})
	if n := h.ep.subscribeCount(); n != 2 {
		t.Fatalf("%d subscriptions, want a fresh one after the failure", n)
	}
	h.ep.append(0, "x")
	if got := string(next(t, c).Content); got != "x" {
		t.Errorf("the new client got %q, want x", got)
	}
}

// Clients of a shared subscription take and ack the same source messages at
// the same time; under -race this catches a copy that reads the source's
// acknowledgement state while another client settles it.
func TestHubConcurrentAcks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{partitions: 1, start: mediation.StartLatest, qos: mediation.QoSNone})
	a := h.stream(t, mediation.StreamRequest{})
	b := h.stream(t, mediation.StreamRequest{})
	const n = 300
	for i := range n {
		h.ep.append(0, fmt.Sprint(i))
	}
	var wg sync.WaitGroup
	for _, s := range []*mediation.Stream{a, b} {
		wg.Go(func() {
			for range n {
				next(t, s).Ack()
			}
		})
	}
	wg.Wait()
}
