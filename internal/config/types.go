package config

// The types below mirror the configuration file of DESIGN.md (contract):
// YAML, camelCase keys, unknown keys rejected. Each field says what it does.
// Plugin-specific `configuration` blocks are kept as Raw and decoded into the
// plugin's own type by the loader, which stores the result in Decoded.

// Config is a whole gateway.yaml.
type Config struct {
	Server Server `yaml:"server"`
	APIs   []API  `yaml:"apis"`

	// File is the path the configuration was read from, for messages.
	File string `yaml:"-"`
}

// Server configures the gateway process.
type Server struct {
	// HTTP is the data-plane listener that serves every API.
	HTTP HTTPServer `yaml:"http"`
	// Admin is the management listener: /livez, /readyz, /metrics, /v1/...
	Admin Admin `yaml:"admin"`
	// DataDir holds the embedded store. Default ./data.
	DataDir string `yaml:"dataDir"`
	// Store is "" (embedded under DataDir) or a postgres:// URL.
	Store string `yaml:"store"`
	// Redis, when set (redis://host:port), holds shared rate-limit counters.
	Redis string `yaml:"redis"`
	// Webhooks configures webhook delivery.
	Webhooks Webhooks `yaml:"webhooks"`
	// Log configures the JSON logs on stderr.
	Log Log `yaml:"log"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM. Default 15s.
	ShutdownTimeout Duration `yaml:"shutdownTimeout"`
}

// HTTPServer is the data-plane listener.
type HTTPServer struct {
	// Listen is host:port. Default ":8080".
	Listen string `yaml:"listen"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"readHeaderTimeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idleTimeout"`
	// MaxHeaderBytes bounds request headers. Default 1 MiB.
	MaxHeaderBytes int `yaml:"maxHeaderBytes"`
	// EventLoops is how many event loops serve proxy APIs on Linux: 0
	// (the default) runs one per core (GOMAXPROCS), "off" (-1) serves
	// every connection on a goroutine of its own. Other systems always do
	// the latter. With loops, the goroutines keep a P of their own: on a
	// machine of its own GOMAXPROCS is raised to one more than the loops;
	// where GOMAXPROCS is set or bounded by a CPU quota, the default runs
	// one loop fewer than GOMAXPROCS instead.
	EventLoops EventLoops `yaml:"eventLoops"`
}

// Admin is the management listener.
type Admin struct {
	// Listen is host:port. Default "127.0.0.1:8081"; "" keeps the default,
	// "off" disables the listener.
	Listen string `yaml:"listen"`
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// /v1/... (never on /livez, /readyz or /metrics).
	Token string `yaml:"token"`
}

// Webhooks configures webhook delivery.
type Webhooks struct {
	// AllowPrivateNetworks lets callback URLs reach loopback, private and
	// link-local addresses (SSRF guard off). Default false.
	AllowPrivateNetworks bool `yaml:"allowPrivateNetworks"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format"`
}

// API is one deployed unit.
type API struct {
	// ID is the API's stable identifier: letters, digits, '-', '_'.
	ID string `yaml:"id"`
	// Name is for people. Default: ID.
	Name string `yaml:"name"`
	// Type is "message" (brokers) or "proxy" (HTTP backends). Default message.
	Type           string          `yaml:"type"`
	Listeners      []Listener      `yaml:"listeners"`
	EndpointGroups []EndpointGroup `yaml:"endpointGroups"`
	Flows          []Flow          `yaml:"flows"`
	Plans          []Plan          `yaml:"plans"`
}

// Listener is how clients reach an API.
type Listener struct {
	// Type is "http" (paths on the gateway port) or "subscription" (webhooks).
	Type string `yaml:"type"`
	// Paths are path prefixes on the gateway port; each is unique across all
	// APIs. http listeners need at least one.
	Paths []string `yaml:"paths"`
	// Hosts, when set, restrict the listener to these Host headers.
	Hosts []string `yaml:"hosts"`
	// CORS answers preflights and sets Access-Control-* headers.
	CORS *CORS `yaml:"cors"`
	// Entrypoints are the protocols served on this listener.
	Entrypoints []Entrypoint `yaml:"entrypoints"`
}

// CORS configures cross-origin access for browsers.
type CORS struct {
	// AllowOrigins lists allowed origins; "*" allows any.
	AllowOrigins []string `yaml:"allowOrigins"`
	// AllowMethods defaults to GET, POST, OPTIONS.
	AllowMethods []string `yaml:"allowMethods"`
	// AllowHeaders defaults to the headers the preflight asks for.
	AllowHeaders []string `yaml:"allowHeaders"`
	// ExposeHeaders lists response headers scripts may read.
	ExposeHeaders []string `yaml:"exposeHeaders"`
	// AllowCredentials sends Access-Control-Allow-Credentials: true.
	AllowCredentials bool `yaml:"allowCredentials"`
	// MaxAge lets browsers cache a preflight. Default 10m.
	MaxAge Duration `yaml:"maxAge"`
}

// Entrypoint is one client-facing protocol of a listener.
type Entrypoint struct {
	// Type is a registered entrypoint type: sse, http-get, http-post,
	// websocket, webhook, http-proxy, ...
	Type string `yaml:"type"`
	// QoS is none, auto (default), at-most-once or at-least-once.
	QoS string `yaml:"qos"`
	// Window bounds a client's unacknowledged messages. Default 256.
	Window int `yaml:"window"`
	// SlowConsumer is disconnect (default), drop-oldest or block: what a
	// shared subscription does with a client whose window is full.
	SlowConsumer string `yaml:"slowConsumer"`
	// DLQ names the endpoint group that receives undeliverable messages.
	DLQ *DLQ `yaml:"dlq"`
	// Configuration is the entrypoint type's own settings.
	Configuration Raw `yaml:"configuration"`
	// Decoded is the validated plugin configuration (set by Load).
	Decoded any `yaml:"-"`
}

// DLQ names a dead-letter endpoint group.
type DLQ struct {
	Endpoint string `yaml:"endpoint"`
}

// EndpointGroup is endpoints of one type sharing configuration. The first
// group of an API serves its entrypoints; others are named (e.g. DLQ).
type EndpointGroup struct {
	Name string `yaml:"name"`
	// Type is a registered endpoint type: kafka, mqtt5, mock, http-proxy, ...
	Type string `yaml:"type"`
	// LoadBalancer picks an endpoint: round-robin (default), random, weighted.
	LoadBalancer *LoadBalancer `yaml:"loadBalancer"`
	// SharedConfiguration is decoded into every endpoint's configuration
	// before the endpoint's own Configuration.
	SharedConfiguration Raw        `yaml:"sharedConfiguration"`
	Endpoints           []Endpoint `yaml:"endpoints"`
}

// LoadBalancer configures endpoint selection.
type LoadBalancer struct {
	Type string `yaml:"type"`
}

// Endpoint is one broker or backend of a group.
type Endpoint struct {
	Name   string `yaml:"name"`
	Weight int    `yaml:"weight"`
	// Configuration overrides the group's sharedConfiguration.
	Configuration Raw `yaml:"configuration"`
	// Decoded is the merged, validated plugin configuration (set by Load).
	Decoded any `yaml:"-"`
}

// Flow is selectors plus policy steps per phase.
type Flow struct {
	Name string `yaml:"name"`
	// Enabled defaults to true.
	Enabled   *bool      `yaml:"enabled"`
	Selectors []Selector `yaml:"selectors"`
	Request   []Step     `yaml:"request"`
	Response  []Step     `yaml:"response"`
	Publish   []Step     `yaml:"publish"`
	Subscribe []Step     `yaml:"subscribe"`
}

// Selector narrows a flow. Type http uses Path and Methods; channel uses
// Operations (publish, subscribe) and Entrypoints; condition uses Condition
// (a CEL expression over request).
type Selector struct {
	Type        string   `yaml:"type"`
	Path        string   `yaml:"path"`
	Methods     []string `yaml:"methods"`
	Operations  []string `yaml:"operations"`
	Entrypoints []string `yaml:"entrypoints"`
	Condition   string   `yaml:"condition"`
}

// Step is one policy in a phase.
type Step struct {
	// Policy is a registered policy name.
	Policy string `yaml:"policy"`
	Name   string `yaml:"name"`
	// Enabled defaults to true.
	Enabled *bool `yaml:"enabled"`
	// Configuration is the policy's own settings.
	Configuration Raw `yaml:"configuration"`
	// Decoded is the validated plugin configuration (set by Load).
	Decoded any `yaml:"-"`
}

// Plan admits consumers.
type Plan struct {
	Name string `yaml:"name"`
	// Mode is standard (default) or push (webhook subscriptions).
	Mode     string    `yaml:"mode"`
	Security *Security `yaml:"security"`
}

// Security is a plan's admission check: keyless, api-key, jwt, mtls.
type Security struct {
	// Type is a registered security type: keyless, api-key, jwt, ...
	Type          string `yaml:"type"`
	Configuration Raw    `yaml:"configuration"`
	// Decoded is the validated plugin configuration (set by Load).
	Decoded any `yaml:"-"`
}
