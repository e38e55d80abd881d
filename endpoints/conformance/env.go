package conformance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// env is the endpoint and channel of one test, and the way messages get
// onto that channel.
type env struct {
	s          *suite
	ep         mediation.Endpoint
	caps       mediation.Capabilities
	channel    string
	brokerAddr string // where Produce sends
}

// newEnv builds an endpoint on a fresh channel, connecting to endpointAddr;
// Produce sends to brokerAddr. The endpoint is closed at cleanup.
func (s *suite) newEnv(t *testing.T, name, endpointAddr, brokerAddr string) *env {
	t.Helper()
	channel := fmt.Sprintf("sluice-%s-%08x", strings.ReplaceAll(name, "/", "-"), rand.Uint32())
	ep := s.h.New(t, endpointAddr, channel)
	if ep == nil {
		t.Fatal("conformance: Harness.New returned a nil endpoint")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.o.timeout)
		defer cancel()
		if err := ep.Close(ctx); err != nil && !errors.Is(err, mediation.ErrClosed) {
			t.Errorf("endpoint Close: %v", err)
		}
	})
	return &env{s: s, ep: ep, caps: ep.Capabilities(), channel: channel, brokerAddr: brokerAddr}
}

// context returns a context that ends after the suite's timeout or with
// the test.
func (e *env) context(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), e.s.o.timeout)
	t.Cleanup(cancel)
	return ctx
}

// start is where a test's first subscription begins: the earliest message
// of its fresh channel when the broker can replay (so that a consumer group
// that joins slowly misses nothing), else the live end.
func (e *env) start() mediation.StartKind {
	if e.caps.Replay {
		return mediation.StartEarliest
	}
	return mediation.StartLatest
}

// needSubscribe skips a test when the endpoint cannot subscribe.
func (e *env) needSubscribe(t *testing.T) {
	t.Helper()
	if !e.caps.Subscribe {
		t.Skip("the endpoint cannot subscribe (Capabilities.Subscribe is false)")
	}
}

// generated reports whether the endpoint yields a sequence of its own.
func (e *env) generated() bool { return e.s.o.index != nil }

// needFeed skips a test when nothing can put messages on a channel.
func (e *env) needFeed(t *testing.T) {
	t.Helper()
	if !e.generated() && e.s.h.Produce == nil && !e.caps.Publish {
		t.Skip("nothing can send messages: the endpoint cannot publish, Harness.Produce is unset and the endpoint is not a Generator")
	}
}

// message returns message i of the test: its content names the channel and
// the number, so that a message from elsewhere is recognised.
func (e *env) message(i int) *mediation.Message {
	m := mediation.NewMessage(fmt.Appendf(nil, "%s/%d", e.channel, i))
	m.Headers = mediation.Headers{}
	return m
}

// index returns the number of a message read back.
func (e *env) index(m *mediation.Message) (int, error) {
	if e.generated() {
		return e.s.o.index(m)
	}
	rest, ok := strings.CutPrefix(string(m.Content), e.channel+"/")
	if !ok {
		return 0, fmt.Errorf("message %s with content %q was not sent by this test (another channel's, or altered)", m.Identity(), truncate(m.Content))
	}
	i, err := strconv.Atoi(rest)
	if err != nil {
		return 0, fmt.Errorf("message %s with content %q was not sent by this test", m.Identity(), truncate(m.Content))
	}
	return i, nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// put sends messages from..to-1 in order, with Produce when the harness has
// it, else with the endpoint's Publish; it does nothing for a Generator,
// whose sequence is there already. Any failure fails the test.
func (e *env) put(t *testing.T, from, to int) {
	t.Helper()
	if e.generated() {
		return
	}
	if e.s.h.Produce != nil {
		msgs := make([]*mediation.Message, 0, to-from)
		for i := from; i < to; i++ {
			msgs = append(msgs, e.message(i))
		}
		e.s.h.Produce(t, e.brokerAddr, e.channel, msgs...)
		return
	}
	ctx := e.context(t)
	for i := from; i < to; i++ {
		if err := e.ep.Publish(ctx, e.message(i)); err != nil {
			t.Fatalf("Publish message %d: %v", i, err)
		}
	}
}

// putRetrying is put for tests that disturb the connection: a publish that
// fails with ErrUnavailable (the endpoint is reconnecting) is tried again
// until the suite's timeout. A retried publish may have reached the broker
// already, so such tests allow duplicates.
func (e *env) putRetrying(t *testing.T, from, to int) {
	t.Helper()
	if e.generated() || e.s.h.Produce != nil {
		e.put(t, from, to)
		return
	}
	ctx := e.context(t)
	for i := from; i < to; i++ {
		for {
			err := e.ep.Publish(ctx, e.message(i))
			if err == nil {
				break
			}
			if !errors.Is(err, mediation.ErrUnavailable) || ctx.Err() != nil {
				t.Fatalf("Publish message %d: %v", i, err)
			}
			sleep(ctx, 100*time.Millisecond)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// subscribe opens a subscription that is closed at cleanup.
func (e *env) subscribe(t *testing.T, req mediation.SubscribeRequest) mediation.Subscription {
	t.Helper()
	sub, err := e.ep.Subscribe(e.context(t), req)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", describe(req), err)
	}
	if sub == nil {
		t.Fatalf("Subscribe(%s) returned a nil subscription and no error", describe(req))
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// next reads one message, failing the test when none comes in time or the
// subscription fails.
func (e *env) next(t *testing.T, ctx context.Context, sub mediation.Subscription) *mediation.Message {
	t.Helper()
	m, err := sub.Next(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		t.Fatalf("no message within %v (Next: %v)", e.s.o.timeout, err)
	case err != nil:
		t.Fatalf("Next: %v", err)
	case m == nil:
		t.Fatal("Next returned a nil message and no error")
	}
	return m
}

// readIndices reads n messages, acknowledging each, and returns their
// numbers.
func (e *env) readIndices(t *testing.T, sub mediation.Subscription, n int) []int {
	t.Helper()
	ctx := e.context(t)
	out := make([]int, 0, n)
	for range n {
		m := e.next(t, ctx, sub)
		i, err := e.index(m)
		if err != nil {
			t.Fatal(err)
		}
		m.Ack()
		out = append(out, i)
	}
	return out
}

// readAll reads, acknowledging each message, until every number in
// [from, to) has arrived, and returns how many arrived more than once.
// Numbers outside [0, to) fail the test.
func (e *env) readAll(t *testing.T, sub mediation.Subscription, from, to int) (dups int) {
	t.Helper()
	ctx := e.context(t)
	seen := make(map[int]bool, to-from)
	missing := to - from
	for missing > 0 {
		m, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("%d of messages %d..%d did not arrive within %v (missing: %v)", missing, from, to-1, e.s.o.timeout, absent(seen, from, to))
			}
			t.Fatalf("Next returned %v: a subscription must reconnect by itself and fail only when it cannot continue", err)
		}
		i, err := e.index(m)
		if err != nil {
			t.Fatal(err)
		}
		m.Ack()
		switch {
		case i < 0 || i >= to:
			t.Fatalf("message %d arrived, but only %d were sent", i, to)
		case i < from || seen[i]:
			dups++
		default:
			seen[i] = true
			missing--
		}
	}
	return dups
}

// absent lists the numbers in [from, to) not in seen, at most 20 of them.
func absent(seen map[int]bool, from, to int) []int {
	var out []int
	for i := from; i < to && len(out) < 20; i++ {
		if !seen[i] {
			out = append(out, i)
		}
	}
	return out
}

func describe(req mediation.SubscribeRequest) string {
	var b strings.Builder
	switch req.Start {
	case mediation.StartLatest:
		b.WriteString("latest")
	case mediation.StartEarliest:
		b.WriteString("earliest")
	case mediation.StartCursor:
		b.WriteString("cursor " + req.Cursor.String())
	case mediation.StartTime:
		b.WriteString("time " + req.Time.Format(time.RFC3339Nano))
	}
	if req.Group != "" {
		b.WriteString(", group " + req.Group)
	}
	if req.QoS != "" {
		b.WriteString(", qos " + string(req.QoS))
	}
	return b.String()
}
