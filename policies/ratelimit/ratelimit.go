// Package ratelimit is the rate-limit policy of the request phase: each
// client gets limit requests per period, refilled smoothly (GCRA, a token
// bucket with one timestamp of state); a request over it is answered 429
// with Retry-After and the RateLimit headers, and never reaches the
// backend or the broker.
//
//	request:
//	  - policy: rate-limit
//	    configuration: {limit: 100, period: 1m, key: api-key}
//
// Budgets live in the gateway (each gateway counts alone) unless
// server.redis is set: then every gateway using that Redis shares them.
// When Redis cannot be reached the policy fails open or closed as
// configured (failOpen, default true: an outage of the counter store
// should not become an outage of the API).
package ratelimit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/mediation/expr"
	"github.com/sluicegw/sluice/plugins"
	"github.com/sluicegw/sluice/policies/apikey"
)

// Name is the policy's name in configuration files.
const Name = "rate-limit"

func init() {
	plugins.RegisterPolicy(plugins.PolicyPlugin{
		Name:   Name,
		Phases: []mediation.Phase{mediation.PhaseRequest},
		Config: func() any { c := DefaultConfig(); return &c },
		New: func(ctx plugins.Context, cfg any) (mediation.Policy, error) {
			return New(plugins.ConfigOr(cfg, DefaultConfig), ctx.APIID+":"+ctx.Name, ctx.Rates, ctx.Logger)
		},
	})
}

// Config configures a rate-limit step.
type Config struct {
	// Limit is how many requests a client may make per Period.
	Limit int `yaml:"limit"`
	// Period is the window the limit is for. Default 1s.
	Period time.Duration `yaml:"period"`
	// Key says who a budget belongs to: ip (the client address, default),
	// api-key (the key that admitted the request, else the address),
	// subject (the JWT's sub, else the address), plan, or api (one budget
	// for everyone).
	Key string `yaml:"key"`
	// FailOpen admits requests when the counter store cannot answer.
	// Default true.
	FailOpen bool `yaml:"failOpen"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config { return Config{Period: time.Second, Key: "ip", FailOpen: true} }

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Limit < 1 {
		return plugins.Errorf("limit", "must be at least 1, got %d", c.Limit)
	}
	if c.Period < time.Millisecond || c.Period > 24*time.Hour {
		return plugins.Errorf("period", "must be between 1ms and 24h, got %s", c.Period)
	}
	switch c.Key {
	case "ip", "api-key", "subject", "plan", "api":
	default:
		return plugins.Errorf("key", "%q is not ip, api-key, subject, plan or api", c.Key)
	}
	return nil
}

// Policy is a configured rate limit; it is safe for concurrent use.
type Policy struct {
	cfg    Config
	scope  string // "<api>:<step>": budgets of different steps never mix
	rates  plugins.RateCounter
	limit  string // the RateLimit-Policy value
	failed func(error)
}

// New returns the policy. rates nil counts in memory; scope separates its
// budgets from those of other steps using the same counter.
func New(cfg Config, scope string, rates plugins.RateCounter, log interface{ Warn(string, ...any) }) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rates == nil {
		rates = NewMemoryCounter()
	}
	p := &Policy{cfg: cfg, scope: scope, rates: rates,
		limit: fmt.Sprintf("%d;w=%d", cfg.Limit, int(max(1, cfg.Period.Seconds())))}
	p.failed = func(err error) {
		if log != nil {
			log.Warn("rate-limit: counter store unavailable", "err", err, "failOpen", cfg.FailOpen)
		}
	}
	return p, nil
}

// NonBlocking implements mediation.NonBlocking: budgets counted in memory
// never wait; those in Redis take a round trip.
func (p *Policy) NonBlocking() bool {
	_, inMemory := p.rates.(*MemoryCounter)
	return inMemory
}

// OnRequest spends one request of the client's budget, or refuses it.
func (p *Policy) OnRequest(ctx context.Context, x *mediation.Exchange, r *http.Request) error {
	d, err := p.rates.Take(ctx, p.scope+":"+p.keyOf(x, r), p.cfg.Limit, p.cfg.Period)
	if err != nil {
		p.failed(err)
		if p.cfg.FailOpen {
			return nil
		}
		return &mediation.Rejection{Status: http.StatusServiceUnavailable, Title: "Rate limit cannot be checked now",
			Detail: "the rate-limit counters are unavailable", Header: http.Header{"Retry-After": {"1"}}}
	}
	if d.Allowed {
		return nil
	}
	retry := max(1, int((d.RetryAfter+time.Second-1)/time.Second)) // whole seconds, rounded up
	return &mediation.Rejection{
		Status: http.StatusTooManyRequests, Title: "Rate limit exceeded",
		Detail: fmt.Sprintf("at most %d requests per %s; retry in %ds", p.cfg.Limit, p.cfg.Period, retry),
		Header: http.Header{
			"Retry-After":      {strconv.Itoa(retry)},
			"Ratelimit-Policy": {p.limit},
			"Ratelimit":        {fmt.Sprintf("limit=%d, remaining=0, reset=%d", p.cfg.Limit, retry)},
		},
	}
}

// keyOf names the client's budget.
func (p *Policy) keyOf(x *mediation.Exchange, r *http.Request) string {
	switch p.cfg.Key {
	case "api":
		return "api"
	case "plan":
		if v, ok := x.Attributes[mediation.AttrPlan].(string); ok {
			return "plan:" + v
		}
	case "api-key":
		if v, ok := x.Attributes[apikey.AttrKeyID].(string); ok {
			return "key:" + v
		}
	case "subject":
		if c, ok := x.Attributes[expr.AttrJWTClaims].(map[string]any); ok {
			if sub, ok := c["sub"].(string); ok {
				return "sub:" + sub
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

var _ mediation.RequestPolicy = (*Policy)(nil)
