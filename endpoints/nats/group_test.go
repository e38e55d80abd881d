package nats

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// A durable group delivers what was not acknowledged again: acked messages
// never come back, a nacked one and those left unsettled at Close do, to
// the next subscription of the group (at once when Close held them, after
// ackWait when they were on the wire). Another group has its own position.
func TestDurableGroupAckNack(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	_, js := rawConn(t, url)
	all := numbered("m", 0, 6)
	publishJS(t, js, name+".a", all...)
	cfg := jsConfig(url, name)
	cfg.Consumer.Durable = "gw"
	cfg.Consumer.AckWait = Duration(2 * time.Second)
	e := newEndpoint(t, cfg)
	req := mediation.SubscribeRequest{Start: mediation.StartEarliest, Group: "webhook-1", QoS: mediation.QoSAtLeastOnce}

	sub := subscribe(t, e, req)
	if !sub.Start().IsZero() {
		t.Errorf("a group's Start = %v, want empty (it resumes from its acks)", sub.Start().Positions())
	}
	var msgs []*mediation.Message
	for range 4 {
		msgs = append(msgs, next(t, sub))
	}
	if got := contents(msgs); !slices.Equal(got, all[:4]) {
		t.Fatalf("first read %v", got)
	}
	msgs[0].Ack()
	msgs[1].Ack()
	msgs[2].Nack(errors.New("webhook answered 500"))
	msgs[3].Ack()
	// m-004 and m-005 may be fetched; m-004 is read and left unsettled.
	if m := next(t, sub); string(m.Content) != all[2] && string(m.Content) != all[4] {
		t.Fatalf("after the nack the group read %q", m.Content)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}

	again := subscribe(t, e, req)
	var got []string
	for len(got) < 3 {
		m := next(t, again)
		got = append(got, string(m.Content))
		m.Ack()
	}
	slices.Sort(got)
	if want := []string{all[2], all[4], all[5]}; !slices.Equal(got, want) {
		t.Fatalf("the reopened group read %v, want %v: the nacked and unsettled messages, and no acked one", got, want)
	}
	expectNone(t, again, time.Second)

	other := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest, Group: "webhook-2", QoS: mediation.QoSAtLeastOnce})
	if got := readContents(t, other, len(all)); !slices.Equal(got, all) {
		t.Errorf("another group read %v, want every message", got)
	}
}

// A group created at latest starts with the messages published after it;
// once created it keeps its position whatever later requests say.
func TestDurableGroupStartsOnce(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	_, js := rawConn(t, url)
	publishJS(t, js, name+".a", "before")
	e := newEndpoint(t, jsConfig(url, name))
	req := mediation.SubscribeRequest{Start: mediation.StartLatest, Group: "g"}
	sub := subscribe(t, e, req)
	publishJS(t, js, name+".a", "after-0", "after-1")
	m := next(t, sub)
	if string(m.Content) != "after-0" {
		t.Fatalf("a group created at latest read %q first", m.Content)
	}
	m.Ack()
	_ = sub.Close()

	req.Start = mediation.StartEarliest // ignored: the consumer exists
	again := subscribe(t, e, req)
	if m := next(t, again); string(m.Content) != "after-1" {
		t.Fatalf("the group resumed at %q, want after-1", m.Content)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := e.Subscribe(ctx, mediation.SubscribeRequest{Start: mediation.StartCursor, Cursor: again.Start(), Group: "g"})
	wantErrIs(t, err, mediation.ErrUnsupported)
}

// Subscriptions of one group (gateways sharing it) split the messages, and
// each is delivered once when every member acks.
func TestDurableGroupSplits(t *testing.T) {
	t.Parallel()
	url := localNATS(t)
	name := unique(t)
	newStream(t, url, name)
	_, js := rawConn(t, url)
	cfg := jsConfig(url, name)
	cfg.Consumer.BufferMessages = 4 // small fetches, so that both members get a share
	gw1, gw2 := newEndpoint(t, cfg), newEndpoint(t, cfg)
	req := mediation.SubscribeRequest{Start: mediation.StartEarliest, Group: "shared", QoS: mediation.QoSAtLeastOnce}
	members := []mediation.Subscription{subscribe(t, gw1, req), subscribe(t, gw2, req)}
	want := numbered("m", 0, 60)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var (
		mu     sync.Mutex
		got    []string
		counts [2]int
		wg     sync.WaitGroup
	)
	for i, s := range members {
		wg.Go(func() {
			for {
				m, err := s.Next(ctx)
				if err != nil {
					return
				}
				time.Sleep(time.Millisecond) // a member that works, so the other gets its turn
				m.Ack()
				mu.Lock()
				got = append(got, string(m.Content))
				counts[i]++
				if len(got) == len(want) {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	publishJS(t, js, name+".a", want...)
	wg.Wait()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("the group got %d messages, want each of %d once: %v", len(got), len(want), got)
	}
	if counts[0] == 0 || counts[1] == 0 {
		t.Errorf("members got %v messages: the group did not split them", counts)
	}
}

func contents(msgs []*mediation.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Content)
	}
	return out
}
