package apikey

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// keyTable is a KeyFinder over a map, counting lookups.
type keyTable struct {
	keys    map[string]string // hash → id
	lookups int
	err     error
}

func (k *keyTable) FindKey(_ context.Context, apiID string, hash []byte) (string, error) {
	k.lookups++
	if k.err != nil {
		return "", k.err
	}
	if id, ok := k.keys[apiID+string(hash)]; ok {
		return id, nil
	}
	return "", plugins.ErrKeyNotFound
}

func admit(s *Security, r *http.Request) (map[string]any, error) {
	attrs := map[string]any{}
	ex := &mediation.Exchange{Attributes: attrs}
	return attrs, s.Admit(r.Context(), ex, r)
}

func TestAdmit(t *testing.T) {
	keys := &keyTable{keys: map[string]string{"a" + string(Hash("sk_good")): "key1"}}
	s, err := New("a", keys, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if _, err := admit(s, r); !errors.Is(err, mediation.ErrNoCredentials) {
		t.Fatalf("no key: %v, want ErrNoCredentials so that another plan may admit", err)
	}
	r.Header.Set("X-Api-Key", "sk_good")
	attrs, err := admit(s, r)
	if err != nil || attrs[AttrKeyID] != "key1" {
		t.Fatalf("good key: %v %v", err, attrs)
	}
	var rej *mediation.Rejection
	if _, err := admit(s, httptest.NewRequest(http.MethodGet, "/?api-key=sk_bad", nil)); !errors.As(err, &rej) || rej.Status != http.StatusUnauthorized {
		t.Fatalf("bad key in the query: %v, want a 401 rejection", err)
	}

	// Answers are cached for CacheTTL, the good and the bad.
	before := keys.lookups
	_, _ = admit(s, r)
	_, _ = admit(s, httptest.NewRequest(http.MethodGet, "/?api-key=sk_bad", nil))
	if keys.lookups != before {
		t.Fatalf("%d lookups within the cache TTL", keys.lookups-before)
	}
	now = now.Add(DefaultConfig().CacheTTL + time.Millisecond)
	delete(keys.keys, "a"+string(Hash("sk_good"))) // revoked
	if _, err := admit(s, r); !errors.As(err, &rej) {
		t.Fatalf("a revoked key after the TTL: %v, want a rejection", err)
	}

	// A store that cannot answer is not a bad key.
	keys.err = errors.New("database down")
	now = now.Add(time.Hour)
	if _, err := admit(s, r); err == nil || errors.As(err, &rej) {
		t.Fatalf("store down: %v, want an error that is not a 401", err)
	}
}

func TestNewNeedsAStore(t *testing.T) {
	if _, err := New("a", nil, DefaultConfig()); err == nil {
		t.Fatal("an api-key plan without a key store was accepted")
	}
	bad := DefaultConfig()
	bad.CacheTTL = -time.Second
	if _, err := New("a", &keyTable{}, bad); err == nil {
		t.Fatal("a negative cacheTtl was accepted")
	}
}

// localKeys is a keyTable that says its lookups never block.
type localKeys struct{ keyTable }

func (*localKeys) NonBlocking() bool { return true }

func TestNonBlockingFollowsTheKeyFinder(t *testing.T) {
	remote, err := New("a", &keyTable{}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	local, err := New("a", &localKeys{}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if remote.NonBlocking() || !local.NonBlocking() {
		t.Fatalf("NonBlocking: %v with a finder that may block, %v with one that does not", remote.NonBlocking(), local.NonBlocking())
	}
}
