package httpproxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	endpoint "github.com/sluicegw/sluice/endpoints/httpproxy"
	"github.com/sluicegw/sluice/entrypoints/httpproxy"
	"github.com/sluicegw/sluice/internal/h1"
	"github.com/sluicegw/sluice/mediation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend answers with what it saw, and says which backend it is.
func backend(t *testing.T, name string) *httptest.Server {
	return streamingBackend(t, name, nil)
}

// streamingBackend is backend whose /base/events writes the events after
// the first only once firstEventSeen is closed.
func streamingBackend(t *testing.T, name string, firstEventSeen chan struct{}) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/base/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: 0\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-firstEventSeen:
				fmt.Fprint(w, "data: 1\n\ndata: 2\n\n")
			case <-time.After(10 * time.Second):
				fmt.Fprint(w, "data: late\n\n") // the proxy held event 0 back
			}
			return
		}
		fmt.Fprintf(w, "%s %s?%s xff=%s host=%s conn=%q", name, r.URL.Path, r.URL.RawQuery,
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("Connection"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fronts are the two ways requests reach the entrypoint: net/http's server
// (ReverseProxy), and the fast path's (internal/h1, the lean client).
var fronts = []string{"net/http", "fast"}

// eachFront runs test once per front.
func eachFront(t *testing.T, test func(t *testing.T, front string)) {
	for _, f := range fronts {
		t.Run(strings.ReplaceAll(f, "/", ""), func(t *testing.T) { test(t, f) })
	}
}

// gateway mounts a proxy API at /petstore in front of the backends and
// returns its base URL.
func gateway(t *testing.T, front string, targets ...string) string {
	return gatewayWith(t, front, httpproxy.DefaultConfig(), targets...)
}

func gatewayWith(t *testing.T, front string, cfg httpproxy.Config, targets ...string) string {
	return gatewayWithEndpoints(t, front, cfg, nil, nil, targets...)
}

// gatewayWithEndpoints is gatewayWith whose endpoints' configuration
// tune changes first, with flows on the API.
func gatewayWithEndpoints(t *testing.T, front string, cfg httpproxy.Config, tune func(*endpoint.Config), flows []mediation.Flow, targets ...string) string {
	var group []mediation.Endpoint
	for _, tgt := range targets {
		cfg := endpoint.DefaultConfig()
		cfg.Target, cfg.HTTP.ConnectTimeout = tgt, time.Second
		if tune != nil {
			tune(&cfg)
		}
		e, err := endpoint.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		group = append(group, e)
	}
	api := mediation.NewAPI(mediation.APIOptions{
		ID: "petstore", Endpoint: group[0], Group: group, Flows: flows,
		Entrypoints: []mediation.EntrypointBinding{{Type: "http-proxy", Entrypoint: entrypoint(t, cfg)}},
	})
	t.Cleanup(func() { _ = api.Close(context.Background()) })
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeExchange(w, r, strings.TrimPrefix(r.URL.Path, "/petstore"))
	})
	if front == "net/http" {
		srv := httptest.NewServer(slow)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	return fastFront(t, api, slow)
}

// fastFront serves api through the fast path, with slow behind its hand-off.
func fastFront(t *testing.T, api *mediation.API, slow http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handoff := h1.NewHandoff(ln.Addr())
	fast := &h1.Server{Handoff: handoff, Handler: func(w *h1.ResponseWriter, r *h1.Request, body io.Reader) bool {
		p, err := url.PathUnescape(string(r.Path))
		if err != nil {
			return false
		}
		api.ServeExchange(w, r.HTTPRequest(p, body), strings.TrimPrefix(p, "/petstore"))
		return true
	}}
	srv := &http.Server{Handler: slow}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(handoff) })
	wg.Go(func() { _ = fast.Serve(ln) })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = fast.Shutdown(ctx)
		_ = srv.Shutdown(ctx)
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string, h http.Header) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestRewriteQueryAndForwardedHeaders(t *testing.T) {
	eachFront(t, testRewriteQueryAndForwardedHeaders)
}

func testRewriteQueryAndForwardedHeaders(t *testing.T, front string) {
	a := backend(t, "a")
	gw := gateway(t, front, a.URL+"/base")
	got := get(t, gw+"/petstore/pets/1?x=1&y=2", http.Header{
		"X-Forwarded-For": {"6.6.6.6"}, // a client's claim is not trusted
		"Connection":      {"keep-alive, X-Secret"},
		"X-Secret":        {"hop-by-hop"},
	})
	want := "a /base/pets/1?x=1&y=2 xff=127.0.0.1 host=" + strings.TrimPrefix(gw, "http://")
	if !strings.HasPrefix(got, want) {
		t.Fatalf("backend saw %q, want prefix %q", got, want)
	}
}

func TestRoundRobin(t *testing.T) { eachFront(t, testRoundRobin) }

func testRoundRobin(t *testing.T, front string) {
	a, b := backend(t, "a"), backend(t, "b")
	gw := gateway(t, front, a.URL+"/base", b.URL+"/base")
	seen := map[string]int{}
	for range 10 {
		seen[strings.Fields(get(t, gw+"/petstore/x", nil))[0]]++
	}
	if seen["a"] != 5 || seen["b"] != 5 {
		t.Fatalf("requests per backend %v, want 5 and 5", seen)
	}
}

func TestStreamsEventByEvent(t *testing.T) { eachFront(t, testStreamsEventByEvent) }

func testStreamsEventByEvent(t *testing.T, front string) {
	firstEventSeen := make(chan struct{})
	gw := gateway(t, front, streamingBackend(t, "a", firstEventSeen).URL+"/base")
	resp, err := http.Get(gw + "/petstore/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	// The first event arrives while the backend holds the rest back.
	line, err := r.ReadString('\n')
	if err != nil || line != "data: 0\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(firstEventSeen)
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), "data: 2") || strings.Contains(string(rest), "late") {
		t.Fatalf("rest of stream %q", rest)
	}
}

func TestBackendDownIs502(t *testing.T) { eachFront(t, testBackendDownIs502) }

func testBackendDownIs502(t *testing.T, front string) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	gw := gateway(t, front, url)
	resp, err := http.Get(gw + "/petstore/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func entrypoint(t *testing.T, cfg httpproxy.Config) *httpproxy.Entrypoint {
	e, err := httpproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Forwarding headers from a trusted proxy in front are kept and extended.
func TestTrustedProxyForwardedHeaders(t *testing.T) { eachFront(t, testTrustedProxyForwardedHeaders) }

func testTrustedProxyForwardedHeaders(t *testing.T, front string) {
	a := backend(t, "a")
	cfg := httpproxy.DefaultConfig()
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	gw := gatewayWith(t, front, cfg, a.URL+"/base")
	got := get(t, gw+"/petstore/pets", http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Host": {"api.example.com"}})
	if want := "a /base/pets? xff=203.0.113.9, 127.0.0.1 host=api.example.com"; !strings.HasPrefix(got, want) {
		t.Fatalf("backend saw %q, want prefix %q", got, want)
	}
	cfg.TrustedProxies = []string{"not an address"}
	if _, err := httpproxy.New(cfg); err == nil {
		t.Fatal("a bad trustedProxies entry was accepted")
	}
}

// A client that leaves a quiet stream (a backend SSE between events) frees
// the backend's request too, on both fronts: the backend sees its request
// end, instead of holding it until its next event.
func TestClientLeavingQuietStreamEndsBackendRequest(t *testing.T) {
	eachFront(t, testClientLeavingQuietStreamEndsBackendRequest)
}

func testClientLeavingQuietStreamEndsBackendRequest(t *testing.T, front string) {
	ended := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: 0\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done(): // the proxy closed its request
			close(ended)
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	gw := gateway(t, front, srv.URL)

	c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET /petstore/events HTTP/1.1\r\nHost: gw\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "data: 0\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	c.Close()
	select {
	case <-ended:
	case <-time.After(3 * time.Second):
		t.Fatal("the backend's request outlived the client by 3 s")
	}
}
