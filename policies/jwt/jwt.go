// Package jwt is the `jwt` plan security type: a request is admitted when
// it carries a valid JSON Web Token in "Authorization: Bearer" (or the
// access_token query parameter, for browsers' EventSource and WebSocket).
//
// The signature is checked with a key from a JWKS URL (fetched at start,
// refreshed every refreshInterval, and fetched again — at most once per
// minRefreshInterval — when a token names a key id the set lacks, which is
// how issuers rotate keys) or with a static public key. Algorithms are
// pinned: only those configured are accepted, so "alg: none" and an HS256
// token signed with the RSA public key as a shared secret are refused.
// exp is required; nbf, iss and aud are checked. The claims are kept in the
// exchange attribute "jwt.claims".
package jwt

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	gojwt "github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/mediation/expr"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterSecurity(plugins.SecurityPlugin{
		Type:   "jwt",
		Config: func() any { c := DefaultConfig(); return &c },
		New: func(ctx plugins.Context, cfg any) (mediation.Security, error) {
			return New(plugins.ConfigOr(cfg, DefaultConfig), ctx.Logger)
		},
	})
}

// Config configures a jwt plan. One of JWKSURL and PublicKey is required.
type Config struct {
	// JWKSURL is the issuer's JSON Web Key Set (https://.../jwks.json).
	JWKSURL string `yaml:"jwksUrl"`
	// PublicKey is a PEM public key (RSA, ECDSA or Ed25519) instead of a key
	// set.
	PublicKey string `yaml:"publicKey"`
	// Issuer, when set, must equal the token's iss.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be among the token's aud.
	Audience string `yaml:"audience"`
	// Algorithms are the signing algorithms accepted. Default [RS256].
	Algorithms []string `yaml:"algorithms"`
	// ClockSkew is the leeway on exp and nbf. Default 30s.
	ClockSkew time.Duration `yaml:"clockSkew"`
	// RefreshInterval is how often the key set is fetched again. Default 1h.
	RefreshInterval time.Duration `yaml:"refreshInterval"`
	// MinRefreshInterval bounds the fetches a token with an unknown key id
	// triggers, so that forged key ids cannot hammer the issuer. Default 1m.
	MinRefreshInterval time.Duration `yaml:"minRefreshInterval"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config {
	return Config{Algorithms: []string{"RS256"}, ClockSkew: 30 * time.Second, RefreshInterval: time.Hour, MinRefreshInterval: time.Minute}
}

// asymmetric are the algorithms a public key can verify; HMAC needs a
// shared secret, which this plan does not take.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.JWKSURL == "" && c.PublicKey == "":
		return plugins.Errorf("jwksUrl", "a jwt plan needs jwksUrl or publicKey")
	case c.JWKSURL != "" && c.PublicKey != "":
		return plugins.Errorf("publicKey", "set jwksUrl or publicKey, not both")
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return plugins.Errorf("jwksUrl", "%q is not an absolute http(s) URL", c.JWKSURL)
		}
	}
	if c.PublicKey != "" {
		if _, err := parsePublicKey(c.PublicKey); err != nil {
			return plugins.Errorf("publicKey", "%v", err)
		}
	}
	if len(c.Algorithms) == 0 {
		return plugins.Errorf("algorithms", "name at least one algorithm")
	}
	for _, a := range c.Algorithms {
		if !slices.Contains(asymmetric, a) {
			return plugins.Errorf("algorithms", "%q is not supported (want %s; HMAC needs a shared secret, which jwt plans do not take)", a, strings.Join(asymmetric, ", "))
		}
	}
	if c.ClockSkew < 0 || c.ClockSkew > 10*time.Minute {
		return plugins.Errorf("clockSkew", "must be between 0 and 10m, got %s", c.ClockSkew)
	}
	if c.RefreshInterval < time.Second {
		return plugins.Errorf("refreshInterval", "must be at least 1s, got %s", c.RefreshInterval)
	}
	if c.MinRefreshInterval < 100*time.Millisecond {
		return plugins.Errorf("minRefreshInterval", "must be at least 100ms, got %s", c.MinRefreshInterval)
	}
	return nil
}

func parsePublicKey(s string) (any, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKIX public key: %w", err)
	}
	return k, nil
}

// AttrClaims is the exchange attribute holding the token's claims
// (map[string]any), which CEL expressions see as jwt.claims.
const AttrClaims = expr.AttrJWTClaims

// Security checks the tokens of one plan.
type Security struct {
	static  bool // a configured public key: checks never fetch
	parser  *gojwt.Parser
	keyfunc gojwt.Keyfunc
	cancel  context.CancelFunc // ends the key set refresh
}

// New returns a jwt check; with a JWKS URL it starts fetching the key set
// in the background (a key set that cannot be fetched yet refuses tokens
// with 503 until it can). Close stops the refresh.
func New(cfg Config, log *slog.Logger) (*Security, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	opts := []gojwt.ParserOption{
		gojwt.WithValidMethods(cfg.Algorithms), gojwt.WithLeeway(cfg.ClockSkew), gojwt.WithExpirationRequired(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, gojwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, gojwt.WithAudience(cfg.Audience))
	}
	s := &Security{parser: gojwt.NewParser(opts...), cancel: func() {}}
	if cfg.PublicKey != "" {
		key, _ := parsePublicKey(cfg.PublicKey) // checked by Validate
		s.keyfunc = func(*gojwt.Token) (any, error) { return key, nil }
		s.static = true
		return s, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	u, _ := url.Parse(cfg.JWKSURL) // checked by Validate
	store, err := jwkset.NewStorageFromHTTP(u, jwkset.HTTPClientStorageOptions{
		Ctx:                       ctx,
		HTTPTimeout:               10 * time.Second,
		NoErrorReturnFirstHTTPReq: true,
		RefreshInterval:           cfg.RefreshInterval,
		RefreshErrorHandler: func(_ context.Context, err error) {
			log.Warn("jwt: fetching the key set failed", "url", cfg.JWKSURL, "err", err)
		},
	})
	if err == nil {
		store, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
			HTTPURLs: map[string]jwkset.Storage{u.String(): store},
			// A token with an unknown key id waits this long at most for
			// its turn to fetch the set again; then it is refused.
			RateLimitWaitMax:  100 * time.Millisecond,
			RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.MinRefreshInterval), 1),
		})
	}
	var kf keyfunc.Keyfunc
	if err == nil {
		kf, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: store})
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("jwt: key set %s: %w", cfg.JWKSURL, err)
	}
	s.keyfunc, s.cancel = kf.Keyfunc, cancel
	return s, nil
}

// NonBlocking implements mediation.NonBlocking: with a static public key a
// check is computation only; a key set may need fetching on an unknown kid.
func (s *Security) NonBlocking() bool { return s.static }

// Admit admits r when it carries a valid token.
func (s *Security) Admit(_ context.Context, x *mediation.Exchange, r *http.Request) error {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		raw = r.URL.Query().Get("access_token")
	}
	if raw = strings.TrimSpace(raw); raw == "" {
		return mediation.ErrNoCredentials
	}
	claims := gojwt.MapClaims{}
	if _, err := s.parser.ParseWithClaims(raw, claims, s.keyfunc); err != nil {
		return &mediation.Rejection{
			Status: http.StatusUnauthorized, Title: "Invalid token", Detail: reason(err),
			Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}},
		}
	}
	x.Attributes[AttrClaims] = map[string]any(claims)
	return nil
}

// reason says why a token was refused without echoing it.
func reason(err error) string {
	switch {
	case errors.Is(err, gojwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, gojwt.ErrTokenNotValidYet):
		return "the token is not valid yet (nbf)"
	case errors.Is(err, gojwt.ErrTokenInvalidAudience):
		return "the token is not for this audience"
	case errors.Is(err, gojwt.ErrTokenInvalidIssuer):
		return "the token is from another issuer"
	case errors.Is(err, gojwt.ErrTokenRequiredClaimMissing):
		return "the token lacks a required claim (exp)"
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid), errors.Is(err, gojwt.ErrTokenUnverifiable):
		return "the signature cannot be verified with an accepted algorithm and key"
	case errors.Is(err, gojwt.ErrTokenMalformed):
		return "the token is malformed"
	}
	return "the token is not valid"
}

// Close stops refreshing the key set.
func (s *Security) Close() error {
	s.cancel()
	return nil
}

var _ mediation.Security = (*Security)(nil)
