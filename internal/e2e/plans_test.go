package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
)

// proxyAPI is a proxy API at /petstore in front of target, admitting
// consumers with plan.
func proxyAPI(target, plan string) string {
	return fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "127.0.0.1:0", token: s3cret}
apis:
  - id: petstore
    type: proxy
    listeners: [{type: http, paths: [/petstore], entrypoints: [{type: http-proxy}]}]
    endpointGroups:
      - {name: default, type: http-proxy, endpoints: [{name: a, configuration: {target: %q}}]}
    plans:
      - %s
`, target, plan)
}

// echoBackend answers with the path, query and X-Forwarded-For it saw.
func echoBackend(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s?%s xff=%s", r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// call GETs url with headers and returns the status, content type and body.
func call(t *testing.T, url string, header ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// Issue 5, must show 1: without a key, 401 problem+json; with a key issued by
// the management API the backend sees the rewritten path, the query and
// X-Forwarded-For; an unknown key, 401; a deleted key stops working.
func TestAPIKeyPlan(t *testing.T) {
	be := echoBackend(t)
	gw := gatewaytest.Start(t, proxyAPI(be.URL+"/v2", "{name: keys, security: {type: api-key, configuration: {cacheTtl: 0s}}}"))
	base, admin := "http://"+gw.Addr()+"/petstore", "http://"+gw.AdminAddr()

	if code, ct, body := call(t, base+"/pets?limit=2"); code != http.StatusUnauthorized || ct != "application/problem+json" {
		t.Fatalf("without a key: %d %s %s, want a 401 problem", code, ct, body)
	}
	code, body := adminDo(t, http.MethodPost, admin+"/v1/apis/petstore/keys", "s3cret", "")
	var issued struct{ ID, Key string }
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &issued) != nil || issued.Key == "" {
		t.Fatalf("issuing a key: %d %s", code, body)
	}
	if code, _, body := call(t, base+"/pets?limit=2", "X-Api-Key", issued.Key); code != http.StatusOK || body != "/v2/pets?limit=2 xff=127.0.0.1" {
		t.Fatalf("with the key: %d %q, want the rewritten path, the query and X-Forwarded-For", code, body)
	}
	if code, _, _ := call(t, base+"/pets?api-key="+issued.Key); code != http.StatusOK {
		t.Fatalf("with the key as ?api-key=: %d", code)
	}
	if code, ct, _ := call(t, base+"/pets", "X-Api-Key", "sk_not-a-key"); code != http.StatusUnauthorized || ct != "application/problem+json" {
		t.Fatalf("with an unknown key: %d %s", code, ct)
	}
	if code, _ := adminDo(t, http.MethodDelete, admin+"/v1/apis/petstore/keys/"+issued.ID, "s3cret", ""); code != http.StatusNoContent {
		t.Fatalf("deleting the key: %d", code)
	}
	if code, _, _ := call(t, base+"/pets", "X-Api-Key", issued.Key); code != http.StatusUnauthorized {
		t.Fatalf("with a deleted key: %d, want 401", code)
	}
}

// jwks serves an RSA key set whose keys can be rotated.
type jwks struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey
}

func newJWKS(t *testing.T) *jwks {
	j := &jwks{keys: map[string]*rsa.PrivateKey{}}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range j.keys {
			set.Keys = append(set.Keys, map[string]string{
				"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
			})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwks) add(t *testing.T, kid string) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	j.keys[kid] = k
	j.mu.Unlock()
	return k
}

func sign(t *testing.T, method gojwt.SigningMethod, kid string, key any, claims gojwt.MapClaims) string {
	t.Helper()
	tok := gojwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Issue 5, must show 4: a JWT plan accepts a valid token from a JWKS URL,
// and refuses alg none, an expired token, a wrong audience and an HS256
// token signed with the RSA public key; a key added to the set later (a
// rotation) is picked up when a token names it.
func TestJWTPlan(t *testing.T) {
	be := echoBackend(t)
	keys := newJWKS(t)
	k1 := keys.add(t, "k1")
	gw := gatewaytest.Start(t, proxyAPI(be.URL, fmt.Sprintf(
		"{name: tokens, security: {type: jwt, configuration: {jwksUrl: %q, issuer: https://issuer.test, audience: pets, minRefreshInterval: 100ms}}}", keys.srv.URL)))
	base := "http://" + gw.Addr() + "/petstore/pets"

	valid := func() gojwt.MapClaims {
		return gojwt.MapClaims{"iss": "https://issuer.test", "aud": "pets", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
	}
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	if code, _, body := call(t, base, bearer(sign(t, gojwt.SigningMethodRS256, "k1", k1, valid()))...); code != http.StatusOK {
		t.Fatalf("a valid token: %d %s", code, body)
	}
	if code, _, _ := call(t, base+"?access_token="+sign(t, gojwt.SigningMethodRS256, "k1", k1, valid())); code != http.StatusOK {
		t.Fatalf("a valid token as ?access_token=: %d", code)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&k1.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	expired, wrongAud := valid(), valid()
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	wrongAud["aud"] = "orders"
	for desc, tok := range map[string]string{
		"alg none":               sign(t, gojwt.SigningMethodNone, "k1", gojwt.UnsafeAllowNoneSignatureType, valid()),
		"expired":                sign(t, gojwt.SigningMethodRS256, "k1", k1, expired),
		"wrong audience":         sign(t, gojwt.SigningMethodRS256, "k1", k1, wrongAud),
		"HS256 with the RSA key": sign(t, gojwt.SigningMethodHS256, "k1", pubPEM, valid()),
		"unknown signer":         sign(t, gojwt.SigningMethodRS256, "k1", keys.add(t, "unused"), valid()),
		"garbage":                "not.a.token",
	} {
		code, ct, body := call(t, base, bearer(tok)...)
		if code != http.StatusUnauthorized || ct != "application/problem+json" {
			t.Errorf("%s: %d %s %s, want a 401 problem", desc, code, ct, body)
		}
	}
	if code, _, _ := call(t, base); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", code)
	}

	// Rotation: the issuer publishes k2, tokens signed with it are accepted.
	k2 := keys.add(t, "k2")
	time.Sleep(150 * time.Millisecond) // past minRefreshInterval since start
	if code, _, body := call(t, base, bearer(sign(t, gojwt.SigningMethodRS256, "k2", k2, valid()))...); code != http.StatusOK {
		t.Fatalf("a token signed with a rotated-in key: %d %s", code, body)
	}
}

// With a keyless plan beside an api-key plan, a request without a key is
// admitted, and one with a wrong key is still refused.
func TestKeylessPlanBesideAPIKeys(t *testing.T) {
	be := echoBackend(t)
	cfg := proxyAPI(be.URL, "{name: open, security: {type: keyless}}") + "      - {name: keys, security: {type: api-key}}\n"
	gw := gatewaytest.Start(t, cfg)
	base := "http://" + gw.Addr() + "/petstore/pets"
	if code, _, body := call(t, base); code != http.StatusOK {
		t.Fatalf("without a key: %d %s, want the keyless plan to admit it", code, body)
	}
	if code, _, _ := call(t, base, "X-Api-Key", "sk_wrong"); code != http.StatusUnauthorized {
		t.Fatalf("with a wrong key: %d, want 401 despite the keyless plan", code)
	}
}
