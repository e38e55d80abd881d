package kafka

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicegw/sluice/mediation"
)

// A group commits, per partition, only up to the first message not acked:
// after a restart nothing acked is read again on the other partitions, and
// the nacked message comes back first, with everything after it.
func TestGroupResumesAtTheNackedMessage(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	produce(t, c, 10, 0, 1, 2)
	cfg := testConfig(c)
	cfg.Consumer.AutoOffsetReset = OffsetEarliest
	e := newEndpoint(t, cfg)
	req := mediation.SubscribeRequest{Start: mediation.StartEarliest, Group: "hooks", QoS: mediation.QoSAtLeastOnce}

	first := subscribe(t, e, req)
	if !first.Start().IsZero() {
		t.Fatalf("group Start = %v, want empty", first.Start().Positions())
	}
	// Settle out of order within each partition: acks for later messages
	// come before the nack of an earlier one.
	var nacked *mediation.Message
	var later []*mediation.Message
	for _, m := range readN(t, first, 30) {
		switch {
		case m.Position.Partition == 0 && m.Position.Offset == 5:
			nacked = m
		case m.Position.Partition == 0 && m.Position.Offset > 5:
			later = append(later, m)
		default:
			m.Ack()
		}
	}
	for _, m := range later {
		m.Ack()
	}
	nacked.Nack(nil)
	nacked.Ack() // the first settlement wins
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	committed, err := kadm.NewClient(e.client).FetchOffsets(ctx, "sluice.hooks")
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	for p, want := range map[int32]int64{0: 5, 1: 10, 2: 10} {
		if o, ok := committed.Lookup(testTopic, p); !ok || o.At != want {
			t.Errorf("committed t/%d = %v (found %v), want %d", p, o.At, ok, want)
		}
	}

	// One more record per partition, so that the reopened group has
	// something to read on every partition and the test knows when to stop.
	produce(t, c, 1, 0, 1, 2)
	second := subscribe(t, e, req)
	got := map[int32][]int64{}
	for _, m := range readN(t, second, 8) {
		got[m.Position.Partition] = append(got[m.Position.Partition], m.Position.Offset)
		m.Ack()
	}
	want := map[int32][]int64{0: {5, 6, 7, 8, 9, 10}, 1: {10}, 2: {10}}
	for p, offs := range want {
		if !slices.Equal(got[p], offs) {
			t.Errorf("reopened group read t/%d offsets %v, want %v", p, got[p], offs)
		}
	}
}

func TestGroupCommitsPeriodically(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	produce(t, c, 3, 1)
	cfg := testConfig(c)
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest, Group: "periodic"})
	for _, m := range readN(t, sub, 3) {
		m.Ack()
	}
	// Without closing: the commit loop must get there on its own.
	adm := kadm.NewClient(e.client)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		o, err := adm.FetchOffsets(ctx, "sluice.periodic")
		if err != nil {
			t.Fatalf("fetch offsets: %v", err)
		}
		if got, ok := o.Lookup(testTopic, 1); ok && got.At == 3 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the acked offsets were never committed")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestGroupRefusesCursor(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	e := newEndpoint(t, testConfig(c))
	_, err := e.Subscribe(context.Background(), mediation.SubscribeRequest{
		Start: mediation.StartCursor, Cursor: cursorOf(map[int32]int64{0: 1}), Group: "g",
	})
	wantErrIs(t, err, mediation.ErrUnsupported)
}

func TestGroupCloseEndsNext(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	e := newEndpoint(t, testConfig(c))
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartLatest, Group: "g"})
	errc := make(chan error, 1)
	go func() {
		_, err := sub.Next(context.Background())
		errc <- err
	}()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	wantErrIs(t, <-errc, mediation.ErrClosed)
	_, err := sub.Next(context.Background())
	wantErrIs(t, err, mediation.ErrClosed)
	if err := sub.Close(); err != nil {
		t.Fatal(fmt.Errorf("second Close: %w", err))
	}
}
