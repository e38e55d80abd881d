// Package httpproxy is the `http-proxy` endpoint: one HTTP backend of a proxy
// API. It carries the backend's target URL and a tuned transport; the
// http-proxy entrypoint balances requests over the endpoints of its group.
package httpproxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluicegw/sluice/internal/h1"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEndpoint(plugins.EndpointPlugin{
		Type:         "http-proxy",
		Config:       func() any { c := DefaultConfig(); return &c },
		Capabilities: func(any) mediation.Capabilities { return mediation.Capabilities{} },
		New: func(ctx plugins.Context, cfg any) (mediation.Endpoint, error) {
			e, err := New(*cfg.(*Config))
			if err != nil {
				return nil, err
			}
			e.balancer, e.weight = ctx.Group.LoadBalancer, max(ctx.Group.Weight, 1)
			if ctx.Logger != nil {
				e.log = ctx.Logger.With("endpoint", ctx.Name)
			}
			e.startHealthChecks()
			return e, nil
		},
	})
}

// Config configures one backend. Group-wide settings go in the group's
// sharedConfiguration, the target in each endpoint's configuration.
type Config struct {
	// Target is the backend's base URL (http:// or https://); the listener
	// path prefix is replaced by its path. Required.
	Target string `yaml:"target"`
	// HTTP tunes the connections to the backend.
	HTTP HTTPConfig `yaml:"http"`
	// HealthCheck, when its path is set, probes the backend actively.
	HealthCheck HealthCheck `yaml:"healthCheck"`
	// CircuitBreaker takes the backend out after consecutive failures
	// (passive ejection) and lets one request probe it after a cooldown.
	CircuitBreaker CircuitBreaker `yaml:"circuitBreaker"`
	// Retry says when a failed request is tried on another backend.
	Retry Retry `yaml:"retry"`
}

// HealthCheck configures active health checks.
type HealthCheck struct {
	// Path is probed with GET; any 2xx or 3xx is healthy. "" disables
	// active checks.
	Path string `yaml:"path"`
	// Interval between probes. Default 5s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one probe. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// UnhealthyAfter consecutive failed probes take the backend out.
	// Default 2.
	UnhealthyAfter int `yaml:"unhealthyAfter"`
	// HealthyAfter consecutive good probes put it back. Default 1.
	HealthyAfter int `yaml:"healthyAfter"`
}

// CircuitBreaker configures passive ejection.
type CircuitBreaker struct {
	// Failures in a row (connection errors, 502/503/504) that open the
	// breaker. Default 5; 0 disables it.
	Failures int `yaml:"failures"`
	// Cooldown is how long an open breaker keeps requests away before one
	// probes the backend again. Default 10s.
	Cooldown time.Duration `yaml:"cooldown"`
}

// Retry configures retries on another backend.
type Retry struct {
	// Attempts is how many backends a request may try in all. A request is
	// retried when it never reached a backend (the connection failed), and,
	// with Idempotent, when an idempotent request (GET, HEAD, OPTIONS, PUT,
	// DELETE) got no response. Default 2.
	Attempts int `yaml:"attempts"`
	// Idempotent also retries idempotent requests whose backend failed
	// after receiving them. Default false.
	Idempotent bool `yaml:"idempotent"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config {
	return Config{
		HTTP:           HTTPConfig{ConnectTimeout: 5 * time.Second, ReadTimeout: 60 * time.Second, IdleTimeout: 90 * time.Second},
		HealthCheck:    HealthCheck{Interval: 5 * time.Second, Timeout: 2 * time.Second, UnhealthyAfter: 2, HealthyAfter: 1},
		CircuitBreaker: CircuitBreaker{Failures: 5, Cooldown: 10 * time.Second},
		Retry:          Retry{Attempts: 2},
	}
}

// HTTPConfig tunes the backend connections.
type HTTPConfig struct {
	// ConnectTimeout bounds the TCP (and TLS) connect. Default 5s.
	ConnectTimeout time.Duration `yaml:"connectTimeout"`
	// ReadTimeout bounds the wait for the response headers, and (on the
	// fast path) how long the backend may take none of a request body's
	// bytes. Default 60s.
	ReadTimeout time.Duration `yaml:"readTimeout"`
	// IdleTimeout closes idle keep-alive connections. Default 90s.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// MaxConnsPerHost caps connections to the backend; 0 is unlimited.
	MaxConnsPerHost int `yaml:"maxConnsPerHost"`
	// H2C speaks HTTP/2 without TLS to an http:// backend: what gRPC
	// servers expect. Default false (HTTP/1.1; HTTP/2 over https://).
	H2C bool `yaml:"h2c"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Target == "" {
		return plugins.Errorf("target", "required: the backend URL, e.g. http://127.0.0.1:9001")
	}
	u, err := url.Parse(c.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return plugins.Errorf("target", "%q is not an http:// or https:// URL", c.Target)
	}
	if c.HTTP.ConnectTimeout < 0 || c.HTTP.ReadTimeout < 0 || c.HTTP.IdleTimeout < 0 || c.HTTP.MaxConnsPerHost < 0 {
		return plugins.Errorf("http", "timeouts and maxConnsPerHost must not be negative")
	}
	if h := c.HealthCheck; h.Path != "" {
		switch {
		case !strings.HasPrefix(h.Path, "/"):
			return plugins.Errorf("healthCheck.path", "%q must start with /", h.Path)
		case h.Interval < 100*time.Millisecond:
			return plugins.Errorf("healthCheck.interval", "must be at least 100ms, got %s", h.Interval)
		case h.Timeout <= 0:
			return plugins.Errorf("healthCheck.timeout", "must be positive, got %s", h.Timeout)
		case h.UnhealthyAfter < 1 || h.HealthyAfter < 1:
			return plugins.Errorf("healthCheck", "unhealthyAfter and healthyAfter must be at least 1")
		}
	}
	if c.CircuitBreaker.Failures < 0 || c.CircuitBreaker.Cooldown < 0 {
		return plugins.Errorf("circuitBreaker", "failures and cooldown must not be negative")
	}
	if c.Retry.Attempts < 1 || c.Retry.Attempts > 10 {
		return plugins.Errorf("retry.attempts", "must be between 1 and 10, got %d", c.Retry.Attempts)
	}
	return nil
}

// Endpoint is one backend, with its health as seen by active checks and by
// the requests it served.
type Endpoint struct {
	target    *url.URL
	transport *http.Transport
	// upstream serves the fast path's requests to an http:// backend over
	// HTTP/1.1; nil for https:// and h2c backends, which keep transport.
	upstream *h1.Pool
	cfg      Config
	balancer string // the group's load balancer
	weight   int
	log      *slog.Logger

	health
}

// New returns the backend endpoint for a validated configuration.
func New(c Config) (*Endpoint, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.Target)
	e := &Endpoint{target: u, cfg: c, balancer: "round-robin", weight: 1, log: slog.Default()}
	e.health.init()
	dialer := &net.Dialer{Timeout: c.HTTP.ConnectTimeout, KeepAlive: 30 * time.Second}
	e.transport = &http.Transport{
		Proxy:                 nil, // a gateway never goes through the environment's proxy
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   c.HTTP.ConnectTimeout,
		ResponseHeaderTimeout: c.HTTP.ReadTimeout,
		IdleConnTimeout:       c.HTTP.IdleTimeout,
		MaxConnsPerHost:       c.HTTP.MaxConnsPerHost,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		ForceAttemptHTTP2:     u.Scheme == "https",
	}
	if c.HTTP.H2C {
		if u.Scheme != "http" {
			return nil, plugins.Errorf("http.h2c", "applies to http:// targets; https:// negotiates HTTP/2 by itself")
		}
		e.transport.Protocols = new(http.Protocols)
		e.transport.Protocols.SetUnencryptedHTTP2(true)
	}
	if u.Scheme == "http" && !c.HTTP.H2C {
		e.upstream = h1.NewPool(h1.PoolConfig{
			Addr: hostPort(u), ConnectTimeout: c.HTTP.ConnectTimeout, IdleTimeout: c.HTTP.IdleTimeout,
			MaxConns: c.HTTP.MaxConnsPerHost, MaxIdle: 256,
		})
	}
	return e, nil
}

// Balancer is the group's load balancer type.
func (e *Endpoint) Balancer() string { return e.balancer }

// Weight is the endpoint's share under weighted balancing.
func (e *Endpoint) Weight() int { return e.weight }

// Retries is how many backends a request may try, and whether idempotent
// requests are retried after reaching a failing backend.
func (e *Endpoint) Retries() (attempts int, idempotent bool) {
	return e.cfg.Retry.Attempts, e.cfg.Retry.Idempotent
}

// Target is the backend's base URL; do not modify it.
func (e *Endpoint) Target() *url.URL { return e.target }

// Transport is the backend's connection pool.
func (e *Endpoint) Transport() http.RoundTripper { return e.transport }

// Upstream is the backend's HTTP/1.1 keep-alive pool for the fast path, nil
// when the backend needs Transport (https://, h2c), and how long to wait for
// a response head.
func (e *Endpoint) Upstream() (*h1.Pool, time.Duration) { return e.upstream, e.cfg.HTTP.ReadTimeout }

// hostPort is u's host with the scheme's default port when it has none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// Publish is not supported: a proxy endpoint carries requests, not messages.
func (e *Endpoint) Publish(context.Context, *mediation.Message) error {
	return fmt.Errorf("http-proxy: %w", mediation.ErrUnsupported)
}

// Subscribe is not supported.
func (e *Endpoint) Subscribe(context.Context, mediation.SubscribeRequest) (mediation.Subscription, error) {
	return nil, fmt.Errorf("http-proxy: %w", mediation.ErrUnsupported)
}

// Capabilities implements mediation.Endpoint: no message operations.
func (e *Endpoint) Capabilities() mediation.Capabilities { return mediation.Capabilities{} }

// Close stops the health checks and drops idle backend connections.
func (e *Endpoint) Close(context.Context) error {
	e.stopHealthChecks()
	e.transport.CloseIdleConnections()
	if e.upstream != nil {
		e.upstream.Close()
	}
	return nil
}

// Interface guards.
var (
	_ mediation.Endpoint = (*Endpoint)(nil)
	_ plugins.Validator  = (*Config)(nil)
)
