package mediation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// serve runs api behind a real loopback HTTP server for the test.
func serve(t *testing.T, api http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv, srv.Client()
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, c *http.Client, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// checkProblem asserts an RFC 9457 answer with the given status.
func checkProblem(t *testing.T, resp *http.Response, body string, status int) mediation.Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p mediation.Problem
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("body %q is not a problem document: %v", body, err)
	}
	if p.Status != resp.StatusCode || p.Title == "" {
		t.Errorf("problem %+v: want status %d and a title", p, resp.StatusCode)
	}
	return p
}

// namedEntrypoint answers 200 with its name, so tests see which one served.
func namedEntrypoint(name string, rank int, accepts func(*http.Request) bool) mediation.Entrypoint {
	te := testEntrypoint{accepts: accepts, serve: func(w http.ResponseWriter, _ *http.Request, x *mediation.Exchange) {
		w.Header().Set("X-Entrypoint", name)
		w.Header().Set("X-Exchange", fmt.Sprintf("%s %s %s %s", x.APIID(), x.EntrypointType, x.QoS, x.RelativePath))
		w.WriteHeader(http.StatusOK)
	}}
	if rank == 0 {
		return &te
	}
	return &rankedEntrypoint{testEntrypoint: te, rank: rank}
}

func isGet(r *http.Request) bool { return r.Method == http.MethodGet }
func wantsSSE(r *http.Request) bool {
	return isGet(r) && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}
func isUpgrade(r *http.Request) bool {
	return isGet(r) && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}
func isPost(r *http.Request) bool { return r.Method == http.MethodPost }

// Entrypoints are asked in Rank order, whatever the configuration order;
// unranked ones come after the built-ins, equal ranks keep their order.
func TestAPISelectsEntrypointByRank(t *testing.T) {
	t.Parallel()
	api := mediation.NewAPI(mediation.APIOptions{
		ID: "orders",
		Entrypoints: []mediation.EntrypointBinding{
			{Type: "custom", Entrypoint: namedEntrypoint("custom", 0, nil)}, // takes anything
			{Type: "http-post", Entrypoint: namedEntrypoint("http-post", mediation.RankHTTPPost, isPost)},
			{Type: "http-get", Entrypoint: namedEntrypoint("http-get", mediation.RankHTTPGet, isGet), QoS: mediation.QoSAuto},
			{Type: "sse", Entrypoint: namedEntrypoint("sse", mediation.RankSSE, wantsSSE), QoS: mediation.QoSAtLeastOnce},
			{Type: "websocket", Entrypoint: namedEntrypoint("websocket", mediation.RankWebSocket, isUpgrade)},
			{Type: "twin-a", Entrypoint: namedEntrypoint("twin-a", 50, func(r *http.Request) bool { return r.Header.Get("X-Twin") != "" })},
			{Type: "twin-b", Entrypoint: namedEntrypoint("twin-b", 50, func(r *http.Request) bool { return r.Header.Get("X-Twin") != "" })},
		},
	})
	srv, c := serve(t, api)
	tests := []struct {
		desc   string
		method string
		header http.Header
		want   string
	}{
		{desc: "websocket upgrade wins over an SSE Accept", method: "GET", header: http.Header{"Upgrade": {"websocket"}, "Accept": {"text/event-stream"}}, want: "websocket"},
		{desc: "SSE before http-get", method: "GET", header: http.Header{"Accept": {"text/event-stream"}}, want: "sse"},
		{desc: "other GET to http-get", method: "GET", header: http.Header{"Accept": {"application/json"}}, want: "http-get"},
		{desc: "POST to http-post", method: "POST", want: "http-post"},
		{desc: "equal ranks keep configuration order", method: "PUT", header: http.Header{"X-Twin": {"1"}}, want: "twin-a"},
		{desc: "unranked entrypoint last", method: "PUT", want: "custom"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, c, tc.method, srv.URL+"/stream", tc.header)
			if got := resp.Header.Get("X-Entrypoint"); got != tc.want {
				t.Errorf("served by %q, want %q (status %d %s)", got, tc.want, resp.StatusCode, body)
			}
		})
	}
	t.Run("the exchange describes the request", func(t *testing.T) {
		t.Parallel()
		resp, _ := do(t, c, "GET", srv.URL+"/v1/stream", http.Header{"Accept": {"text/event-stream"}})
		if got, want := resp.Header.Get("X-Exchange"), "orders sse at-least-once /v1/stream"; got != want {
			t.Errorf("exchange %q, want %q", got, want)
		}
		rec := httptest.NewRecorder()
		api.ServeExchange(rec, httptest.NewRequest("GET", "/gw/orders/v1", nil), "/v1")
		if got, want := rec.Header().Get("X-Exchange"), "orders http-get auto /v1"; got != want {
			t.Errorf("ServeExchange: exchange %q, want %q", got, want)
		}
	})
}

// Requests no entrypoint takes get the most precise status, as a problem
// document.
func TestAPINoEntrypointAnswers(t *testing.T) {
	t.Parallel()
	sse := mediation.EntrypointBinding{Type: "sse", Entrypoint: namedEntrypoint("sse", mediation.RankSSE, wantsSSE)}
	get := mediation.EntrypointBinding{Type: "http-get", Entrypoint: namedEntrypoint("http-get", mediation.RankHTTPGet,
		func(r *http.Request) bool { return isGet(r) && strings.Contains(r.Header.Get("Accept"), "json") })}
	post := mediation.EntrypointBinding{Type: "http-post", Entrypoint: namedEntrypoint("http-post", mediation.RankHTTPPost,
		func(r *http.Request) bool {
			return isPost(r) && r.Header.Get("Content-Type") != "application/x-forbidden"
		})}
	ws := mediation.EntrypointBinding{Type: "websocket", Entrypoint: namedEntrypoint("websocket", mediation.RankWebSocket, isUpgrade)}
	tests := []struct {
		desc        string
		entrypoints []mediation.EntrypointBinding
		method      string
		header      http.Header
		status      int
		allow       []string // for 405: methods the Allow header must list
	}{
		{desc: "method no entrypoint takes", entrypoints: []mediation.EntrypointBinding{sse, get, post},
			method: "DELETE", status: http.StatusMethodNotAllowed, allow: []string{"GET", "POST"}},
		{desc: "POST on a subscribe-only API", entrypoints: []mediation.EntrypointBinding{sse, get},
			method: "POST", status: http.StatusMethodNotAllowed, allow: []string{"GET"}},
		{desc: "GET on a publish-only API", entrypoints: []mediation.EntrypointBinding{post},
			method: "GET", status: http.StatusMethodNotAllowed, allow: []string{"POST"}},
		{desc: "GET for a media type no entrypoint produces", entrypoints: []mediation.EntrypointBinding{sse, get},
			method: "GET", header: http.Header{"Accept": {"application/xml"}}, status: http.StatusNotAcceptable},
		{desc: "POST the http-post entrypoint refuses", entrypoints: []mediation.EntrypointBinding{post},
			method: "POST", header: http.Header{"Content-Type": {"application/x-forbidden"}}, status: http.StatusUnsupportedMediaType},
		// A websocket entrypoint takes GET (the handshake), so 405 would be
		// wrong; nothing here answers a plain GET.
		{desc: "plain GET on a websocket-only API", entrypoints: []mediation.EntrypointBinding{ws},
			method: "GET", status: http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			api := mediation.NewAPI(mediation.APIOptions{ID: "a", Entrypoints: tc.entrypoints})
			srv, c := serve(t, api)
			resp, body := do(t, c, tc.method, srv.URL+"/", tc.header)
			if got := resp.Header.Get("X-Entrypoint"); got != "" {
				t.Fatalf("entrypoint %s served the request", got)
			}
			checkProblem(t, resp, body, tc.status)
			if tc.allow != nil {
				allow := resp.Header.Get("Allow")
				for _, m := range tc.allow {
					if !strings.Contains(allow, m) {
						t.Errorf("Allow: %q, want it to list %s (RFC 9110 §15.5.6: a 405 MUST list the allowed methods)", allow, m)
					}
				}
			}
		})
	}
}

// requestPolicy runs a function in the request phase.
type requestPolicy func(x *mediation.Exchange, r *http.Request) error

func (f requestPolicy) OnRequest(_ context.Context, x *mediation.Exchange, r *http.Request) error {
	return f(x, r)
}

// responsePolicy sets a header in the response phase.
type responsePolicy struct{ name, value string }

func (p responsePolicy) OnResponse(_ context.Context, _ *mediation.Exchange, h http.Header) error {
	h.Set(p.name, p.value)
	return nil
}

// A request-phase policy answers the client itself with a Rejection; the
// entrypoint never sees the request.
func TestAPIRequestPhase(t *testing.T) {
	t.Parallel()
	limited := requestPolicy(func(_ *mediation.Exchange, r *http.Request) error {
		if r.Header.Get("X-Api-Key") == "" {
			return &mediation.Rejection{Status: http.StatusUnauthorized, Title: "Missing API key",
				Detail: "send X-Api-Key", Header: http.Header{"Www-Authenticate": {"ApiKey"}}}
		}
		if r.Header.Get("X-Api-Key") == "spent" {
			return fmt.Errorf("quota: %w", &mediation.Rejection{Status: http.StatusTooManyRequests,
				Title: "Too many requests", Header: http.Header{"Retry-After": {"3"}}})
		}
		if r.Header.Get("X-Api-Key") == "broken" {
			return errors.New("key store down")
		}
		return nil
	})
	api := mediation.NewAPI(mediation.APIOptions{
		ID: "a",
		Entrypoints: []mediation.EntrypointBinding{{Type: "http-get",
			Entrypoint: namedEntrypoint("http-get", mediation.RankHTTPGet, isGet)}},
		Flows: []mediation.Flow{
			{Name: "admin only", Selectors: []mediation.Selector{mediation.HTTPSelector{Path: "/admin"}}, Request: []mediation.Policy{limited}},
			{Name: "headers", Response: []mediation.Policy{responsePolicy{"X-Gateway", "sluice"}}},
		},
	})
	srv, c := serve(t, api)
	tests := []struct {
		desc       string
		path, key  string
		status     int
		wantHeader [2]string
	}{
		{desc: "rejection status and headers", path: "/admin", status: http.StatusUnauthorized, wantHeader: [2]string{"Www-Authenticate", "ApiKey"}},
		{desc: "wrapped rejection", path: "/admin/x", key: "spent", status: http.StatusTooManyRequests, wantHeader: [2]string{"Retry-After", "3"}},
		{desc: "other policy error", path: "/admin", key: "broken", status: http.StatusInternalServerError},
		{desc: "policy passes", path: "/admin", key: "good", status: http.StatusOK},
		{desc: "flow selector does not match", path: "/administrators", status: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.key != "" {
				h.Set("X-Api-Key", tc.key)
			}
			resp, body := do(t, c, "GET", srv.URL+tc.path, h)
			if tc.status == http.StatusOK {
				if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Entrypoint") != "http-get" {
					t.Errorf("status %d served by %q, want 200 from http-get", resp.StatusCode, resp.Header.Get("X-Entrypoint"))
				}
				if got := resp.Header.Get("X-Gateway"); got != "sluice" {
					t.Errorf("response policy header %q, want sluice", got)
				}
				return
			}
			if got := resp.Header.Get("X-Entrypoint"); got != "" {
				t.Errorf("entrypoint %s served a rejected request", got)
			}
			checkProblem(t, resp, body, tc.status)
			if k, v := tc.wantHeader[0], tc.wantHeader[1]; k != "" && resp.Header.Get(k) != v {
				t.Errorf("%s: %q, want %q", k, resp.Header.Get(k), v)
			}
		})
	}
}

// Attributes carry values from request policies to the entrypoint and later
// policies of the same exchange.
func TestAPIExchangeAttributes(t *testing.T) {
	t.Parallel()
	setUser := requestPolicy(func(x *mediation.Exchange, _ *http.Request) error {
		x.Attributes["user"] = "ada"
		return nil
	})
	api := mediation.NewAPI(mediation.APIOptions{
		ID: "a",
		Entrypoints: []mediation.EntrypointBinding{{Type: "http-get", Entrypoint: &testEntrypoint{
			serve: func(w http.ResponseWriter, _ *http.Request, x *mediation.Exchange) {
				fmt.Fprint(w, x.Attributes["user"])
			}}}},
		Flows: []mediation.Flow{{Request: []mediation.Policy{setUser}}},
	})
	rec := httptest.NewRecorder()
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("a request policy setting an attribute panicked the request: %v", p)
			}
		}()
		api.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	}()
	if got := rec.Body.String(); got != "ada" {
		t.Errorf("the entrypoint saw attribute %q, want ada", got)
	}
}

// Drain ends open streams with ErrDraining so that entrypoints say goodbye,
// waits for them, and refuses new requests with 503.
func TestAPIDrain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		start mediation.StartKind
	}{
		{desc: "own stream", start: mediation.StartEarliest},
		{desc: "shared stream", start: mediation.StartLatest},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ep := newFakeEndpoint(1, tc.start)
			ready := make(chan struct{}, 1)
			sse := &testEntrypoint{serve: func(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
				s, err := x.Subscribe(r.Context(), mediation.StreamRequest{})
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				defer s.Close()
				w.Header().Set("Content-Type", "text/event-stream")
				rc := http.NewResponseController(w)
				_ = rc.Flush() // the client sees the headers before any message
				for {
					m, err := s.Next(r.Context())
					if errors.Is(err, mediation.ErrDraining) {
						select {
						case <-x.Draining():
						default:
							fmt.Fprint(w, "draining error before Draining() closed\n")
						}
						fmt.Fprint(w, "event: goaway\n\n")
						return
					}
					if err != nil {
						fmt.Fprintf(w, "error: %v\n", err)
						return
					}
					fmt.Fprintf(w, "data: %s\n\n", m.Content)
					_ = rc.Flush()
					m.Ack()
					ready <- struct{}{}
				}
			}}
			api := mediation.NewAPI(mediation.APIOptions{
				ID: "a", Endpoint: ep,
				Entrypoints: []mediation.EntrypointBinding{{Type: "sse", Entrypoint: sse, QoS: mediation.QoSNone}},
			})
			srv, c := serve(t, api)
			t.Cleanup(func() { _ = api.Close(context.Background()) })

			resp, err := c.Get(srv.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			eventually(t, "the client subscribed", func() bool { return ep.subscribeCount() == 1 })
			ep.append(0, "hello")
			<-ready

			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			if err := api.Drain(ctx); err != nil {
				t.Fatalf("Drain: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if want := "data: hello\n\nevent: goaway\n\n"; string(body) != want {
				t.Errorf("the stream ended with %q, want %q", body, want)
			}
			if !ep.sub(t, 0).isClosed() {
				t.Error("the drained stream's subscription is still open")
			}

			resp2, body2 := do(t, c, "GET", srv.URL+"/", nil)
			checkProblem(t, resp2, body2, http.StatusServiceUnavailable)
			if resp2.Header.Get("Retry-After") == "" {
				t.Error("503 while draining has no Retry-After")
			}
			if n := ep.subscribeCount(); n != 1 {
				t.Errorf("a request after Drain opened a subscription (%d in all)", n)
			}
		})
	}
}

// Drain gives up when ctx ends before an exchange that ignores it returns.
func TestAPIDrainHonoursDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{})
	stuck := &testEntrypoint{serve: func(http.ResponseWriter, *http.Request, *mediation.Exchange) {
		close(entered)
		<-release
	}}
	api := mediation.NewAPI(mediation.APIOptions{ID: "a",
		Entrypoints: []mediation.EntrypointBinding{{Type: "custom", Entrypoint: stuck}}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := api.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain = %v, want context.DeadlineExceeded while an exchange is still open", err)
	}
	close(release)
	<-done
	if err := api.Drain(context.Background()); err != nil {
		t.Errorf("second Drain = %v, want nil once the exchange returned", err)
	}
}

// An exchange held past Serve keeps Drain waiting until it is released.
func TestAPIDrainWaitsForHeldExchanges(t *testing.T) {
	t.Parallel()
	var held *mediation.Exchange
	ep := &testEntrypoint{serve: func(_ http.ResponseWriter, _ *http.Request, x *mediation.Exchange) {
		x.Hold()
		held = x
	}}
	api := mediation.NewAPI(mediation.APIOptions{ID: "a",
		Entrypoints: []mediation.EntrypointBinding{{Type: "custom", Entrypoint: ep}}})
	api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := api.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v with an exchange held, want it to wait", err)
	}
	held.Release()
	if err := api.Drain(context.Background()); err != nil {
		t.Fatalf("Drain = %v after Release", err)
	}
}
