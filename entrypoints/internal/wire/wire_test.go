package wire

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAcceptQ(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		accept []string
		typ    string
		want   float64
	}{
		{desc: "no header accepts all", typ: "application/json", want: 1},
		{desc: "exact", accept: []string{"application/json"}, typ: "application/json", want: 1},
		{desc: "case-insensitive", accept: []string{"Application/JSON"}, typ: "application/json", want: 1},
		{desc: "q value", accept: []string{"application/json;q=0.5"}, typ: "application/json", want: 0.5},
		{desc: "q with spaces and other params", accept: []string{"application/json; charset=utf-8 ; Q = 0.3"}, typ: "application/json", want: 0.3},
		{desc: "most specific wins", accept: []string{"*/*;q=0.1, application/*;q=0.2, application/json;q=0"}, typ: "application/json", want: 0},
		{desc: "type wildcard", accept: []string{"text/*;q=0.7"}, typ: "text/plain", want: 0.7},
		{desc: "no match", accept: []string{"text/html"}, typ: "application/json", want: 0},
		{desc: "several header lines", accept: []string{"text/html", "application/json;q=0.9"}, typ: "application/json", want: 0.9},
		{desc: "malformed q is 1", accept: []string{"application/json;q=high"}, typ: "application/json", want: 1},
		{desc: "q clamped", accept: []string{"application/json;q=7"}, typ: "application/json", want: 1},
		{desc: "empty ranges ignored", accept: []string{" , ,application/json"}, typ: "application/json", want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := AcceptQ(tt.accept, tt.typ); got != tt.want {
				t.Fatalf("AcceptQ = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	offers := []string{"application/json", "application/xml", "text/plain"}
	for accept, want := range map[string]string{
		"":                                   "application/json",
		"*/*":                                "application/json",
		"text/plain, application/xml":        "application/xml",
		"application/xml;q=0.1, text/plain":  "text/plain",
		"image/png":                          "",
		"application/json;q=0, */*;q=0.1":    "application/xml",
		"text/event-stream":                  "",
		"text/event-stream, application/*":   "application/json",
		"application/json;q=0.5, text/*;q=1": "text/plain",
	} {
		var h []string
		if accept != "" {
			h = []string{accept}
		}
		if got := Negotiate(h, offers...); got != want {
			t.Errorf("Negotiate(%q) = %q, want %q", accept, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		err        error
		status     int
		retryAfter bool
	}{
		{desc: "bad cursor", err: fmt.Errorf("%w: truncated", mediation.ErrBadCursor), status: 400},
		{desc: "unavailable", err: fmt.Errorf("kafka: %w", mediation.ErrUnavailable), status: 503, retryAfter: true},
		{desc: "draining", err: mediation.ErrDraining, status: 503, retryAfter: true},
		{desc: "unsupported", err: mediation.ErrUnsupported, status: 501},
		{desc: "slow consumer", err: mediation.ErrSlowConsumer, status: 503, retryAfter: true},
		{desc: "deadline", err: context.DeadlineExceeded, status: 504},
		{desc: "client gone", err: context.Canceled, status: 0},
		{desc: "rejection", err: &mediation.Rejection{Status: 429, Title: "Too many", Header: http.Header{"Retry-After": {"3"}}}, status: 429, retryAfter: true},
		{desc: "anything else", err: errors.New("boom"), status: 502},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			WriteError(rec, "subscribe", tt.err)
			if tt.status == 0 {
				if rec.Body.Len() != 0 {
					t.Fatalf("answered a gone client: %s", rec.Body)
				}
				return
			}
			if rec.Code != tt.status || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %s, want %d problem+json", rec.Code, rec.Header().Get("Content-Type"), tt.status)
			}
			if got := rec.Header().Get("Retry-After") != ""; got != tt.retryAfter {
				t.Fatalf("Retry-After present %v, want %v", got, tt.retryAfter)
			}
		})
	}
}

// FuzzAccept checks that no Accept header makes the negotiation misbehave:
// qualities stay in [0, 1], Explicit implies a positive quality, and
// Negotiate only returns an offer the header accepts.
func FuzzAccept(f *testing.F) {
	f.Add("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/xml")
	f.Add("text/event-stream", "text/event-stream")
	f.Add(";;q=,,*/*;q=NaN", "text/plain")
	f.Fuzz(func(t *testing.T, accept, typ string) {
		h := []string{accept}
		q := AcceptQ(h, typ)
		if q < 0 || q > 1 || q != q {
			t.Fatalf("AcceptQ(%q, %q) = %v", accept, typ, q)
		}
		if Explicit(h, typ) && q <= 0 {
			t.Fatalf("Explicit(%q, %q) but quality %v", accept, typ, q)
		}
		if got := Negotiate(h, typ, "application/json"); got != "" && AcceptQ(h, got) <= 0 {
			t.Fatalf("Negotiate(%q) chose %q, which it refuses", accept, got)
		}
	})
}
