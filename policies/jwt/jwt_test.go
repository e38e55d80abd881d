package jwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/mediation"
)

// testKey is an ES256 key pair and its public key as PEM.
func testKey(t testing.TB) (*ecdsa.PrivateKey, string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestValidate(t *testing.T) {
	_, pub := testKey(t)
	tests := []struct {
		desc    string
		change  func(*Config)
		wantErr string
	}{
		{desc: "jwks url", change: func(c *Config) { c.JWKSURL = "https://issuer.example/jwks.json" }},
		{desc: "public key", change: func(c *Config) { c.PublicKey = pub; c.Algorithms = []string{"ES256"} }},
		{desc: "neither", change: func(*Config) {}, wantErr: "needs jwksUrl or publicKey"},
		{desc: "both", change: func(c *Config) { c.JWKSURL = "https://i/j"; c.PublicKey = pub }, wantErr: "not both"},
		{desc: "relative url", change: func(c *Config) { c.JWKSURL = "/jwks" }, wantErr: "absolute"},
		{desc: "not PEM", change: func(c *Config) { c.PublicKey = "abc" }, wantErr: "PEM"},
		{desc: "HMAC", change: func(c *Config) { c.JWKSURL = "https://i/j"; c.Algorithms = []string{"HS256"} }, wantErr: "shared secret"},
		{desc: "none", change: func(c *Config) { c.JWKSURL = "https://i/j"; c.Algorithms = []string{"none"} }, wantErr: "not supported"},
		{desc: "no algorithm", change: func(c *Config) { c.JWKSURL = "https://i/j"; c.Algorithms = nil }, wantErr: "at least one"},
		{desc: "huge skew", change: func(c *Config) { c.JWKSURL = "https://i/j"; c.ClockSkew = time.Hour }, wantErr: "clockSkew"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func admit(s *Security, token string) (map[string]any, error) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	x := &mediation.Exchange{Attributes: map[string]any{}}
	return x.Attributes, s.Admit(r.Context(), x, r)
}

// A static public key plan admits a token it signed, keeps its claims, and
// refuses one signed with another key or algorithm, or one that is not yet
// valid.
func TestStaticPublicKey(t *testing.T) {
	k, pub := testKey(t)
	c := DefaultConfig()
	c.PublicKey, c.Algorithms, c.Issuer = pub, []string{"ES256"}, "https://i"
	s, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	claims := gojwt.MapClaims{"iss": "https://i", "sub": "bob", "exp": time.Now().Add(time.Minute).Unix()}
	tok, _ := gojwt.NewWithClaims(gojwt.SigningMethodES256, claims).SignedString(k)
	attrs, err := admit(s, tok)
	if err != nil {
		t.Fatalf("a valid token: %v", err)
	}
	if got := attrs[AttrClaims].(map[string]any)["sub"]; got != "bob" {
		t.Fatalf("claims kept: sub = %v", got)
	}
	if _, err := admit(s, ""); !errors.Is(err, mediation.ErrNoCredentials) {
		t.Fatalf("no token: %v, want ErrNoCredentials", err)
	}
	other, _ := testKey(t)
	future := gojwt.MapClaims{"iss": "https://i", "exp": time.Now().Add(2 * time.Hour).Unix(), "nbf": time.Now().Add(time.Hour).Unix()}
	noExp := gojwt.MapClaims{"iss": "https://i"}
	for desc, tok := range map[string]string{
		"another key":               must(gojwt.NewWithClaims(gojwt.SigningMethodES256, claims).SignedString(other)),
		"another issuer":            must(gojwt.NewWithClaims(gojwt.SigningMethodES256, gojwt.MapClaims{"iss": "x", "exp": claims["exp"]}).SignedString(k)),
		"not yet valid":             must(gojwt.NewWithClaims(gojwt.SigningMethodES256, future).SignedString(k)),
		"no exp":                    must(gojwt.NewWithClaims(gojwt.SigningMethodES256, noExp).SignedString(k)),
		"HS256 with the public key": must(gojwt.NewWithClaims(gojwt.SigningMethodHS256, claims).SignedString([]byte(pub))),
	} {
		var rej *mediation.Rejection
		if _, err := admit(s, tok); !errors.As(err, &rej) || rej.Status != http.StatusUnauthorized {
			t.Errorf("%s: %v, want a 401 rejection", desc, err)
		}
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// No input admits a request unless it carries the claims of a token the
// key signed; nothing panics.
func FuzzAdmit(f *testing.F) {
	k, pub := testKey(f)
	c := DefaultConfig()
	c.PublicKey, c.Algorithms = pub, []string{"ES256"}
	s, err := New(c, nil)
	if err != nil {
		f.Fatal(err)
	}
	claims := gojwt.MapClaims{"sub": "seed", "exp": float64(4102444800)}
	f.Add(must(gojwt.NewWithClaims(gojwt.SigningMethodES256, claims).SignedString(k)))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		if strings.ContainsAny(token, "\r\n") {
			return // not a header value
		}
		attrs, err := admit(s, token)
		if err == nil && attrs[AttrClaims].(map[string]any)["sub"] != "seed" {
			t.Fatalf("admitted a token the key did not sign: %q", token)
		}
	})
}
