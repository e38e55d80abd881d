package conformance

import (
	"errors"
	"slices"
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

// The at-least-once test sends groupCount messages. The first subscription
// reads messages 0..groupRead-1: it acks those before groupNack, nacks
// groupNack, acks the groupAckedAfter messages after it and leaves the rest
// it read unsettled.
const (
	groupCount      = 12
	groupRead       = 9
	groupNack       = 4
	groupAckedAfter = 2
)

// testAtLeastOnce checks the Benthos model with a consumer group: after a
// restart, the nacked message and everything not acknowledged come again,
// and what was acknowledged before the nack does not.
func (s *suite) testAtLeastOnce(t *testing.T) {
	e := s.newEnv(t, "at-least-once", s.h.BrokerAddr, s.h.BrokerAddr)
	e.needSubscribe(t)
	if !e.caps.Supports(mediation.QoSAtLeastOnce) {
		t.Skip("the endpoint does not offer the at-least-once QoS (Capabilities.QoS)")
	}
	e.needFeed(t)
	req := mediation.SubscribeRequest{Start: e.start(), Group: e.channel + "-group", QoS: mediation.QoSAtLeastOnce}

	first, err := e.ep.Subscribe(e.context(t), req)
	if errors.Is(err, mediation.ErrUnsupported) {
		t.Skipf("Subscribe with a Group: %v", err)
	}
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", describe(req), err)
	}
	t.Cleanup(func() { _ = first.Close() })
	e.put(t, 0, groupCount)

	// The messages of one channel arrive in order; a message nacked may come
	// back at once on brokers that redeliver nacks: it is ignored here.
	ctx := e.context(t)
	for want := 0; want < groupRead; {
		m := e.next(t, ctx, first)
		got, err := e.index(m)
		if err != nil {
			t.Fatal(err)
		}
		if got < want {
			continue // a redelivery; left unsettled
		}
		if got != want {
			t.Fatalf("message %d arrived where message %d was due", got, want)
		}
		switch {
		case got < groupNack, got > groupNack && got <= groupNack+groupAckedAfter:
			m.Ack()
		case got == groupNack:
			m.Nack(errors.New("conformance: nacked on purpose"))
		}
		want++
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close of the first subscription: %v (Close commits what was acked)", err)
	}

	// Everything from the nack on that was not acked must come again.
	var due []int
	for i := groupNack; i < groupCount; i++ {
		if i <= groupNack || i > groupNack+groupAckedAfter {
			due = append(due, i)
		}
	}
	second := e.subscribe(t, req)
	for len(due) > 0 {
		m, err := second.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("after reopening the group, messages %v did not come again within %v: a nacked or unacknowledged message must be delivered again", due, e.s.o.timeout)
			}
			t.Fatalf("Next: %v", err)
		}
		got, err := e.index(m)
		if err != nil {
			t.Fatal(err)
		}
		if got < groupNack {
			t.Fatalf("message %d, acknowledged before the nack, came again after a clean Close: Close must commit what was acked", got)
		}
		m.Ack()
		due = slices.DeleteFunc(due, func(i int) bool { return i == got })
	}
	if err := second.Close(); err != nil {
		t.Fatalf("Close of the second subscription: %v", err)
	}

	// Everything is acknowledged now: a third subscription starts with the
	// next message sent.
	third := e.subscribe(t, req)
	e.put(t, groupCount, groupCount+1)
	for {
		m := e.next(t, ctx, third)
		got, err := e.index(m)
		if err != nil {
			t.Fatal(err)
		}
		m.Ack()
		if got == groupCount {
			return
		}
		if got < groupNack || got > groupNack+groupAckedAfter {
			t.Fatalf("message %d, acknowledged by the second subscription, came again after a clean Close", got)
		}
		// Messages acked after the nack by the first subscription may still
		// come (duplicates are allowed at least once); nothing else.
	}
}
