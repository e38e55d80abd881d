package kafka

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicegw/sluice/mediation"
)

func TestStartResolvesEveryPartition(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	produce(t, c, 4, 0)
	produce(t, c, 2, 1)
	e := newEndpoint(t, testConfig(c))

	for _, tc := range []struct {
		desc  string
		req   mediation.SubscribeRequest
		want  map[int32]int64
		first string // position of the first message, "" when none is due
	}{
		{desc: "latest is the end of each partition", req: mediation.SubscribeRequest{Start: mediation.StartLatest},
			want: map[int32]int64{0: 4, 1: 2, 2: 0}},
		{desc: "earliest is the start of each partition", req: mediation.SubscribeRequest{Start: mediation.StartEarliest},
			want: map[int32]int64{0: 0, 1: 0, 2: 0}},
		{desc: "cursor partitions resume, the others start at the beginning",
			req:  mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: cursorOf(map[int32]int64{0: 3, 1: 2})},
			want: map[int32]int64{0: 3, 1: 2, 2: 0}, first: "t/0/3"},
		{desc: "a cursor at the end of every partition is caught up",
			req:  mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: cursorOf(map[int32]int64{0: 4, 1: 2, 2: 0})},
			want: map[int32]int64{0: 4, 1: 2, 2: 0}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			sub := subscribe(t, e, tc.req)
			if got, want := sub.Start().String(), cursorOf(tc.want).String(); got != want {
				t.Fatalf("Start = %v, want %v", sub.Start().Positions(), cursorOf(tc.want).Positions())
			}
			if tc.first != "" {
				if m := next(t, sub); m.Identity() != tc.first {
					t.Fatalf("first message %s, want %s", m.Identity(), tc.first)
				}
			}
		})
	}
}

func TestStartTime(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 3 {
		recs = append(recs, &kgo.Record{Topic: testTopic, Partition: 0, Value: []byte{byte('a' + i)}, Timestamp: t0.Add(time.Duration(i) * time.Second)})
	}
	produceRecords(t, c, recs...)
	e := newEndpoint(t, testConfig(c))

	for _, tc := range []struct {
		desc string
		at   time.Time
		want map[int32]int64
	}{
		{"a time between records starts at the first record at or after it", t0.Add(500 * time.Millisecond), map[int32]int64{0: 1, 1: 0, 2: 0}},
		{"a time before every record starts at the beginning", t0.Add(-time.Hour), map[int32]int64{0: 0, 1: 0, 2: 0}},
		{"a time after every record starts at the end", t0.Add(time.Hour), map[int32]int64{0: 3, 1: 0, 2: 0}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartTime, Time: tc.at})
			if got, want := sub.Start().String(), cursorOf(tc.want).String(); got != want {
				t.Fatalf("Start = %v, want %v", sub.Start().Positions(), cursorOf(tc.want).Positions())
			}
		})
	}
}

// A client that reconnects with the cursor of the last message it got reads
// exactly what it had not read, across every partition.
func TestCursorResumeReadsExactlyTheRest(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	produce(t, c, 10, 0, 1, 2)
	e := newEndpoint(t, testConfig(c))

	first := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest})
	cursor := first.Start().Clone() // as mediation.Stream does
	consumed := map[string]bool{}
	for _, m := range readN(t, first, 13) {
		cursor.Advance(m.Position)
		consumed[pos(m.Position)] = true
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	// The token travels through the client and back.
	parsed, err := mediation.ParseCursor(cursor.String())
	if err != nil {
		t.Fatal(err)
	}
	second := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: parsed})
	if got := second.Start().String(); got != cursor.String() {
		t.Fatalf("Start = %v, want the cursor %v", second.Start().Positions(), cursor.Positions())
	}
	produce(t, c, 1, 0, 1, 2) // one more per partition: offset 10

	want := map[string]bool{}
	for _, p := range []int32{0, 1, 2} {
		for o := range int64(11) {
			if k := pos(mediation.Position{Stream: testTopic, Partition: p, Offset: o}); !consumed[k] {
				want[k] = true
			}
		}
	}
	got := map[string]bool{}
	lastOffset := map[int32]int64{0: -1, 1: -1, 2: -1}
	for _, m := range readN(t, second, len(want)) {
		k := pos(m.Position)
		if got[k] {
			t.Fatalf("%s delivered twice", k)
		}
		if m.Position.Offset <= lastOffset[m.Position.Partition] {
			t.Fatalf("%s out of order", k)
		}
		lastOffset[m.Position.Partition] = m.Position.Offset
		got[k] = true
	}
	if !maps.Equal(got, want) {
		t.Fatalf("resumed with %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

func TestBadCursor(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	produce(t, c, 4, 0)
	e := newEndpoint(t, testConfig(c))

	for _, tc := range []struct {
		desc   string
		cursor mediation.Cursor
	}{
		{"a topic this API does not consume", mediation.NewCursor(mediation.Position{Stream: "other", Partition: 0, Offset: 1})},
		{"a partition that does not exist", mediation.NewCursor(mediation.Position{Stream: testTopic, Partition: 7, Offset: 0})},
		{"an offset past the end", cursorOf(map[int32]int64{0: 5})},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			sub, err := e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: tc.cursor})
			if err == nil {
				_ = sub.Close()
			}
			wantErrIs(t, err, mediation.ErrBadCursor)
		})
	}
}

// Offsets deleted by retention are skipped, not an error: the client gets
// what is left.
func TestCursorBelowLogStartStartsAtLogStart(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	produce(t, c, 5, 0)
	e := newEndpoint(t, testConfig(c))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: testTopic, Partition: 0, At: 3})
	res, err := kadm.NewClient(e.client).DeleteRecords(ctx, del)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}

	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: cursorOf(map[int32]int64{0: 1})})
	if got, want := sub.Start().String(), cursorOf(map[int32]int64{0: 3, 1: 0, 2: 0}).String(); got != want {
		t.Fatalf("Start = %v, want t/0 at 3", sub.Start().Positions())
	}
	if m := next(t, sub); m.Identity() != "t/0/3" {
		t.Fatalf("first message %s, want t/0/3", m.Identity())
	}
}

func TestTopicPattern(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "orders-eu", "orders-us", "orders", "audit")
	cfg := testConfig(c)
	cfg.Consumer.Topics = nil
	cfg.Consumer.TopicPattern = "orders-.*"
	cfg.Producer.Topic = ""
	e := newEndpoint(t, cfg)

	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest})
	var got []string
	for _, p := range sub.Start().Positions() {
		got = append(got, pos(p))
	}
	want := []string{"orders-eu/0/0", "orders-eu/1/0", "orders-eu/2/0", "orders-us/0/0", "orders-us/1/0", "orders-us/2/0"}
	if !slices.Equal(got, want) {
		t.Fatalf("Start = %v, want %v (the pattern matches whole names)", got, want)
	}
}

func TestSubscribeUnknownTopicIsUnavailable(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cfg := testConfig(c)
	cfg.Consumer.Topics = []string{"missing"}
	e := newEndpoint(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartLatest})
	wantErrIs(t, err, mediation.ErrUnavailable)
}

func TestCloseEndsNext(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	e := newEndpoint(t, testConfig(c))
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartLatest})

	errc := make(chan error, 1)
	go func() {
		_, err := sub.Next(context.Background()) // nothing to read: blocks
		errc <- err
	}()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		wantErrIs(t, err, mediation.ErrClosed)
	case <-time.After(waitTimeout):
		t.Fatal("Next still blocked after Close")
	}
	_, err := sub.Next(context.Background())
	wantErrIs(t, err, mediation.ErrClosed)
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A cluster that goes away is waited for: Next reports only its context.
func TestNextWaitsOutAnUnreachableCluster(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic))
	if err != nil {
		t.Fatal(err)
	}
	produce(t, c, 1, 0)
	e := newEndpoint(t, testConfig(c))
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest})
	next(t, sub)
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := sub.Next(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %v, %v; want the context's deadline", m, err)
	}
}
