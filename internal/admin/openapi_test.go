package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The OpenAPI document is served, is OpenAPI 3.1 JSON, and documents every
// route the management API has.
func TestOpenAPIListsRoutes(t *testing.T) {
	h := Handler(Options{Ready: func() bool { return true }})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json: %d", rec.Code)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("not an OpenAPI 3.1 document: %v", err)
	}
	for _, want := range []string{"/livez", "/readyz", "/metrics", "/v1/apis", "/v1/apis/{id}", "/v1/apis/{id}/keys", "/v1/apis/{id}/keys/{keyId}"} {
		if _, ok := doc.Paths[want]; !ok {
			t.Errorf("the document lacks %s", want)
		}
	}
}
