package httppost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/entrypoints/internal/memtest"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func binding(t *testing.T, cfg Config) mediation.EntrypointBinding {
	t.Helper()
	ep, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mediation.EntrypointBinding{Type: "http-post", Entrypoint: ep, QoS: mediation.QoSAtLeastOnce}
}

func serve(t *testing.T, cfg Config, o memtest.Options) *memtest.Server {
	t.Helper()
	return memtest.Serve(t, memtest.New(o), binding(t, cfg))
}

// post sends body; chunked hides the length so that only reading finds it.
func post(t *testing.T, srv *memtest.Server, body string, header http.Header, chunked bool) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), memtest.WaitTimeout)
	defer cancel()
	var r io.Reader = strings.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // not a *strings.Reader: the client cannot know the length
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/orders", r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestPublishWithHeaders(t *testing.T) {
	t.Parallel()
	header := http.Header{
		"Content-Type":  {"application/json"},
		"X-Order":       {"42", "43"},
		"X-Hop":         {"dropped: named by Connection"},
		"Connection":    {"X-Hop"},
		"Authorization": {"Bearer secret"},
		"X-Api-Key":     {"secret"},
		"Cookie":        {"session=secret"},
	}
	tests := []struct {
		desc    string
		copyAll bool
		want    mediation.Headers
	}{
		{desc: "content-type only by default", want: mediation.Headers{"content-type": {"application/json"}}},
		{desc: "request headers copied", copyAll: true, want: mediation.Headers{
			"content-type": {"application/json"}, "x-order": {"42", "43"},
			"accept-encoding": {"gzip"}, "user-agent": {"Go-http-client/1.1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, Config{RequestHeadersToMessage: tt.copyAll, MaxContentLength: 1 << 20}, memtest.Options{})
			resp, body := post(t, srv, `{"order":42}`, header, false)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			log := srv.Endpoint.State().Log
			if len(log) != 1 || string(log[0].Content) != `{"order":42}` {
				t.Fatalf("stored %d messages, first %q", len(log), log[0].Content)
			}
			got, _ := json.Marshal(log[0].Headers)
			want, _ := json.Marshal(tt.want)
			if string(got) != string(want) {
				t.Fatalf("message headers %s, want %s", got, want)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	srv := serve(t, Config{MaxContentLength: 10}, memtest.Options{})
	tests := []struct {
		desc    string
		body    string
		chunked bool
		status  int
	}{
		{desc: "at the limit", body: "0123456789", status: 202},
		{desc: "at the limit, chunked", body: "0123456789", chunked: true, status: 202},
		{desc: "empty body is a message", body: "", status: 202},
		{desc: "over, by Content-Length", body: "0123456789X", status: 413},
		{desc: "over, found while reading", body: strings.Repeat("X", 5000), chunked: true, status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			resp, body := post(t, srv, tt.body, nil, tt.chunked)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == 413 && (resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), "10 bytes")) {
				t.Fatalf("413 does not say the limit: %s", body)
			}
		})
	}
	t.Cleanup(func() {
		for _, m := range srv.Endpoint.State().Log {
			if len(m.Content) > 10 {
				t.Errorf("a message of %d bytes was published past the limit", len(m.Content))
			}
		}
	})
}

func TestUnavailableIs503(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{})
	srv.Endpoint.SetUnavailable(true)
	resp, body := post(t, srv, "x", nil, false)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n := len(srv.Endpoint.State().Log); n != 0 {
		t.Fatalf("%d messages stored by an unavailable broker", n)
	}
	srv.Endpoint.SetUnavailable(false)
	if resp, _ := post(t, srv, "x", nil, false); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d once the broker is back", resp.StatusCode)
	}
}

// failPolicy fails every published message with err.
type failPolicy struct{ err error }

func (p failPolicy) OnMessage(context.Context, *mediation.Exchange, *mediation.Message) (*mediation.Message, error) {
	return nil, p.err
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		opts   memtest.Options
		err    error
		status int
	}{
		{desc: "endpoint cannot publish", opts: memtest.Options{NoPublish: true}, status: http.StatusNotImplemented},
		{desc: "policy rejection keeps its status", err: &mediation.Rejection{Status: http.StatusTooManyRequests, Title: "Slow down"}, status: http.StatusTooManyRequests},
		{desc: "broker too slow", err: fmt.Errorf("confirm: %w", context.DeadlineExceeded), status: http.StatusGatewayTimeout},
		{desc: "broker refused", err: errors.New("record too large"), status: http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			o := mediation.APIOptions{Entrypoints: []mediation.EntrypointBinding{binding(t, DefaultConfig())}}
			if tt.err != nil {
				o.Flows = []mediation.Flow{{Name: "fail", Publish: []mediation.Policy{failPolicy{tt.err}}}}
			}
			srv := memtest.ServeAPI(t, memtest.New(tt.opts), o)
			resp, body := post(t, srv, "x", nil, false)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %s, want %d problem+json: %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, body)
			}
			var p mediation.Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Title == "" {
				t.Fatalf("problem %s: %v", body, err)
			}
		})
	}
}

func TestAccepts(t *testing.T) {
	t.Parallel()
	e, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for method, want := range map[string]bool{"POST": true, "GET": false, "PUT": false} {
		r, _ := http.NewRequest(method, "http://gw/orders", nil)
		if got := e.Accepts(r); got != want {
			t.Errorf("Accepts(%s) = %v, want %v", method, got, want)
		}
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	p, ok := plugins.Default.Entrypoint("http-post")
	if !ok {
		t.Fatal("http-post is not registered")
	}
	if c := p.Config().(*Config); c.MaxContentLength != 1<<20 || c.RequestHeadersToMessage {
		t.Fatalf("defaults %+v", c)
	}
	for _, bad := range []int64{0, -1, maxContentLength + 1} {
		_, err := p.New(plugins.Context{}, &Config{MaxContentLength: bad})
		var fe *plugins.FieldError
		if !errors.As(err, &fe) || fe.Field != "maxContentLength" {
			t.Errorf("maxContentLength %d: error %v", bad, err)
		}
	}
}
