package mediation_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// waitFor bounds every wait of the tests. It is generous on purpose: the tests
// never assert speed, and a busy 2-core machine under -race can be slow.
const waitFor = 10 * time.Second

// fakeStream is the one stream (topic) of a fakeEndpoint.
const fakeStream = "t"

// fakeEndpoint is an in-memory, replayable broker with one stream of several
// partitions. Tests append messages; subscriptions replay them from the
// requested start and block in Next until more are appended. Every
// subscription records what it yielded and how each message was settled.
type fakeEndpoint struct {
	caps       mediation.Capabilities
	partitions int32

	mu         sync.Mutex
	log        []fakeRecord  // every message, in append order
	nextOff    []int64       // per partition: the offset of the next append
	appended   chan struct{} // closed and replaced on every append
	subscribes []mediation.SubscribeRequest
	subs       []*fakeSub
	published  []string
	closed     bool
}

type fakeRecord struct {
	pos     mediation.Position
	content string
}

func newFakeEndpoint(partitions int, start mediation.StartKind) *fakeEndpoint {
	return &fakeEndpoint{
		caps: mediation.Capabilities{
			Publish: true, Subscribe: true, Replay: true,
			QoS: mediation.AllQoS, DefaultStart: start,
		},
		partitions: int32(partitions),
		nextOff:    make([]int64, partitions),
		appended:   make(chan struct{}),
	}
}

// append adds messages to a partition and returns their positions.
func (e *fakeEndpoint) append(partition int32, contents ...string) []mediation.Position {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []mediation.Position
	for _, c := range contents {
		p := mediation.Position{Stream: fakeStream, Partition: partition, Offset: e.nextOff[partition]}
		e.nextOff[partition]++
		e.log = append(e.log, fakeRecord{pos: p, content: c})
		out = append(out, p)
	}
	close(e.appended)
	e.appended = make(chan struct{})
	return out
}

func (e *fakeEndpoint) Publish(_ context.Context, msg *mediation.Message) error {
	e.mu.Lock()
	e.published = append(e.published, string(msg.Content))
	e.mu.Unlock()
	return nil
}

func (e *fakeEndpoint) Subscribe(_ context.Context, req mediation.SubscribeRequest) (mediation.Subscription, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &fakeSub{
		ep: e, req: req, start: make([]int64, e.partitions),
		outcomes: map[mediation.Position]error{}, closed: make(chan struct{}),
	}
	switch req.Start {
	case mediation.StartLatest:
		s.gi = len(e.log)
		copy(s.start, e.nextOff)
	case mediation.StartEarliest:
	case mediation.StartCursor:
		for _, p := range req.Cursor.Positions() {
			if p.Stream != fakeStream || p.Partition < 0 || p.Partition >= e.partitions {
				return nil, fmt.Errorf("%w: %s/%d is not a partition of this endpoint", mediation.ErrBadCursor, p.Stream, p.Partition)
			}
			s.start[p.Partition] = p.Offset
		}
	default:
		return nil, fmt.Errorf("start %d: %w", req.Start, mediation.ErrUnsupported)
	}
	for p, off := range s.start {
		s.startCursor.Set(mediation.Position{Stream: fakeStream, Partition: int32(p), Offset: off})
	}
	e.subscribes = append(e.subscribes, req)
	e.subs = append(e.subs, s)
	return s, nil
}

func (e *fakeEndpoint) Capabilities() mediation.Capabilities { return e.caps }

func (e *fakeEndpoint) Close(context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return nil
}

// subscribeCount is how many subscriptions were opened.
func (e *fakeEndpoint) subscribeCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}

// sub returns the i-th subscription opened.
func (e *fakeEndpoint) sub(t *testing.T, i int) *fakeSub {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if i >= len(e.subs) {
		t.Fatalf("subscription %d was never opened (%d were)", i, len(e.subs))
	}
	return e.subs[i]
}

// fakeSub is one subscription of a fakeEndpoint. Its mutable state is
// guarded by ep.mu.
type fakeSub struct {
	ep          *fakeEndpoint
	req         mediation.SubscribeRequest
	startCursor mediation.Cursor

	gi       int     // index in ep.log of the next record to consider
	start    []int64 // per partition: records below this offset are skipped
	calls    int     // Next calls
	yielded  []mediation.Position
	outcomes map[mediation.Position]error // settled messages: nil = acked
	settles  int                          // ack handle calls, to catch doubles
	failErr  error

	closeOnce sync.Once
	closed    chan struct{}
}

func (s *fakeSub) Start() mediation.Cursor { return s.startCursor }

func (s *fakeSub) Next(ctx context.Context) (*mediation.Message, error) {
	e := s.ep
	e.mu.Lock()
	s.calls++
	e.mu.Unlock()
	for {
		e.mu.Lock()
		select {
		case <-s.closed:
			e.mu.Unlock()
			return nil, mediation.ErrClosed
		default:
		}
		if s.failErr != nil {
			err := s.failErr
			e.mu.Unlock()
			return nil, err
		}
		for s.gi < len(e.log) {
			r := e.log[s.gi]
			s.gi++
			if r.pos.Offset < s.start[r.pos.Partition] {
				continue
			}
			s.yielded = append(s.yielded, r.pos)
			e.mu.Unlock()
			return s.message(r), nil
		}
		wait := e.appended
		e.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.closed:
			return nil, mediation.ErrClosed
		}
	}
}

func (s *fakeSub) message(r fakeRecord) *mediation.Message {
	m := mediation.NewMessage([]byte(r.content))
	m.ID = fmt.Sprintf("%s/%d/%d", r.pos.Stream, r.pos.Partition, r.pos.Offset)
	m.Position = r.pos
	m.Headers = mediation.Headers{}
	m.Metadata = map[string]string{
		"partition": strconv.Itoa(int(r.pos.Partition)),
		"offset":    strconv.FormatInt(r.pos.Offset, 10),
	}
	m.SetAck(func(err error) {
		s.ep.mu.Lock()
		defer s.ep.mu.Unlock()
		s.settles++
		s.outcomes[r.pos] = err
	})
	return m
}

func (s *fakeSub) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// fail makes Next return err once the messages already appended are read.
func (s *fakeSub) fail(err error) {
	s.ep.mu.Lock()
	s.failErr = err
	s.ep.mu.Unlock()
	s.ep.append(0) // wake a waiting Next without adding a message
}

func (s *fakeSub) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func (s *fakeSub) yieldedCount() int {
	s.ep.mu.Lock()
	defer s.ep.mu.Unlock()
	return len(s.yielded)
}

func (s *fakeSub) callCount() int {
	s.ep.mu.Lock()
	defer s.ep.mu.Unlock()
	return s.calls
}

// outcome reports how the message at p was settled: settled is false when
// it was neither acked nor nacked.
func (s *fakeSub) outcome(p mediation.Position) (err error, settled bool) {
	s.ep.mu.Lock()
	defer s.ep.mu.Unlock()
	err, settled = s.outcomes[p]
	return err, settled
}

// committed is the next offset a broker would commit for the partition: the
// end of the prefix of yielded messages that were all acked (the contract of
// Subscription: commit only when every earlier message was acked).
func (s *fakeSub) committed(partition int32) int64 {
	s.ep.mu.Lock()
	defer s.ep.mu.Unlock()
	next := s.start[partition]
	for _, p := range s.yielded {
		if p.Partition != partition {
			continue
		}
		if err, ok := s.outcomes[p]; !ok || err != nil {
			break
		}
		next = p.Offset + 1
	}
	return next
}

var (
	_ mediation.Endpoint     = (*fakeEndpoint)(nil)
	_ mediation.Subscription = (*fakeSub)(nil)
)

// countingMeter counts what the engine measures, for every entrypoint alike.
type countingMeter struct {
	in, out, dropped, errors, streams atomic.Int64
}

type atomicCounter struct{ n *atomic.Int64 }

func (c atomicCounter) Inc() { c.n.Add(1) }
func (c atomicCounter) Dec() { c.n.Add(-1) }

func (m *countingMeter) Entrypoint(string, string) mediation.EntrypointMetrics {
	return mediation.EntrypointMetrics{
		MessagesIn: atomicCounter{&m.in}, MessagesOut: atomicCounter{&m.out},
		Dropped: atomicCounter{&m.dropped}, Errors: atomicCounter{&m.errors},
		Streams: atomicCounter{&m.streams},
	}
}

// testEntrypoint is an entrypoint made of functions; nil accepts takes every
// request.
type testEntrypoint struct {
	accepts func(*http.Request) bool
	serve   func(http.ResponseWriter, *http.Request, *mediation.Exchange)
}

func (e *testEntrypoint) Accepts(r *http.Request) bool { return e.accepts == nil || e.accepts(r) }

func (e *testEntrypoint) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	if e.serve != nil {
		e.serve(w, r, x)
	}
}

// rankedEntrypoint is a testEntrypoint with a selection rank.
type rankedEntrypoint struct {
	testEntrypoint
	rank int
}

func (e *rankedEntrypoint) Rank() int { return e.rank }

var (
	_ mediation.Entrypoint = (*testEntrypoint)(nil)
	_ mediation.Ranked     = (*rankedEntrypoint)(nil)
)

// setup describes the API a harness builds: one entrypoint on a fakeEndpoint.
type setup struct {
	partitions int // default 1
	start      mediation.StartKind
	qos        mediation.QoS
	window     int
	slow       mediation.SlowConsumerPolicy
	flows      []mediation.Flow
	noReplay   bool
}

// harness is an API whose entrypoint hands its exchanges to the test, so
// that tests drive Exchange and Stream exactly as an entrypoint does.
type harness struct {
	ep        *fakeEndpoint
	api       *mediation.API
	meter     *countingMeter
	exchanges chan *mediation.Exchange
}

func newHarness(t *testing.T, s setup) *harness {
	t.Helper()
	h := &harness{
		ep:        newFakeEndpoint(max(s.partitions, 1), s.start),
		meter:     &countingMeter{},
		exchanges: make(chan *mediation.Exchange),
	}
	if s.noReplay {
		h.ep.caps.Replay = false
	}
	capture := &testEntrypoint{serve: func(_ http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
		h.exchanges <- x
		<-r.Context().Done() // the exchange lasts until the test releases it
	}}
	h.api = mediation.NewAPI(mediation.APIOptions{
		ID: "orders", Endpoint: h.ep, Flows: s.flows, Meter: h.meter,
		Entrypoints: []mediation.EntrypointBinding{{
			Type: "capture", Entrypoint: capture, QoS: cmpOr(s.qos, mediation.QoSNone),
			Window: s.window, SlowConsumer: s.slow,
		}},
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := h.api.Close(ctx); err != nil {
			t.Errorf("API.Close: %v", err)
		}
		h.ep.mu.Lock()
		subs := slices.Clone(h.ep.subs)
		h.ep.mu.Unlock()
		for i, s := range subs {
			if !s.isClosed() {
				t.Errorf("subscription %d (%+v) left open after every stream and the API closed", i, s.req)
			}
		}
	})
	return h
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// exchange serves one request through API.ServeHTTP and returns the exchange
// handed to the entrypoint. The exchange ends when the test does.
func (h *harness) exchange(t *testing.T) *mediation.Exchange {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.api.ServeHTTP(rec, r)
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case x := <-h.exchanges:
		return x
	case <-done:
		t.Fatalf("the entrypoint was not called: %d %s", rec.Code, rec.Body)
	case <-time.After(waitFor):
		t.Fatal("the entrypoint was not called")
	}
	return nil
}

// stream opens a client stream on a new exchange and closes it when the test
// ends.
func (h *harness) stream(t *testing.T, req mediation.StreamRequest) *mediation.Stream {
	t.Helper()
	s, err := h.exchange(t).Subscribe(context.Background(), req)
	if err != nil {
		t.Fatalf("Subscribe(%+v): %v", req, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// next returns the stream's next message, failing the test when none comes.
func next(t *testing.T, s *mediation.Stream) *mediation.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Stream.Next: %v", err)
	}
	return m
}

// readN returns the next n messages' contents, acking each.
func readN(t *testing.T, s *mediation.Stream, n int) []string {
	t.Helper()
	var out []string
	for range n {
		m := next(t, s)
		m.Ack()
		out = append(out, string(m.Content))
	}
	return out
}

// nextErr waits for Stream.Next to fail and returns its error.
func nextErr(t *testing.T, s *mediation.Stream) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	m, err := s.Next(ctx)
	if err == nil {
		t.Fatalf("Stream.Next returned message %q, want an error", m.Content)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("Stream.Next neither returned a message nor failed")
	}
	return err
}

// eventually waits until cond holds, failing the test with what after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle gives background goroutines time to do what they must not do, for
// negative checks only: a correct implementation passes however long it is.
func settle() { time.Sleep(50 * time.Millisecond) }

// positions decodes a cursor token, failing the test when it does not parse.
func positions(t *testing.T, token string) []mediation.Position {
	t.Helper()
	c, err := mediation.ParseCursor(token)
	if err != nil {
		t.Fatalf("ParseCursor(%q): %v", token, err)
	}
	return slices.Clone(c.Positions())
}

// offsets is a compact way to write the positions of fakeStream: offsets[p]
// is the next offset of partition p.
func offsets(next ...int64) []mediation.Position {
	var out []mediation.Position
	for p, o := range next {
		out = append(out, mediation.Position{Stream: fakeStream, Partition: int32(p), Offset: o})
	}
	return out
}
