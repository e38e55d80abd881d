package conformance

import (
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
)

// Harness tells the suite how to build and feed the connector under test.
type Harness struct {
	// New builds a fresh endpoint for one test, with every broker address
	// pointed at brokerAddr (the real broker, or a proxy in front of it) and
	// every topic, subject or queue the endpoint publishes to or consumes
	// from named channel. Channels are unique per test, so tests never see
	// each other's messages; New creates the channel on the broker when the
	// broker needs that (a Kafka topic with one partition, a JetStream
	// stream). New fails t rather than returning nil.
	//
	// The suite closes the endpoint and its subscriptions; New may register
	// more cleanup (deleting the channel) with t.Cleanup. New must not start
	// goroutines that outlive the endpoint: the open-close test checks that
	// closing it leaves none behind.
	New func(t testing.TB, brokerAddr, channel string) mediation.Endpoint

	// BrokerAddr is the host:port of the broker. The fault tests put a
	// Proxy in front of it; they are skipped when it is empty and
	// FaultyBroker is nil (an endpoint with no broker, such as mock).
	BrokerAddr string

	// Produce, when set, sends msgs in order to channel, straight to the
	// broker at brokerAddr rather than through the endpoint, and returns
	// once the broker has them. Subscribe-side tests then do not depend on
	// the endpoint's Publish, and the round-trip test also checks that
	// headers written by another producer with upper-case names arrive
	// lower-cased. Produce writes Content, Key and Headers (names exactly
	// as given) and fails t on error.
	Produce func(t testing.TB, brokerAddr, channel string, msgs ...*mediation.Message)

	// FaultyBroker, when set, replaces the proxy the fault tests put in front
	// of BrokerAddr. It is for brokers that tell clients where to connect
	// next (Kafka's advertised listeners), whose clients would otherwise go
	// around a proxy: it starts, for one test, a broker reached only through
	// p, and returns the address Produce should use. The endpoint under test
	// gets p.Addr().
	FaultyBroker func(t testing.TB) (brokerAddr string, p *Proxy)
}

// Case names one test of the suite, as it appears in `go test -run`
// (TestConformance/ordering) and in Skip.
type Case string

// The cases of the suite, in the order they run.
const (
	// OpenClose: Close of subscriptions and of the endpoint is idempotent,
	// Next returns the context's error when it ends and ErrClosed after
	// Close (also when Close comes while Next blocks), and nothing leaks.
	OpenClose Case = "open-close"
	// RoundTrip: what Publish sends, a subscription yields, with its content,
	// an ID and a timestamp. Needs Publish and Subscribe.
	RoundTrip Case = "round-trip"
	// Keys: the message key survives the round trip.
	Keys Case = "round-trip/key"
	// Headers: multi-valued headers survive the round trip, and every
	// header name a subscription yields is lower-case.
	Headers Case = "round-trip/headers"
	// Ordering: 200 messages on one channel arrive in the order sent, with
	// increasing positions when the broker can replay.
	Ordering Case = "ordering"
	// CursorResume: a subscription reopened from the cursor of the last
	// message read yields exactly the rest. Needs Capabilities.Replay.
	CursorResume Case = "cursor-resume"
	// BadCursor: a cursor naming a stream the endpoint does not consume is
	// refused with ErrBadCursor. Needs Capabilities.Replay.
	BadCursor Case = "bad-cursor"
	// AtLeastOnce: with a Group, a nacked message and everything not acked
	// come again after a restart, and what was acked before it does not.
	// Needs the at-least-once QoS; skipped when Subscribe with a Group
	// returns ErrUnsupported.
	AtLeastOnce Case = "at-least-once"
	// DroppedConnection: a subscription survives its connections being cut,
	// without returning an error; with Replay or a Group nothing is lost.
	DroppedConnection Case = "dropped-connection"
	// PublishUnavailable: a publish to a broker that hangs or is down fails
	// with ErrUnavailable in bounded time, and publishing works again once
	// the broker is back.
	PublishUnavailable Case = "publish-unavailable"
)

// Cases lists every case of the suite.
var Cases = []Case{OpenClose, RoundTrip, Keys, Headers, Ordering, CursorResume, BadCursor, AtLeastOnce, DroppedConnection, PublishUnavailable}

// Option adjusts Run.
type Option func(*options)

type options struct {
	skip        map[Case]string
	index       func(*mediation.Message) (int, error)
	timeout     time.Duration
	unavailable time.Duration
	leak        []goleak.Option
}

// Skip skips case c, for a reason the test output shows: what the connector
// cannot do by design. A case the connector should pass but does not is a
// bug, not a skip.
func Skip(c Case, reason string) Option {
	return func(o *options) { o.skip[c] = reason }
}

// Generator declares an endpoint that yields a sequence of its own instead
// of what is published: every subscription from the start (earliest, or
// Start of a fresh endpoint) yields messages 0, 1, 2, ... without end, and
// index returns the number of a message. The subscribe-side tests
// (ordering, cursor resume, at-least-once) then read that sequence rather
// than sending messages; tests that need the content of a message to come
// back (round-trip) still need Skip.
func Generator(index func(*mediation.Message) (int, error)) Option {
	return func(o *options) { o.index = index }
}

// Timeout bounds every wait for something that must happen (a message, a
// reconnection). Default 60s: the suite never asserts speed, only that
// things happen, so it should not fail on a busy machine.
func Timeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// UnavailableWithin is the deadline of the context of a publish to a broker
// that is down: the publish must fail with an error wrapping
// mediation.ErrUnavailable by then. Default 30s.
func UnavailableWithin(d time.Duration) Option {
	return func(o *options) { o.unavailable = d }
}

// LeakOptions are passed to goleak when the open-close test looks for
// goroutines left behind, to ignore ones the connector's libraries keep
// for the life of the process.
func LeakOptions(opts ...goleak.Option) Option {
	return func(o *options) { o.leak = append(o.leak, opts...) }
}

// Run runs every case of the suite against the connector that h builds, each
// as a subtest of t. Cases are skipped, with a message saying why, when the
// endpoint's Capabilities say it cannot do what they need, when the harness
// lacks what they need (a broker address for the fault tests), or when
// opts skip them.
//
// Run must be called from a test that is not parallel: open-close runs
// first and alone, so that its goroutine-leak check sees only the
// endpoint's goroutines; every other case then runs in parallel.
func Run(t *testing.T, h Harness, opts ...Option) {
	t.Helper()
	if h.New == nil {
		t.Fatal("conformance: Harness.New is required")
	}
	o := options{skip: map[Case]string{}, timeout: 60 * time.Second, unavailable: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	for c := range o.skip {
		if !slices.Contains(Cases, c) {
			t.Fatalf("conformance: Skip(%q): no such case (cases: %v)", c, Cases)
		}
	}
	s := &suite{h: h, o: o}
	s.run(t, OpenClose, false, s.testOpenClose)
	s.run(t, RoundTrip, true, s.testRoundTrip)
	s.run(t, Ordering, true, s.testOrdering)
	s.run(t, CursorResume, true, s.testCursorResume)
	s.run(t, BadCursor, true, s.testBadCursor)
	s.run(t, AtLeastOnce, true, s.testAtLeastOnce)
	s.run(t, DroppedConnection, true, s.testDroppedConnection)
	s.run(t, PublishUnavailable, true, s.testPublishUnavailable)
}

// suite is one Run.
type suite struct {
	h Harness
	o options
}

// run runs case c as a subtest named after it.
func (s *suite) run(t *testing.T, c Case, parallel bool, f func(*testing.T)) {
	t.Run(string(c), func(t *testing.T) {
		s.skipIfAsked(t, c)
		if parallel {
			t.Parallel()
		}
		f(t)
	})
}

func (s *suite) skipIfAsked(t *testing.T, c Case) {
	t.Helper()
	if reason, ok := s.o.skip[c]; ok {
		t.Skipf("skipped by the harness: %s", reason)
	}
}
