package delivery

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Jitter selects how Backoff randomises a delay.
type Jitter int

const (
	// EqualJitter waits half the exponential delay plus a random part of
	// the other half: retries spread out but never come back too early.
	EqualJitter Jitter = iota
	// FullJitter waits a uniformly random time between zero and the
	// exponential delay: the best spread when many senders retry at once.
	FullJitter
)

// DefaultBackoff is used for any zero field of a Backoff.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 5 * time.Minute, Multiplier: 2, Jitter: EqualJitter}

// Backoff computes exponential retry delays with jitter, capped at Max.
// Zero fields take DefaultBackoff's values; a Multiplier below 1 counts as
// unset.
type Backoff struct {
	// Initial is the delay before the first retry.
	Initial time.Duration
	// Max caps every delay, including a callback's Retry-After.
	Max time.Duration
	// Multiplier grows the delay from one attempt to the next.
	Multiplier float64
	// Jitter randomises each delay (EqualJitter by default).
	Jitter Jitter
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoff.Initial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoff.Max
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Multiplier < 1 || math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0) {
		b.Multiplier = DefaultBackoff.Multiplier
	}
	return b
}

// Ceiling is the delay before jitter for the given attempt: Initial for
// attempt 1 (the first retry), multiplied by Multiplier for each further
// attempt, never above Max. Attempts below 1 count as 1.
func (b Backoff) Ceiling(attempt int) time.Duration {
	b = b.withDefaults()
	if attempt < 1 {
		attempt = 1
	}
	// Float maths saturates instead of overflowing; the cap does the rest.
	d := float64(b.Initial) * math.Pow(b.Multiplier, float64(attempt-1))
	if d >= float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		return b.Max
	}
	return time.Duration(d)
}

// Delay is how long to wait before retry number attempt (1 for the first
// retry): Ceiling(attempt) with the configured jitter applied. rnd may be
// nil to use the process-wide generator; tests pass a seeded one.
func (b Backoff) Delay(attempt int, rnd *rand.Rand) time.Duration {
	c := b.Ceiling(attempt)
	n := func(max int64) int64 { // uniform in [0, max]
		if max <= 0 {
			return 0
		}
		if rnd != nil {
			return rnd.Int64N(max + 1)
		}
		return rand.Int64N(max + 1)
	}
	switch b.Jitter {
	case FullJitter:
		return time.Duration(n(int64(c)))
	default:
		half := c / 2
		return half + time.Duration(n(int64(c-half)))
	}
}

// RetryAfter reads a response's Retry-After header, as delta seconds or as
// an HTTP-date relative to now, and returns the wait it asks for, capped at
// Max. A date in the past asks for no wait. ok is false when the header is
// absent or unparsable.
func (b Backoff) RetryAfter(resp *http.Response, now time.Time) (wait time.Duration, ok bool) {
	if resp == nil {
		return 0, false
	}
	return b.parseRetryAfter(resp.Header.Get("Retry-After"), now)
}

func (b Backoff) parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	max := b.withDefaults().Max
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			// All digits but too large for uint64: still "wait long".
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return max, true
			}
			return 0, false
		}
		if secs >= uint64(max/time.Second)+1 {
			return max, true
		}
		return min(time.Duration(secs)*time.Second, max), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		return 0, true
	case d > max:
		return max, true
	}
	return d, true
}
