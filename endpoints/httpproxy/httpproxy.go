// Package httpproxy is the `http-proxy` endpoint: one HTTP backend of a proxy
// API. It carries the backend's target URL and a tuned transport; the
// http-proxy entrypoint balances requests over the endpoints of its group.
package httpproxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEndpoint(plugins.EndpointPlugin{
		Type: "http-proxy",
		Config: func() any {
			return &Config{HTTP: HTTPConfig{
				ConnectTimeout: 5 * time.Second, ReadTimeout: 60 * time.Second, IdleTimeout: 90 * time.Second,
			}}
		},
		Capabilities: func(any) mediation.Capabilities { return mediation.Capabilities{} },
		New: func(_ plugins.Context, cfg any) (mediation.Endpoint, error) {
			return New(*cfg.(*Config))
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
}

// HTTPConfig tunes the backend connections.
type HTTPConfig struct {
	// ConnectTimeout bounds the TCP (and TLS) connect. Default 5s.
	ConnectTimeout time.Duration `yaml:"connectTimeout"`
	// ReadTimeout bounds the wait for the response headers. Default 60s.
	ReadTimeout time.Duration `yaml:"readTimeout"`
	// IdleTimeout closes idle keep-alive connections. Default 90s.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// MaxConnsPerHost caps connections to the backend; 0 is unlimited.
	MaxConnsPerHost int `yaml:"maxConnsPerHost"`
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
	return nil
}

// Endpoint is one backend.
type Endpoint struct {
	target    *url.URL
	transport *http.Transport
}

// New returns the backend endpoint for a validated configuration.
func New(c Config) (*Endpoint, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.Target)
	dialer := &net.Dialer{Timeout: c.HTTP.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &Endpoint{target: u, transport: &http.Transport{
		Proxy:                 nil, // a gateway never goes through the environment's proxy
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   c.HTTP.ConnectTimeout,
		ResponseHeaderTimeout: c.HTTP.ReadTimeout,
		IdleConnTimeout:       c.HTTP.IdleTimeout,
		MaxConnsPerHost:       c.HTTP.MaxConnsPerHost,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		ForceAttemptHTTP2:     false,
	}}, nil
}

// Target is the backend's base URL; do not modify it.
func (e *Endpoint) Target() *url.URL { return e.target }

// Transport is the backend's connection pool.
func (e *Endpoint) Transport() http.RoundTripper { return e.transport }

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

// Close drops idle backend connections.
func (e *Endpoint) Close(context.Context) error {
	e.transport.CloseIdleConnections()
	return nil
}

// Interface guards.
var (
	_ mediation.Endpoint = (*Endpoint)(nil)
	_ plugins.Validator  = (*Config)(nil)
)
