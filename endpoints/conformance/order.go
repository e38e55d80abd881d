package conformance

import (
	"errors"
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

// orderingCount is how many messages the ordering test sends.
const orderingCount = 200

// testOrdering sends 200 messages on one channel and expects them in order.
func (s *suite) testOrdering(t *testing.T) {
	e := s.newEnv(t, "ordering", s.h.BrokerAddr, s.h.BrokerAddr)
	e.needSubscribe(t)
	e.needFeed(t)
	sub := e.subscribe(t, mediation.SubscribeRequest{Start: e.start(), QoS: mediation.QoSAuto})
	e.put(t, 0, orderingCount)

	ctx := e.context(t)
	last := map[mediation.Position]int64{} // per stream and partition (Offset 0)
	for want := range orderingCount {
		m := e.next(t, ctx, sub)
		got, err := e.index(m)
		if err != nil {
			t.Fatal(err)
		}
		m.Ack()
		if got != want {
			t.Fatalf("message %d arrived where message %d was due: messages of one channel must arrive in the order sent", got, want)
		}
		if !e.caps.Replay {
			continue
		}
		p := m.Position
		if p.Stream == "" {
			t.Fatalf("message %d has no Position, but the endpoint can replay", got)
		}
		key := mediation.Position{Stream: p.Stream, Partition: p.Partition}
		if prev, ok := last[key]; ok && p.Offset <= prev {
			t.Fatalf("message %d is at offset %d of %s/%d, not after the previous message's %d", got, p.Offset, p.Stream, p.Partition, prev)
		}
		last[key] = p.Offset
	}
}

// cursorCount and cursorRead: the cursor test sends cursorCount messages,
// reads cursorRead of them, then resumes.
const (
	cursorCount = 20
	cursorRead  = 7
)

// testCursorResume reads some messages, keeping a cursor as the engine
// does, then resumes from the cursor's token in a new subscription.
func (s *suite) testCursorResume(t *testing.T) {
	e := s.newEnv(t, "cursor-resume", s.h.BrokerAddr, s.h.BrokerAddr)
	e.needSubscribe(t)
	e.needReplay(t)
	e.needFeed(t)
	e.put(t, 0, cursorCount)

	first := e.subscribe(t, mediation.SubscribeRequest{Start: mediation.StartEarliest, QoS: mediation.QoSAuto})
	cursor := first.Start().Clone()
	if cursor.IsZero() {
		t.Fatal("Start() of a subscription from earliest is empty; an endpoint that can replay reports the next offset of every partition it reads")
	}
	ctx := e.context(t)
	for want := range cursorRead {
		m := e.next(t, ctx, first)
		got, err := e.index(m)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("message %d arrived where message %d was due", got, want)
		}
		if m.Position.Stream == "" {
			t.Fatalf("message %d has no Position, but the endpoint can replay", got)
		}
		m.Ack()
		cursor.Advance(m.Position)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// The cursor travels to the client as a token and comes back.
	resume, err := mediation.ParseCursor(cursor.String())
	if err != nil {
		t.Fatalf("ParseCursor(%q): %v", cursor.String(), err)
	}
	second := e.subscribe(t, mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: resume, QoS: mediation.QoSAuto})
	start := second.Start()
	for _, p := range resume.Positions() {
		if got, ok := start.Next(p.Stream, p.Partition); !ok || got != p.Offset {
			t.Errorf("Start() of the resumed subscription has %s/%d at %d (present: %v), want the cursor's %d", p.Stream, p.Partition, got, ok, p.Offset)
		}
	}
	for want := cursorRead; want < cursorCount; want++ {
		m := e.next(t, ctx, second)
		got, err := e.index(m)
		if err != nil {
			t.Fatal(err)
		}
		m.Ack()
		if got != want {
			t.Fatalf("after resuming from the cursor of message %d, message %d arrived where message %d was due: a cursor resumes exactly after the last message read, nothing skipped, nothing twice", cursorRead-1, got, want)
		}
	}
}

// testBadCursor resumes from a cursor of a stream the endpoint does not
// read: a client's stale or forged token is refused, never silently read
// from zero.
func (s *suite) testBadCursor(t *testing.T) {
	e := s.newEnv(t, "bad-cursor", s.h.BrokerAddr, s.h.BrokerAddr)
	e.needSubscribe(t)
	e.needReplay(t)
	foreign := mediation.NewCursor(mediation.Position{Stream: "not-" + e.channel, Partition: 0, Offset: 1})
	sub, err := e.ep.Subscribe(e.context(t), mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: foreign, QoS: mediation.QoSAuto})
	if sub != nil {
		_ = sub.Close()
	}
	if !errors.Is(err, mediation.ErrBadCursor) {
		t.Fatalf("Subscribe from a cursor naming stream %q, which the endpoint does not read, = %v, want an error wrapping ErrBadCursor", "not-"+e.channel, err)
	}
}

// needReplay skips a test when the endpoint cannot replay.
func (e *env) needReplay(t *testing.T) {
	t.Helper()
	if !e.caps.Replay {
		t.Skip("the endpoint cannot replay (Capabilities.Replay is false): no cursors")
	}
}
