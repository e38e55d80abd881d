// Package plugins is the registry of entrypoint, endpoint, policy and plan
// security types.
//
// A registry is a value: Default is the instance the built-ins register into
// from their init functions (bundled by plugins/standard), and tests clone it
// or build their own. A new connector is one package that calls
// RegisterEndpoint in init, plus one blank import.
//
// Every plugin follows the same lifecycle, after Caddy's modules: its
// configuration is decoded strictly from YAML into the value Config returns
// (defaults already set), checked by Validate when the value implements
// Validator, and only then turned into a live value by New. Nothing connects
// before New; whatever New opens is released by the value's Close.
package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// Registry holds plugin types by name. It is safe for concurrent use.
type Registry struct {
	mu          sync.RWMutex
	entrypoints map[string]EntrypointPlugin
	endpoints   map[string]EndpointPlugin
	policies    map[string]PolicyPlugin
	security    map[string]SecurityPlugin
}

// Default is the registry that built-ins register into and that
// `sluice run` uses.
var Default = New()

// New returns an empty registry.
func New() *Registry {
	return &Registry{
		entrypoints: map[string]EntrypointPlugin{},
		endpoints:   map[string]EndpointPlugin{},
		policies:    map[string]PolicyPlugin{},
		security:    map[string]SecurityPlugin{},
	}
}

// Clone returns an independent copy, for tests that add or replace plugins.
func (r *Registry) Clone() *Registry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return &Registry{
		entrypoints: maps.Clone(r.entrypoints),
		endpoints:   maps.Clone(r.endpoints),
		policies:    maps.Clone(r.policies),
		security:    maps.Clone(r.security),
	}
}

// Context is what a plugin's New receives.
type Context struct {
	// Context ends when provisioning is abandoned; it is not the lifetime of
	// the plugin value.
	Context context.Context
	Logger  *slog.Logger
	APIID   string
	// Name is the endpoint's or step's configured name, if any.
	Name string
	// Group describes the endpoint group of an endpoint being provisioned.
	Group GroupInfo
	// Keys finds the API keys issued by the management API; nil when the
	// gateway keeps none.
	Keys KeyFinder
	// Rates holds the gateway's shared rate-limit counters (in Redis when
	// server.redis is set); nil means each policy counts in memory.
	Rates RateCounter
}

// RateCounter takes from rate-limit budgets shared by every policy of the
// gateway, or of every gateway using the same store.
type RateCounter interface {
	// Take spends one request of the budget key, which allows limit
	// requests per period (as a smoothly refilling bucket of limit). It may
	// block on the network, within ctx.
	Take(ctx context.Context, key string, limit int, period time.Duration) (RateDecision, error)
}

// RateDecision is the outcome of RateCounter.Take.
type RateDecision struct {
	Allowed bool
	// Remaining is what is left of the budget after this request.
	Remaining int
	// RetryAfter, when not allowed, is the wait until one request fits.
	RetryAfter time.Duration
	// Reset is the wait until the whole budget is back.
	Reset time.Duration
}

// GroupInfo is what an endpoint knows of its group.
type GroupInfo struct {
	Name string
	// LoadBalancer is the group's: round-robin (default), random, weighted.
	LoadBalancer string
	// Weight is this endpoint's share under weighted balancing (0 means 1).
	Weight int
}

// KeyFinder looks up API keys by the SHA-256 of the key (the key itself is
// never stored).
type KeyFinder interface {
	// FindKey returns the id of the key of API apiID whose hash is hash, or
	// an error wrapping ErrKeyNotFound. It may block on a database.
	FindKey(ctx context.Context, apiID string, hash []byte) (keyID string, err error)
}

// ErrKeyNotFound is what KeyFinder.FindKey wraps for an unknown key.
var ErrKeyNotFound = errors.New("no such api key")

// Validator is implemented by configuration values that check themselves
// after decoding. Return FieldErrors to point at the offending key.
type Validator interface{ Validate() error }

// FieldError is a problem with one field of a plugin configuration. Field is
// the dotted path of camelCase keys below the configuration, such as
// "consumer.topics"; the loader turns it into file:line:col.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Errorf returns a *FieldError for field.
func Errorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// EntrypointPlugin describes an entrypoint type.
type EntrypointPlugin struct {
	Type string
	// Listener is the listener type the entrypoint lives on: "http" or
	// "subscription".
	Listener string
	// Operations are what the entrypoint does with the broker.
	Operations mediation.Operation
	// QoS lists the levels the entrypoint can honour.
	QoS []mediation.QoS
	// Config returns a pointer to a new configuration value with defaults
	// set; nil means the entrypoint takes no configuration.
	Config func() any
	New    func(ctx Context, cfg any) (mediation.Entrypoint, error)
}

// EndpointPlugin describes an endpoint (connector) type.
type EndpointPlugin struct {
	Type string
	// Config returns a pointer to a new configuration value with defaults
	// set. The group's sharedConfiguration is decoded into it first, then
	// the endpoint's own configuration on top.
	Config func() any
	// Capabilities says what an endpoint so configured can do, without
	// connecting, so that bad pairs are refused at load time.
	Capabilities func(cfg any) mediation.Capabilities
	New          func(ctx Context, cfg any) (mediation.Endpoint, error)
}

// PolicyPlugin describes a policy.
type PolicyPlugin struct {
	Name string
	// Phases lists where the policy may be configured.
	Phases []mediation.Phase
	Config func() any
	New    func(ctx Context, cfg any) (mediation.Policy, error)
}

// SecurityPlugin describes a plan security type (keyless, api-key, jwt).
type SecurityPlugin struct {
	Type string
	// Config returns a pointer to a new configuration value with defaults
	// set; nil means the type takes no configuration.
	Config func() any
	// New returns the plan's check. A value with a Close method is closed
	// with its API.
	New func(ctx Context, cfg any) (mediation.Security, error)
}

// RegisterEntrypoint adds p; it panics on a duplicate or incomplete plugin,
// which is a programming error found at init.
func (r *Registry) RegisterEntrypoint(p EntrypointPlugin) {
	if p.Type == "" || p.New == nil {
		panic("plugins: entrypoint without type or New")
	}
	register(r, r.entrypoints, "entrypoint", p.Type, p)
}

// RegisterEndpoint adds p; it panics on a duplicate or incomplete plugin.
func (r *Registry) RegisterEndpoint(p EndpointPlugin) {
	if p.Type == "" || p.New == nil || p.Capabilities == nil {
		panic("plugins: endpoint without type, New or Capabilities")
	}
	register(r, r.endpoints, "endpoint", p.Type, p)
}

// RegisterPolicy adds p; it panics on a duplicate or incomplete plugin.
func (r *Registry) RegisterPolicy(p PolicyPlugin) {
	if p.Name == "" || p.New == nil {
		panic("plugins: policy without name or New")
	}
	register(r, r.policies, "policy", p.Name, p)
}

// RegisterSecurity adds p; it panics on a duplicate or incomplete plugin.
func (r *Registry) RegisterSecurity(p SecurityPlugin) {
	if p.Type == "" || p.New == nil {
		panic("plugins: security type without type or New")
	}
	register(r, r.security, "security", p.Type, p)
}

func register[T any](r *Registry, m map[string]T, kind, name string, p T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := m[name]; dup {
		panic(fmt.Sprintf("plugins: %s %q registered twice", kind, name))
	}
	m[name] = p
}

// Entrypoint returns the entrypoint type name.
func (r *Registry) Entrypoint(name string) (EntrypointPlugin, bool) {
	return lookup(r, r.entrypoints, name)
}

// Endpoint returns the endpoint type name.
func (r *Registry) Endpoint(name string) (EndpointPlugin, bool) { return lookup(r, r.endpoints, name) }

// Policy returns the policy name.
func (r *Registry) Policy(name string) (PolicyPlugin, bool) { return lookup(r, r.policies, name) }

// Security returns the plan security type name.
func (r *Registry) Security(name string) (SecurityPlugin, bool) { return lookup(r, r.security, name) }

func lookup[T any](r *Registry, m map[string]T, name string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := m[name]
	return p, ok
}

// Names lists the registered names of a kind ("entrypoint", "endpoint",
// "policy"), sorted, for error messages that suggest what exists.
func (r *Registry) Names(kind string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var names []string
	switch kind {
	case "entrypoint":
		names = slices.Collect(maps.Keys(r.entrypoints))
	case "endpoint":
		names = slices.Collect(maps.Keys(r.endpoints))
	case "policy":
		names = slices.Collect(maps.Keys(r.policies))
	case "security":
		names = slices.Collect(maps.Keys(r.security))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// RegisterEntrypoint adds p to Default.
func RegisterEntrypoint(p EntrypointPlugin) { Default.RegisterEntrypoint(p) }

// RegisterEndpoint adds p to Default.
func RegisterEndpoint(p EndpointPlugin) { Default.RegisterEndpoint(p) }

// RegisterPolicy adds p to Default.
func RegisterPolicy(p PolicyPlugin) { Default.RegisterPolicy(p) }

// RegisterSecurity adds p to Default.
func RegisterSecurity(p SecurityPlugin) { Default.RegisterSecurity(p) }

// ConfigOr returns the decoded configuration a plugin's New receives — a
// pointer to C, as its Config function made it — or defaults() when the
// configuration block was absent.
func ConfigOr[C any](cfg any, defaults func() C) C {
	if c, ok := cfg.(*C); ok && c != nil {
		return *c
	}
	return defaults()
}
