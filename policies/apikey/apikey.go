// Package apikey is the `api-key` plan security type: a request is admitted
// when it carries a key issued for its API by the management API
// (POST /v1/apis/{id}/keys), in the X-Api-Key header or the api-key query
// parameter. Keys are looked up by their SHA-256 (the store never holds a
// key) and answers are cached for a few seconds, so that a busy API does
// not query the store on every request; a deleted key stops working within
// that time.
package apikey

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterSecurity(plugins.SecurityPlugin{
		Type:   "api-key",
		Config: func() any { c := DefaultConfig(); return &c },
		New: func(ctx plugins.Context, cfg any) (mediation.Security, error) {
			return New(ctx.APIID, ctx.Keys, plugins.ConfigOr(cfg, DefaultConfig))
		},
	})
}

// Config configures an api-key plan.
type Config struct {
	// Header carries the key. Default X-Api-Key.
	Header string `yaml:"header"`
	// QueryParam carries the key when the header is absent (browsers'
	// EventSource and WebSocket cannot set headers). "" disables it.
	// Default api-key.
	QueryParam string `yaml:"queryParam"`
	// CacheTTL is how long a key's lookup is remembered: the delay before a
	// deleted key stops working. 0 looks up every request. Default 5s.
	CacheTTL time.Duration `yaml:"cacheTtl"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config {
	return Config{Header: "X-Api-Key", QueryParam: "api-key", CacheTTL: 5 * time.Second}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Header == "" {
		return plugins.Errorf("header", "is required")
	}
	if c.CacheTTL < 0 || c.CacheTTL > time.Hour {
		return plugins.Errorf("cacheTtl", "must be between 0 and 1h, got %s", c.CacheTTL)
	}
	return nil
}

// Hash is how keys are stored and looked up: SHA-256 of the whole key. Keys
// are 32 random bytes, so a fast hash is enough.
func Hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// AttrKeyID is the exchange attribute holding the id of the admitting key.
const AttrKeyID = "api-key.id"

// maxCached bounds the cache; past it, it starts afresh.
const maxCached = 10000

// Security checks API keys of one API.
type Security struct {
	apiID string
	keys  plugins.KeyFinder
	cfg   Config
	now   func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	keyID   string // "" for a key that does not exist
	expires time.Time
}

// New returns the api-key check of the API apiID.
func New(apiID string, keys plugins.KeyFinder, cfg Config) (*Security, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("api-key plans need the gateway's store of keys, and this gateway has none")
	}
	return &Security{apiID: apiID, keys: keys, cfg: cfg, now: time.Now, cache: map[[32]byte]cached{}}, nil
}

// Admit admits r when its key belongs to the API.
func (s *Security) Admit(ctx context.Context, x *mediation.Exchange, r *http.Request) error {
	key := r.Header.Get(s.cfg.Header)
	if key == "" && s.cfg.QueryParam != "" {
		key = r.URL.Query().Get(s.cfg.QueryParam)
	}
	if key == "" {
		return mediation.ErrNoCredentials
	}
	sum := sha256.Sum256([]byte(key))
	id, err := s.lookup(ctx, sum)
	if err != nil {
		return err
	}
	if id == "" {
		return &mediation.Rejection{Status: http.StatusUnauthorized, Title: "Unknown API key",
			Detail: "the key is not one issued for this API"}
	}
	x.Attributes[AttrKeyID] = id
	return nil
}

// NonBlocking implements mediation.NonBlocking: a cached key is a map
// lookup, and a miss asks the key finder, which says whether it blocks.
// The gateway's store says it may: even the embedded one's reads wait
// while a write grows and remaps its file.
func (s *Security) NonBlocking() bool {
	nb, ok := s.keys.(mediation.NonBlocking)
	return ok && nb.NonBlocking()
}

func (s *Security) lookup(ctx context.Context, sum [32]byte) (string, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[sum]
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.keyID, nil
	}
	id, err := s.keys.FindKey(ctx, s.apiID, sum[:])
	if err != nil && !errors.Is(err, plugins.ErrKeyNotFound) {
		return "", err
	}
	if s.cfg.CacheTTL > 0 {
		s.mu.Lock()
		if len(s.cache) >= maxCached {
			clear(s.cache)
		}
		s.cache[sum] = cached{keyID: id, expires: now.Add(s.cfg.CacheTTL)}
		s.mu.Unlock()
	}
	return id, nil
}

var _ mediation.Security = (*Security)(nil)
