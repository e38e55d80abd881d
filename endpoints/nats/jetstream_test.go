package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/mediation"
)

// A JetStream publish returns once the stream stored the message: it can
// be read back at once, at the sequence Metadata reports, with its headers.
func TestJetStreamPublishWaitsForPubAck(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	stream := streamHandle(t, url, name)
	e := newEndpoint(t, jsConfig(url, name))

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for i := range 3 {
		msg := mediation.NewMessage(fmt.Appendf(nil, "order-%d", i))
		msg.Headers = mediation.Headers{"x-tag": {"a", "b"}, "nats-msg-id": {fmt.Sprintf("id-%d", i)}}
		if err := e.Publish(ctx, msg); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if msg.Metadata["stream"] != name || msg.Metadata["subject"] != name+".in" {
			t.Fatalf("metadata %v", msg.Metadata)
		}
		seq, err := strconv.ParseUint(msg.Metadata["offset"], 10, 64)
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("offset %q, want %d", msg.Metadata["offset"], i+1)
		}
		stored, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d is not in the stream when Publish returned: %v", seq, err)
		}
		if string(stored.Data) != string(msg.Content) || !slices.Equal(stored.Header.Values("x-tag"), []string{"a", "b"}) {
			t.Fatalf("stored %q with headers %v", stored.Data, stored.Header)
		}
	}
	// Nats-Msg-Id from the client deduplicates, as JetStream does.
	dup := mediation.NewMessage([]byte("again"))
	dup.Headers = mediation.Headers{"nats-msg-id": {"id-0"}}
	if err := e.Publish(ctx, dup); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if dup.Metadata["duplicate"] != "true" || dup.Metadata["offset"] != "1" {
		t.Errorf("duplicate publish metadata %v", dup.Metadata)
	}
}

// A publish the stream refuses fails as "unavailable" only when the server
// says retrying later may help (a full stream: 503); a refusal it would
// repeat is another error.
func TestJetStreamPublishRefused(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	_, js := rawConn(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	small := name + "_small"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: small, Subjects: []string{small + ".>"}, MaxMsgs: 1, MaxMsgSize: 256,
		Discard: jetstream.DiscardNew, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), small) })
	newStream(t, url, name)

	for _, tc := range []struct {
		desc        string
		cfg         func() *Config
		pre         int // publishes that succeed first
		content     string
		unavailable bool
	}{
		{desc: "the message is too large for the stream", cfg: func() *Config { return jsConfig(url, small) }, content: strings.Repeat("x", 300)},
		{desc: "the subject belongs to another stream", cfg: func() *Config {
			c := jsConfig(url, name)
			c.Producer.Subject = small + ".x"
			return c
		}, content: "x"},
		{desc: "the stream is full", cfg: func() *Config { return jsConfig(url, small) }, pre: 1, content: "x", unavailable: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			e := newEndpoint(t, tc.cfg())
			for range tc.pre {
				if err := e.Publish(ctx, mediation.NewMessage([]byte("fits"))); err != nil {
					t.Fatalf("Publish: %v", err)
				}
			}
			err := e.Publish(ctx, mediation.NewMessage([]byte(tc.content)))
			if err == nil || errors.Is(err, mediation.ErrUnavailable) != tc.unavailable {
				t.Fatalf("Publish = %v, want an error (wrapping ErrUnavailable: %v)", err, tc.unavailable)
			}
		})
	}
}

// A raw publish reaches a subscription with its headers, subject, stream,
// position and sequence ID; the publish preconditions JetStream stores are
// not headers of the message.
func TestJetStreamYieldsRawPublish(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	e := newEndpoint(t, jsConfig(url, name))
	_, js := rawConn(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	m := nats.NewMsg(name + ".a")
	m.Data = []byte("hello")
	m.Header.Add("X-Trace", "t1")
	m.Header.Add("X-Trace", "t2")
	ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(name))
	if err != nil {
		t.Fatal(err)
	}

	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest})
	got := next(t, sub)
	if string(got.Content) != "hello" {
		t.Fatalf("read %q", got.Content)
	}
	if want := (mediation.Position{Stream: name, Offset: int64(ack.Sequence)}); got.Position != want {
		t.Errorf("position %+v, want %+v", got.Position, want)
	}
	if got.ID != strconv.FormatUint(ack.Sequence, 10) {
		t.Errorf("ID %q", got.ID)
	}
	if got.Metadata["subject"] != name+".a" || got.Metadata["stream"] != name {
		t.Errorf("metadata %v", got.Metadata)
	}
	if !slices.Equal(got.Headers.Values("x-trace"), []string{"t1", "t2"}) || len(got.Headers) != 1 {
		t.Errorf("headers %v, want only x-trace [t1 t2]", got.Headers)
	}
	if got.Timestamp.IsZero() || time.Since(got.Timestamp) > time.Hour {
		t.Errorf("timestamp %v", got.Timestamp)
	}
}

// Start is the exact next sequence, and the subscription reads from there:
// earliest is the first retained message, latest one past the last.
func TestJetStreamStart(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	stream := streamHandle(t, url, name)
	_, js := rawConn(t, url)
	publishJS(t, js, name+".a", numbered("old", 0, 10)...)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(4)); err != nil { // keeps 4..10
		t.Fatal(err)
	}
	e := newEndpoint(t, jsConfig(url, name))
	mid := time.Now()
	time.Sleep(20 * time.Millisecond) // the server's clock must pass mid
	publishJS(t, js, name+".a", "t-0", "t-1")

	// Cases that start at the end publish "new-<sequence>" once subscribed.
	for _, tc := range []struct {
		desc  string
		req   mediation.SubscribeRequest
		start int64
		first string
	}{
		{"earliest", mediation.SubscribeRequest{Start: mediation.StartEarliest}, 4, "old-003"},
		{"a time", mediation.SubscribeRequest{Start: mediation.StartTime, Time: mid}, 11, "t-0"},
		{"a cursor deleted by retention", mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: mediation.NewCursor(mediation.Position{Stream: name, Offset: 2})}, 4, "old-003"},
		{"an empty cursor", mediation.SubscribeRequest{Start: mediation.StartCursor}, 4, "old-003"},
		{"latest", mediation.SubscribeRequest{Start: mediation.StartLatest}, 13, "new-13"},
		{"a cursor at the end", mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: mediation.NewCursor(mediation.Position{Stream: name, Offset: 14})}, 14, "new-14"},
	} {
		sub := subscribe(t, e, tc.req)
		want := mediation.NewCursor(mediation.Position{Stream: name, Offset: tc.start})
		if got := sub.Start(); got.String() != want.String() {
			t.Errorf("%s: Start = %v, want %v", tc.desc, got.Positions(), want.Positions())
		}
		if strings.HasPrefix(tc.first, "new") {
			expectNone(t, sub, 300*time.Millisecond)
			publishJS(t, js, name+".a", tc.first)
		}
		if m := next(t, sub); string(m.Content) != tc.first || m.Position.Offset != tc.start {
			t.Errorf("%s: first message %q at %d, want %q at %d", tc.desc, m.Content, m.Position.Offset, tc.first, tc.start)
		}
		_ = sub.Close()
	}
}

// A client resuming from the cursor of ANY message gets exactly the
// messages after it, new ones included: nothing lost, nothing repeated.
func TestJetStreamCursorResume(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	_, js := rawConn(t, url)
	all := numbered("m", 0, 25)
	publishJS(t, js, name+".a", all...)
	e := newEndpoint(t, jsConfig(url, name))

	first := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest})
	cursor := first.Start().Clone()
	var cursors []mediation.Cursor // cursors[i]: resume after message i
	for range all {
		m := next(t, first)
		cursor.Advance(m.Position)
		cursors = append(cursors, cursor.Clone())
	}
	for i, c := range cursors {
		// Round-trip the token as a client would.
		parsed, err := mediation.ParseCursor(c.String())
		if err != nil {
			t.Fatal(err)
		}
		sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: parsed})
		fresh := fmt.Sprintf("fresh-%03d", i)
		publishJS(t, js, name+".b", fresh)
		all = append(all, fresh)
		want := all[i+1:]
		if got := readContents(t, sub, len(want)); !slices.Equal(got, want) {
			t.Fatalf("resume after message %d: got %v, want %v", i, got, want)
		}
		if i%8 == 0 || i == len(cursors)-1 {
			expectNone(t, sub, 200*time.Millisecond)
		}
		_ = sub.Close()
	}
}

// A cursor that does not belong to the stream is refused, never a silent
// restart.
func TestJetStreamBadCursor(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	_, js := rawConn(t, url)
	publishJS(t, js, name+".a", "a", "b", "c") // last sequence 3
	e := newEndpoint(t, jsConfig(url, name))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, tc := range []struct {
		desc string
		c    mediation.Cursor
	}{
		{"another stream", mediation.NewCursor(mediation.Position{Stream: "OTHER", Offset: 1})},
		{"another stream besides this one", mediation.NewCursor(mediation.Position{Stream: name, Offset: 1}, mediation.Position{Stream: "OTHER", Offset: 1})},
		{"a partition other than 0", mediation.NewCursor(mediation.Position{Stream: name, Partition: 1, Offset: 1})},
		{"past the end", mediation.NewCursor(mediation.Position{Stream: name, Offset: 5})},
		{"far past the end", mediation.NewCursor(mediation.Position{Stream: name, Offset: 1 << 40})},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			sub, err := e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: tc.c})
			if !errors.Is(err, mediation.ErrBadCursor) {
				if sub != nil {
					_ = sub.Close()
				}
				t.Fatalf("Subscribe = %v, want an error wrapping ErrBadCursor", err)
			}
		})
	}
}

// consumer.subject filters the stream.
func TestJetStreamSubjectFilter(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	_, js := rawConn(t, url)
	publishJS(t, js, name+".b", "b-0")
	publishJS(t, js, name+".a", "a-0")
	publishJS(t, js, name+".b", "b-1")
	publishJS(t, js, name+".a", "a-1")
	cfg := jsConfig(url, name)
	cfg.Consumer.Subject = name + ".a"
	e := newEndpoint(t, cfg)
	for _, req := range []mediation.SubscribeRequest{{Start: mediation.StartEarliest}, {Start: mediation.StartEarliest, Group: "g"}} {
		sub := subscribe(t, e, req)
		if got := readContents(t, sub, 2); !slices.Equal(got, []string{"a-0", "a-1"}) {
			t.Errorf("group %q read %v, want [a-0 a-1]", req.Group, got)
		}
		expectNone(t, sub, 300*time.Millisecond)
	}
}

// When the server deletes the consumer under a client's reads (an
// administrator, or inactivity), the reader recreates it where it was.
func TestJetStreamConsumerDeletedResumes(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	stream := streamHandle(t, url, name)
	_, js := rawConn(t, url)
	all := numbered("m", 0, 20)
	publishJS(t, js, name+".a", all[:10]...)
	cfg := jsConfig(url, name)
	cfg.Consumer.BufferMessages = 3 // several fetches: the deletion comes between them
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest})
	got := readContents(t, sub, 5)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for name := range stream.ConsumerNames(ctx).Name() {
		if err := stream.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	publishJS(t, js, name+".a", all[10:]...)
	got = append(got, readContents(t, sub, 15)...)
	if !slices.Equal(got, all) {
		t.Fatalf("read %v, want %v", got, all)
	}
	expectNone(t, sub, 300*time.Millisecond)
}

// Buffered counts what a fetch brought, so that the engine takes it in one
// hand-off.
func TestJetStreamBuffered(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	_, js := rawConn(t, url)
	publishJS(t, js, name+".a", numbered("m", 0, 10)...)
	e := newEndpoint(t, jsConfig(url, name))
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest})
	bs, ok := sub.(mediation.BufferedSubscription)
	if !ok {
		t.Fatal("not a BufferedSubscription")
	}
	n := 1
	next(t, sub)
	deadline := time.Now().Add(waitTimeout)
	for n < 10 && time.Now().Before(deadline) {
		if b := bs.Buffered(); b > 0 {
			for range b { // Buffered promises these without blocking
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				if _, err := sub.Next(ctx); err != nil {
					t.Fatalf("Next of a buffered message: %v", err)
				}
				cancel()
				n++
			}
			continue
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n != 10 {
		t.Fatalf("read %d of 10 messages through Buffered", n)
	}
}
