package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/plugins"
)

// Both counters implement GCRA (the generic cell rate algorithm): a budget
// of limit requests per period refills smoothly, one request every
// period/limit, and holds at most limit. State per key is one timestamp,
// the theoretical arrival time (TAT) of the next request.

// gcra decides one request at now for a key whose TAT is tat (zero when
// unknown) and returns the decision and the new TAT.
func gcra(now, tat time.Time, limit int, period time.Duration) (plugins.RateDecision, time.Time) {
	interval := period / time.Duration(limit)
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	allowAt := next.Add(-period)
	if now.Before(allowAt) {
		return plugins.RateDecision{RetryAfter: allowAt.Sub(now), Reset: tat.Sub(now)}, tat
	}
	return plugins.RateDecision{
		Allowed:   true,
		Remaining: int((period - next.Sub(now)) / interval),
		Reset:     next.Sub(now),
	}, next
}

// MemoryCounter keeps budgets in this process.
type MemoryCounter struct {
	now func() time.Time

	mu    sync.Mutex
	tats  map[string]time.Time
	sweep time.Time
}

// NewMemoryCounter returns an empty in-memory counter.
func NewMemoryCounter() *MemoryCounter {
	return &MemoryCounter{now: time.Now, tats: map[string]time.Time{}}
}

// Take implements plugins.RateCounter; it never blocks.
func (c *MemoryCounter) Take(_ context.Context, key string, limit int, period time.Duration) (plugins.RateDecision, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	d, tat := gcra(now, c.tats[key], limit, period)
	c.tats[key] = tat
	// Keys whose budget is full again hold nothing worth keeping: drop
	// them now and then, so that a stream of distinct clients (IPs) cannot
	// grow the map without bound.
	if now.Sub(c.sweep) > time.Minute || len(c.tats) > 100_000 {
		c.sweep = now
		for k, t := range c.tats {
			if !t.After(now) {
				delete(c.tats, k)
			}
		}
	}
	return d, nil
}

//go:embed gcra.lua
var gcraScript string

// RedisCounter keeps budgets in Redis, so that every gateway using the
// same Redis shares them. Time is Redis's own, so the gateways' clocks do
// not matter.
type RedisCounter struct {
	client redis.UniversalClient
	script *redis.Script
	prefix string
}

// NewRedisCounter returns a counter on client; keys are prefixed with
// "sluice:rl:".
func NewRedisCounter(client redis.UniversalClient) *RedisCounter {
	return &RedisCounter{client: client, script: redis.NewScript(gcraScript), prefix: "sluice:rl:"}
}

// Take implements plugins.RateCounter with one round trip to Redis.
func (c *RedisCounter) Take(ctx context.Context, key string, limit int, period time.Duration) (plugins.RateDecision, error) {
	interval := period.Microseconds() / int64(limit)
	res, err := c.script.Run(ctx, c.client, []string{c.prefix + key}, interval, period.Microseconds()).Int64Slice()
	if err != nil {
		return plugins.RateDecision{}, fmt.Errorf("rate limit counter in redis: %w", err)
	}
	if len(res) != 4 {
		return plugins.RateDecision{}, fmt.Errorf("rate limit counter in redis: unexpected answer %v", res)
	}
	return plugins.RateDecision{
		Allowed:    res[0] == 1,
		Remaining:  int(max(0, min(res[1], math.MaxInt32))),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		Reset:      time.Duration(res[3]) * time.Microsecond,
	}, nil
}

var (
	_ plugins.RateCounter = (*MemoryCounter)(nil)
	_ plugins.RateCounter = (*RedisCounter)(nil)
)
