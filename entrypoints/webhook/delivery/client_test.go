package delivery

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// receiver is a webhook callback on loopback that records what it got.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []recorded
}

type recorded struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, respond http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, recorded{req.Header.Clone(), body})
		r.mu.Unlock()
		respond(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.got...)
}

func newTestClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c := NewClient(opts)
	t.Cleanup(c.Close)
	return c
}

func status(code int, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "receiver says "+http.StatusText(code))
	}
}

func TestDeliverSignsAndSendsHeaders(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, status(http.StatusNoContent))
	c := newTestClient(t, Options{Guard: Guard{AllowPrivate: true}, UserAgent: "sluice-test"})
	secret := NewSecret()
	body := []byte(`{"order":42,"status":"paid"}`)
	out := c.Deliver(context.Background(), Request{
		URL: rcv.srv.URL + "/hook", Body: body, ContentType: "application/json",
		Headers: map[string]string{"Authorization": "Bearer abc", "X-Tenant": "acme"},
		Secret:  secret, MessageID: "orders-0-17",
	})
	if out.Kind != Delivered || out.Status != http.StatusNoContent || out.Err != nil {
		t.Fatalf("Deliver = %+v, want delivered 204", out)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	h := reqs[0].header
	for k, want := range map[string]string{
		"Content-Type": "application/json", "Authorization": "Bearer abc", "X-Tenant": "acme",
		"User-Agent": "sluice-test", HeaderID: "orders-0-17",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if string(reqs[0].body) != string(body) {
		t.Errorf("body = %q, want %q", reqs[0].body, body)
	}
	// Verify exactly as a receiver would, with the subscriber's secret.
	if err := Verify(secret, h, reqs[0].body, time.Now(), 0); err != nil {
		t.Fatalf("receiver-side verification: %v (headers %v)", err, h)
	}
}

func TestDeliverRetrySignsFreshTimestampWithSameID(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, status(http.StatusInternalServerError))
	c := newTestClient(t, Options{Guard: Guard{AllowPrivate: true}})
	var clock atomic.Int64
	clock.Store(1_700_000_000)
	c.now = func() time.Time { return time.Unix(clock.Add(30), 0) }
	req := Request{URL: rcv.srv.URL, Body: []byte("x"), Secret: NewSecret(), MessageID: "m1"}
	for range 2 {
		if out := c.Deliver(context.Background(), req); out.Kind != Retry {
			t.Fatalf("Deliver = %+v, want retry", out)
		}
	}
	reqs := rcv.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	a, b := reqs[0].header, reqs[1].header
	if a.Get(HeaderID) != "m1" || b.Get(HeaderID) != "m1" {
		t.Errorf("webhook-id changed across retries: %q, %q", a.Get(HeaderID), b.Get(HeaderID))
	}
	if a.Get(HeaderTimestamp) == b.Get(HeaderTimestamp) || a.Get(HeaderSignature) == b.Get(HeaderSignature) {
		t.Errorf("retry reused timestamp/signature: %v / %v", a, b)
	}
	if got := a.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("default Content-Type = %q", got)
	}
}

func TestDeliverClassifiesResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		respond    http.HandlerFunc
		wantKind   Kind
		wantStatus int
		wantAfter  time.Duration
		wantErr    string
	}{
		{desc: "200", respond: status(200), wantKind: Delivered, wantStatus: 200},
		{desc: "202", respond: status(202), wantKind: Delivered, wantStatus: 202},
		{desc: "500 retries with the body in the error", respond: status(500), wantKind: Retry, wantStatus: 500, wantErr: "500 Internal Server Error: receiver says Internal Server Error"},
		{desc: "502", respond: status(502), wantKind: Retry, wantStatus: 502},
		{desc: "503 with Retry-After", respond: status(503, "Retry-After", "7"), wantKind: Retry, wantStatus: 503, wantAfter: 7 * time.Second},
		{desc: "429 with Retry-After capped at Max", respond: status(429, "Retry-After", "86400"), wantKind: Retry, wantStatus: 429, wantAfter: time.Minute},
		{desc: "429 without Retry-After", respond: status(429), wantKind: Retry, wantStatus: 429},
		{desc: "408", respond: status(408), wantKind: Retry, wantStatus: 408},
		{desc: "410 disables", respond: status(410), wantKind: Gone, wantStatus: 410},
		{desc: "400 to the DLQ", respond: status(400), wantKind: Reject, wantStatus: 400, wantErr: "400 Bad Request"},
		{desc: "404 to the DLQ", respond: status(404), wantKind: Reject, wantStatus: 404},
		{desc: "413 to the DLQ", respond: status(413), wantKind: Reject, wantStatus: 413},
		{desc: "redirect is not followed", respond: status(302, "Location", "http://127.0.0.1:1/elsewhere"), wantKind: Reject, wantStatus: 302, wantErr: "redirects are not followed"},
		{desc: "307 is not followed either", respond: status(307, "Location", "/again"), wantKind: Reject, wantStatus: 307},
		{desc: "connection dropped", respond: func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, wantKind: Retry},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, tt.respond)
			c := newTestClient(t, Options{Guard: Guard{AllowPrivate: true}, Backoff: Backoff{Max: time.Minute}})
			out := c.Deliver(context.Background(), Request{URL: rcv.srv.URL + "/in", Body: []byte("b"), Secret: NewSecret(), MessageID: "id"})
			if out.Kind != tt.wantKind || out.Status != tt.wantStatus || out.RetryAfter != tt.wantAfter {
				t.Fatalf("Deliver = {%s %d %s %v}, want {%s %d %s}", out.Kind, out.Status, out.RetryAfter, out.Err, tt.wantKind, tt.wantStatus, tt.wantAfter)
			}
			if (out.Kind == Delivered) != (out.Err == nil) {
				t.Fatalf("Err = %v for kind %s", out.Err, out.Kind)
			}
			if tt.wantErr != "" && !strings.Contains(out.Err.Error(), tt.wantErr) {
				t.Fatalf("Err = %q, want it to mention %q", out.Err, tt.wantErr)
			}
			if n := len(rcv.requests()); n != 1 {
				t.Fatalf("receiver got %d requests, want exactly 1 (no retries or redirects inside Deliver)", n)
			}
		})
	}
}

func TestDeliverTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release) // before rcv.srv.Close runs in cleanup
	c := newTestClient(t, Options{Guard: Guard{AllowPrivate: true}, Timeout: 200 * time.Millisecond})
	out := c.Deliver(context.Background(), Request{URL: rcv.srv.URL, Secret: NewSecret(), MessageID: "slow"})
	if out.Kind != Retry || out.Status != 0 || out.Err == nil {
		t.Fatalf("Deliver to a hung receiver = %+v, want retry without status", out)
	}
	var te interface{ Timeout() bool }
	if !errors.As(out.Err, &te) || !te.Timeout() {
		t.Fatalf("Err = %v, want a timeout", out.Err)
	}
}

func TestDeliverConnectionRefusedIsRetried(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := newTestClient(t, Options{Guard: Guard{AllowPrivate: true}})
	if out := c.Deliver(context.Background(), Request{URL: url, Secret: NewSecret(), MessageID: "m"}); out.Kind != Retry || out.Err == nil {
		t.Fatalf("Deliver to a closed port = %+v, want retry", out)
	}
}

// The default guard refuses loopback callbacks, whether written as an IP
// (refused before any request) or as a hostname (refused at dial time),
// and the receiver never hears of them.
func TestDeliverDefaultGuardRefusesLoopback(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, status(200))
	c := newTestClient(t, Options{})
	hostURL := strings.Replace(rcv.srv.URL, "127.0.0.1", "localhost", 1)
	for _, u := range []string{rcv.srv.URL, hostURL} {
		out := c.Deliver(context.Background(), Request{URL: u, Secret: NewSecret(), MessageID: "m"})
		if out.Kind != Reject || !errors.Is(out.Err, ErrRefused) || !strings.Contains(out.Err.Error(), "loopback") {
			t.Errorf("Deliver(%s) with the default guard = %+v, want a loopback refusal", u, out)
		}
	}
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("receiver got %d requests through a refusing guard", n)
	}
}

func TestDeliverRejectsBadRequests(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, status(200))
	c := newTestClient(t, Options{Guard: Guard{AllowPrivate: true}})
	good := Request{URL: rcv.srv.URL, Secret: NewSecret(), MessageID: "m"}
	tests := []struct {
		desc   string
		mutate func(*Request)
		want   string
	}{
		{"reserved signature header", func(r *Request) { r.Headers = map[string]string{"Webhook-Signature": "v1,forged"} }, "set by the gateway"},
		{"host header", func(r *Request) { r.Headers = map[string]string{"host": "evil"} }, "set by the gateway"},
		{"header injection", func(r *Request) { r.Headers = map[string]string{"X-A": "a\r\nX-B: b"} }, "control characters"},
		{"bad header name", func(r *Request) { r.Headers = map[string]string{"X A": "a"} }, "not a valid HTTP field name"},
		{"no secret", func(r *Request) { r.Secret = "" }, "secret"},
		{"no message id", func(r *Request) { r.MessageID = "" }, "message id"},
		{"bad scheme", func(r *Request) { r.URL = "gopher://example.com" }, "scheme"},
	}
	for _, tt := range tests {
		req := good
		tt.mutate(&req)
		out := c.Deliver(context.Background(), req)
		if out.Kind != Reject || out.Err == nil || !strings.Contains(out.Err.Error(), tt.want) {
			t.Errorf("%s: Deliver = %+v, want reject mentioning %q", tt.desc, out, tt.want)
		}
	}
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("receiver got %d requests for invalid deliveries", n)
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[Kind]string{Delivered: "delivered", Retry: "retry", Gone: "gone", Reject: "reject", 0: "unknown(0)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}
