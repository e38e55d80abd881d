package delivery

import (
	"math"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

func TestBackoffCeiling(t *testing.T) {
	t.Parallel()
	b := Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 3}
	tests := []struct {
		desc    string
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{"first retry waits Initial", b, 1, 100 * time.Millisecond},
		{"attempt below 1 counts as 1", b, -5, 100 * time.Millisecond},
		{"grows by Multiplier", b, 2, 300 * time.Millisecond},
		{"grows again", b, 3, 900 * time.Millisecond},
		{"capped at Max", b, 4, 2 * time.Second},
		{"huge attempt does not overflow", b, math.MaxInt, 2 * time.Second},
		{"huge multiplier does not overflow", Backoff{Initial: time.Second, Max: time.Hour, Multiplier: math.MaxFloat64}, 3, time.Hour},
		{"zero value uses defaults", Backoff{}, 1, DefaultBackoff.Initial},
		{"zero value capped at default Max", Backoff{}, 100, DefaultBackoff.Max},
		{"multiplier 1 is constant", Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 1}, 10, time.Second},
		{"Max below Initial lifts Max", Backoff{Initial: time.Minute, Max: time.Second}, 5, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := tt.b.Ceiling(tt.attempt); got != tt.want {
				t.Fatalf("Ceiling(%d) = %s, want %s", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, jitter := range []Jitter{EqualJitter, FullJitter} {
		b := Backoff{Initial: time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: jitter}
		for attempt := 1; attempt <= 8; attempt++ {
			c := b.Ceiling(attempt)
			lo := c / 2
			if jitter == FullJitter {
				lo = 0
			}
			seen := map[time.Duration]bool{}
			for range 200 {
				d := b.Delay(attempt, rnd)
				if d < lo || d > c {
					t.Fatalf("jitter %d attempt %d: Delay = %s outside [%s, %s]", jitter, attempt, d, lo, c)
				}
				seen[d] = true
			}
			if len(seen) < 50 {
				t.Fatalf("jitter %d attempt %d: only %d distinct delays in 200 draws: no jitter?", jitter, attempt, len(seen))
			}
		}
	}
	// A nil generator works too.
	if d := (Backoff{}).Delay(1, nil); d < DefaultBackoff.Initial/2 || d > DefaultBackoff.Initial {
		t.Fatalf("Delay with nil rnd = %s", d)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	b := Backoff{Max: time.Minute}
	tests := []struct {
		desc   string
		header string
		want   time.Duration
		wantOK bool
	}{
		{"absent", "", 0, false},
		{"seconds", "7", 7 * time.Second, true},
		{"zero seconds", "0", 0, true},
		{"seconds with spaces", " 12 ", 12 * time.Second, true},
		{"seconds capped at Max", "3600", time.Minute, true},
		{"absurd seconds capped", "99999999999999999999999999", time.Minute, true},
		{"negative is invalid", "-5", 0, false},
		{"fraction is invalid", "1.5", 0, false},
		{"http-date in the future", now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{"http-date capped", now.Add(time.Hour).Format(http.TimeFormat), time.Minute, true},
		{"http-date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"rfc850 date", now.Add(20 * time.Second).Format(time.RFC850), 20 * time.Second, true},
		{"garbage", "soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			resp := &http.Response{Header: http.Header{}}
			if tt.header != "" {
				resp.Header.Set("Retry-After", tt.header)
			}
			got, ok := b.RetryAfter(resp, now)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("RetryAfter(%q) = %s, %v; want %s, %v", tt.header, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if _, ok := b.RetryAfter(nil, now); ok {
		t.Fatal("RetryAfter(nil) reported a wait")
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "-1", "1e9", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		b := Backoff{Max: 10 * time.Minute}
		d, ok := b.parseRetryAfter(v, now)
		if d < 0 || d > 10*time.Minute {
			t.Fatalf("parseRetryAfter(%q) = %s outside [0, Max]", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %s but not ok", v, d)
		}
	})
}
