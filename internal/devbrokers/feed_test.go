package devbrokers

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestDemoOrder(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 16, 4, 5, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		desc string
		i    int
		want string
	}{
		{desc: "first order is paid", i: 1, want: `{"id":1,"status":"paid","amount":89.19,"at":"2026-01-02T15:04:05Z"}`},
		{desc: "every third order is pending", i: 3, want: `{"id":3,"status":"pending","amount":247.57,"at":"2026-01-02T15:04:05Z"}`},
		{desc: "amount keeps two decimals", i: 13, want: `{"id":13,"status":"paid","amount":49.47,"at":"2026-01-02T15:04:05Z"}`},
		{desc: "amount with a zero cent digit", i: 10, want: `{"id":10,"status":"paid","amount":801.90,"at":"2026-01-02T15:04:05Z"}`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := string(DemoOrder(tc.i, at)); got != tc.want {
				t.Fatalf("DemoOrder(%d) = %s, want %s", tc.i, got, tc.want)
			}
		})
	}
}

func TestFeedStreamsDemoOrders(t *testing.T) {
	t.Parallel()
	b := start(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Feed(ctx, "orders", 10*time.Millisecond, nil) }()

	recs := consume(t, b.KafkaAddr(), "orders", 4)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Feed returned %v after its context ended, want nil", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Feed did not return after its context ended")
	}

	for n, r := range recs {
		id := n + 1
		if string(r.Key) != strconv.Itoa(id) {
			t.Errorf("record %d has key %q, want %d", n, r.Key, id)
		}
		var o struct {
			ID     int     `json:"id"`
			Status string  `json:"status"`
			Amount float64 `json:"amount"`
			At     string  `json:"at"`
		}
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatalf("record %d is not JSON: %v: %s", n, err, r.Value)
		}
		wantStatus := "paid"
		if id%3 == 0 {
			wantStatus = "pending"
		}
		if o.ID != id || o.Status != wantStatus || o.Amount <= 0 {
			t.Errorf("record %d = %s, want id %d status %s and an amount", n, r.Value, id, wantStatus)
		}
		if _, err := time.Parse(time.RFC3339, o.At); err != nil {
			t.Errorf("record %d at %q: %v", n, o.At, err)
		}
	}
}

func TestFeedUsesFnAndSeededTopic(t *testing.T) {
	t.Parallel()
	b := start(t, Options{Topics: map[string]int32{"ticks": 1}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- b.Feed(ctx, "ticks", 10*time.Millisecond, func(i int) []byte { return []byte("tick-" + strconv.Itoa(i)) })
	}()
	recs := consume(t, b.KafkaAddr(), "ticks", 2)
	if string(recs[0].Value) != "tick-1" || string(recs[1].Value) != "tick-2" {
		t.Fatalf("got %q, %q; want tick-1, tick-2", recs[0].Value, recs[1].Value)
	}

	// Close stops a running feed before it stops Kafka, and refuses new ones.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Feed returned %v after Close, want nil", err)
		}
	default:
		t.Fatal("Close returned while a Feed was still running")
	}
	if err := b.Feed(context.Background(), "ticks", time.Second, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Feed after Close: %v, want ErrClosed", err)
	}
}

func TestFeedRejectsBadArguments(t *testing.T) {
	t.Parallel()
	b := start(t, Options{})
	tests := []struct {
		desc  string
		topic string
		every time.Duration
	}{
		{desc: "empty topic", topic: "", every: time.Second},
		{desc: "zero interval", topic: "orders", every: 0},
		{desc: "negative interval", topic: "orders", every: -time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			// A valid call would block until the timeout; a refused one
			// returns at once with an error.
			if err := b.Feed(ctx, tc.topic, tc.every, nil); err == nil {
				t.Fatal("Feed accepted bad arguments")
			}
		})
	}
}
