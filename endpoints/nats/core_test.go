package nats

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicegw/sluice/mediation"
)

// A core publish arrives with every header value, and Publish returns once
// the server processed it.
func TestCorePublishWithHeaders(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	subject := unique(t)
	nc, _ := rawConn(t, url)
	raw, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e := newEndpoint(t, coreConfig(url, subject))

	msg := mediation.NewMessage([]byte("hello"))
	msg.Headers = mediation.Headers{"x-tag": {"a", "b"}, "content-type": {"text/plain"}}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.Publish(ctx, msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got, err := raw.NextMsg(waitTimeout)
	if err != nil {
		t.Fatalf("the raw subscriber got nothing: %v", err)
	}
	if string(got.Data) != "hello" || got.Subject != subject {
		t.Errorf("received %q on %q", got.Data, got.Subject)
	}
	if v := got.Header.Values("x-tag"); !slices.Equal(v, []string{"a", "b"}) {
		t.Errorf("x-tag values %q, want [a b] (headers %v)", v, got.Header)
	}
	if v := got.Header.Get("content-type"); v != "text/plain" {
		t.Errorf("content-type %q", v)
	}
}

// A raw publish reaches a subscription with its headers lower-cased, the
// subject in Metadata, no position, and IDs numbering the messages.
func TestCoreSubscribeYieldsRawPublish(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	subject := unique(t)
	cfg := coreConfig(url, subject+".*")
	cfg.Producer.Subject = ""
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartLatest, QoS: mediation.QoSAuto})
	if !sub.Start().IsZero() {
		t.Errorf("Start = %v, want empty: core NATS cannot replay", sub.Start())
	}

	nc, _ := rawConn(t, url)
	m := nats.NewMsg(subject + ".one")
	m.Data = []byte("first")
	m.Header.Add("X-Trace", "t1")
	m.Header.Add("X-Trace", "t2")
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(subject+".two", []byte("second")); err != nil {
		t.Fatal(err)
	}

	first, second := next(t, sub), next(t, sub)
	if string(first.Content) != "first" || string(second.Content) != "second" {
		t.Fatalf("read %q, %q", first.Content, second.Content)
	}
	if v := first.Headers.Values("x-trace"); !slices.Equal(v, []string{"t1", "t2"}) {
		t.Errorf("headers %v, want x-trace [t1 t2]", first.Headers)
	}
	if first.Metadata["subject"] != subject+".one" || second.Metadata["subject"] != subject+".two" {
		t.Errorf("metadata %v, %v", first.Metadata, second.Metadata)
	}
	if first.Position != (mediation.Position{}) {
		t.Errorf("position %+v, want zero", first.Position)
	}
	if first.ID != "1" || second.ID != "2" {
		t.Errorf("IDs %q, %q, want 1, 2", first.ID, second.ID)
	}
	if first.Timestamp.IsZero() {
		t.Error("no timestamp")
	}
}

// Subscriptions of one group split the messages; one outside gets all.
func TestCoreQueueGroupSplits(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	subject := unique(t)
	for _, tc := range []struct {
		desc       string
		queueGroup string
		group      string
	}{
		{desc: "group of the request", group: "webhook-1"},
		{desc: "configured queue group", queueGroup: "gateways"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			subject := subject + "_" + tc.queueGroup + tc.group
			cfg := coreConfig(url, subject)
			cfg.Consumer.QueueGroup = tc.queueGroup
			e := newEndpoint(t, cfg)
			req := mediation.SubscribeRequest{Start: mediation.StartLatest, Group: tc.group, QoS: mediation.QoSAtMostOnce}
			members := []mediation.Subscription{subscribe(t, e, req), subscribe(t, e, req)}
			outsider := newEndpoint(t, coreConfig(url, subject))
			all := subscribe(t, outsider, mediation.SubscribeRequest{Start: mediation.StartLatest})

			want := numbered("m", 0, 40)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			for _, c := range want {
				if err := e.Publish(ctx, mediation.NewMessage([]byte(c))); err != nil {
					t.Fatal(err)
				}
			}
			if got := readContents(t, all, len(want)); !slices.Equal(got, want) {
				t.Fatalf("the subscription outside the group got %v", got)
			}

			var (
				mu     sync.Mutex
				got    []string
				counts [2]int
				wg     sync.WaitGroup
			)
			rctx, rcancel := context.WithCancel(ctx)
			defer rcancel()
			for i, s := range members {
				wg.Go(func() {
					for {
						m, err := s.Next(rctx)
						if err != nil {
							return
						}
						mu.Lock()
						got = append(got, string(m.Content))
						counts[i]++
						if len(got) == len(want) {
							rcancel()
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("the group got %d messages %v, want each of %d once", len(got), got, len(want))
			}
			if counts[0] == 0 || counts[1] == 0 {
				t.Errorf("members got %v messages: the group did not split them", counts)
			}
		})
	}
}

// Core NATS refuses what it cannot do, saying why.
func TestCoreRefusesReplayAndAtLeastOnce(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	e := newEndpoint(t, coreConfig(url, unique(t)))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, tc := range []struct {
		desc string
		req  mediation.SubscribeRequest
		want error
	}{
		{"a cursor", mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: mediation.NewCursor(mediation.Position{Stream: "s", Offset: 1})}, mediation.ErrBadCursor},
		{"earliest", mediation.SubscribeRequest{Start: mediation.StartEarliest}, mediation.ErrUnsupported},
		{"a time", mediation.SubscribeRequest{Start: mediation.StartTime, Time: time.Now()}, mediation.ErrUnsupported},
		{"at-least-once", mediation.SubscribeRequest{Start: mediation.StartLatest, QoS: mediation.QoSAtLeastOnce}, mediation.ErrUnsupported},
	} {
		sub, err := e.Subscribe(ctx, tc.req)
		if !errors.Is(err, tc.want) {
			if sub != nil {
				_ = sub.Close()
			}
			t.Errorf("%s: Subscribe = %v, want an error wrapping %v", tc.desc, err, tc.want)
		}
	}
}

// Close ends a blocked Next with ErrClosed, is idempotent, and so is the
// endpoint's.
func TestCloseEndsNext(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	stream := unique(t)
	newStream(t, url, stream)
	for _, tc := range []struct {
		desc string
		cfg  *Config
		req  mediation.SubscribeRequest
	}{
		{"core", coreConfig(url, stream+".core"), mediation.SubscribeRequest{}},
		{"jetstream", jsConfig(url, stream), mediation.SubscribeRequest{Start: mediation.StartLatest}},
		{"jetstream group", jsConfig(url, stream), mediation.SubscribeRequest{Start: mediation.StartLatest, Group: "g"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t, tc.cfg)
			sub := subscribe(t, e, tc.req)
			done := make(chan error, 1)
			go func() {
				_, err := sub.Next(context.Background())
				done <- err
			}()
			time.Sleep(100 * time.Millisecond) // let Next block; it must end either way
			if err := sub.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-done:
				wantErrIs(t, err, mediation.ErrClosed)
			case <-time.After(waitTimeout):
				t.Fatal("Next still blocked after Close")
			}
			if err := sub.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			_, err := sub.Next(context.Background())
			wantErrIs(t, err, mediation.ErrClosed)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := e.Close(ctx); err != nil {
				t.Errorf("endpoint Close: %v", err)
			}
			if err := e.Close(ctx); err != nil {
				t.Errorf("second endpoint Close: %v", err)
			}
			wantErrIs(t, e.Publish(ctx, mediation.NewMessage(nil)), mediation.ErrClosed)
			_, err = e.Subscribe(ctx, tc.req)
			wantErrIs(t, err, mediation.ErrClosed)
		})
	}
}
