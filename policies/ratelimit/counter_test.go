package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/plugins"
	"github.com/sluicegw/sluice/policies/ratelimit"
)

// takeAll spends n requests and returns how many were allowed and the last
// decision.
func takeAll(t *testing.T, c plugins.RateCounter, key string, n, limit int, period time.Duration) (int, plugins.RateDecision) {
	t.Helper()
	allowed := 0
	var d plugins.RateDecision
	for range n {
		var err error
		if d, err = c.Take(context.Background(), key, limit, period); err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
	}
	return allowed, d
}

// The Redis counter gives the same GCRA answers, on Redis's clock, and its
// keys expire once the budget is whole again.
func TestRedisCounter(t *testing.T) {
	gatewaytest.RequireService(t, "redis", "127.0.0.1:6379")
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	c := ratelimit.NewRedisCounter(client)
	key := fmt.Sprintf("test:%d", time.Now().UnixNano())
	defer client.Del(context.Background(), "sluice:rl:"+key)
	n, d := takeAll(t, c, key, 7, 5, time.Hour)
	if n != 5 || d.Allowed || d.RetryAfter < 11*time.Minute || d.RetryAfter > 12*time.Minute {
		t.Fatalf("%d allowed, last %+v; want 5, then a retry in ~12m", n, d)
	}
	if ttl := client.PTTL(context.Background(), "sluice:rl:"+key).Val(); ttl <= 0 || ttl > time.Hour+time.Second {
		t.Fatalf("budget key expires in %s, want within the period", ttl)
	}
}

// A budget of 3 per 3s gives 3 at once, then one more per second.
func TestMemoryCounter(t *testing.T) {
	c := ratelimit.NewMemoryCounter()
	now := time.Unix(1000, 0)
	ratelimit.SetClock(c, func() time.Time { return now })
	if n, d := takeAll(t, c, "k", 5, 3, 3*time.Second); n != 3 || d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("burst: %d allowed, last %+v; want 3 and a retry in 1s", n, d)
	}
	now = now.Add(time.Second)
	if n, _ := takeAll(t, c, "k", 2, 3, 3*time.Second); n != 1 {
		t.Fatalf("a second later: %d allowed, want 1", n)
	}
	if n, _ := takeAll(t, c, "other", 3, 3, 3*time.Second); n != 3 {
		t.Fatalf("another key: %d allowed, want its own 3", n)
	}
	// Budgets that refilled are dropped, so distinct clients cannot grow
	// the map without bound.
	now = now.Add(time.Hour)
	_, _ = takeAll(t, c, "late", 1, 3, 3*time.Second)
	if n := ratelimit.Budgets(c); n != 1 {
		t.Fatalf("%d budgets kept after they refilled, want only the new one", n)
	}
}
