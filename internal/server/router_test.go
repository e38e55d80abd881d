package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluicegw/sluice/internal/config"
)

func TestRouteMatch(t *testing.T) {
	t.Parallel()
	table := newRouteTable([]*route{
		{prefix: "/"},
		{prefix: "/orders"},
		{prefix: "/orders/eu"},
		{prefix: "/hosted", hosts: []string{"api.example.com"}},
	})
	for _, tc := range []struct {
		desc, host, path    string
		wantPrefix, wantRel string
	}{
		{"exact", "gw", "/orders", "/orders", "/"},
		{"below", "gw", "/orders/42", "/orders", "/42"},
		{"longest prefix wins", "gw", "/orders/eu/7", "/orders/eu", "/7"},
		{"a longer name is not below", "gw", "/ordersx", "/", "/ordersx"},
		{"host restricted, right host", "api.example.com:8080", "/hosted/a", "/hosted", "/a"},
		{"host restricted, other host", "gw", "/hosted/a", "/", "/hosted/a"},
		{"host compared case-insensitively", "API.example.com", "/hosted", "/hosted", "/"},
		{"root", "gw", "/", "/", "/"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r, rel := table.match(tc.host, cleanRequestPath(tc.path))
			if r == nil || r.prefix != tc.wantPrefix || rel != tc.wantRel {
				t.Fatalf("match(%q, %q) = %v %q, want %q %q", tc.host, tc.path, r, rel, tc.wantPrefix, tc.wantRel)
			}
		})
	}
}

func TestCleanRequestPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                  "/",
		"/a//b":             "/a/b",
		"/a/./b/":           "/a/b",
		"/orders/../admin":  "/admin",
		"/../../etc/passwd": "/etc/passwd",
		"relative":          "/relative",
	} {
		if got := cleanRequestPath(in); got != want {
			t.Errorf("cleanRequestPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	c := newCORS(&config.CORS{AllowOrigins: []string{"https://app.example.com"}, ExposeHeaders: []string{"X-Trace"}})
	for _, tc := range []struct {
		desc, method, origin, reqMethod string
		wantAnswered                    bool
		wantStatus                      int
		wantAllowOrigin                 string
	}{
		{"preflight allowed", http.MethodOptions, "https://app.example.com", "POST", true, http.StatusNoContent, "https://app.example.com"},
		{"preflight refused", http.MethodOptions, "https://evil.example", "POST", true, http.StatusForbidden, ""},
		{"actual request allowed", http.MethodGet, "https://app.example.com", "", false, 0, "https://app.example.com"},
		{"actual request other origin", http.MethodGet, "https://evil.example", "", false, 0, ""},
		{"no origin", http.MethodGet, "", "", false, 0, ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tc.method, "/orders", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.reqMethod != "" {
				r.Header.Set("Access-Control-Request-Method", tc.reqMethod)
				r.Header.Set("Access-Control-Request-Headers", "content-type")
			}
			w := httptest.NewRecorder()
			answered := c.handle(w, r)
			if answered != tc.wantAnswered {
				t.Fatalf("answered = %v", answered)
			}
			if tc.wantStatus != 0 && w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tc.wantStatus)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tc.wantAllowOrigin {
				t.Fatalf("Allow-Origin %q, want %q", got, tc.wantAllowOrigin)
			}
			if tc.wantStatus == http.StatusNoContent && w.Header().Get("Access-Control-Allow-Headers") != "content-type" {
				t.Fatalf("preflight did not allow the requested headers: %v", w.Header())
			}
		})
	}
}
