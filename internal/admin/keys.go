package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/policies/apikey"
)

// KeyStore keeps API keys as hashes (internal/store implements it).
type KeyStore interface {
	CreateKey(ctx context.Context, k store.Key) error
	DeleteKey(ctx context.Context, apiID, keyID string) error
}

// keyPrefix marks Sluice API keys, so that a leaked one is recognizable by
// secret scanners.
const keyPrefix = "sk_"

// keysHandler serves POST /v1/apis/{id}/keys and DELETE /v1/apis/{id}/keys/{keyId}.
type keysHandler struct {
	d     Deployer
	store KeyStore
}

func (h *keysHandler) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/apis/{id}/keys", h.create)
	mux.HandleFunc("DELETE /v1/apis/{id}/keys/{keyId}", h.delete)
}

func (h *keysHandler) create(w http.ResponseWriter, r *http.Request) {
	apiID := r.PathValue("id")
	if !h.deployed(apiID) {
		mediation.WriteProblem(w, http.StatusNotFound, "No such API", apiID, nil)
		return
	}
	var id [8]byte
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		mediation.WriteProblem(w, http.StatusInternalServerError, "No randomness for a key", err.Error(), nil)
		return
	}
	_, _ = rand.Read(id[:])
	key := keyPrefix + base64.RawURLEncoding.EncodeToString(raw)
	k := store.Key{ID: hex.EncodeToString(id[:]), APIID: apiID, Hash: apikey.Hash(key), Prefix: key[:len(keyPrefix)+6]}
	if err := h.store.CreateKey(r.Context(), k); err != nil {
		mediation.WriteProblem(w, http.StatusServiceUnavailable, "Key not saved", err.Error(), http.Header{"Retry-After": {"1"}})
		return
	}
	// The key is shown here once; only its hash (apikey.Hash) is kept.
	writeJSON(w, http.StatusCreated, map[string]string{"id": k.ID, "key": key, "prefix": k.Prefix})
}

func (h *keysHandler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.store.DeleteKey(r.Context(), r.PathValue("id"), r.PathValue("keyId")); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			mediation.WriteProblem(w, http.StatusNotFound, "No such key", r.PathValue("keyId"), nil)
			return
		}
		mediation.WriteProblem(w, http.StatusServiceUnavailable, "Key not removed", err.Error(), http.Header{"Retry-After": {"1"}})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *keysHandler) deployed(id string) bool {
	for _, a := range h.d.APIs() {
		if a.ID == id {
			return true
		}
	}
	return false
}
