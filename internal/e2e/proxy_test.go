package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
)

// namedBackend answers "<name> <path>" and 200 on /health; it can be
// stopped and started again on the same address.
type namedBackend struct {
	name, addr string
	srv        *http.Server
}

func startNamedBackend(t *testing.T, name, addr string) *namedBackend {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &namedBackend{name: name, addr: ln.Addr().String()}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	})}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(b.stop)
	return b
}

func (b *namedBackend) stop() { _ = b.srv.Close() }

// Issue 5, must show 2: round-robin over two backends; with one killed,
// every request still answers 200; once it is back and healthy, it gets
// requests again.
func TestProxyRoundRobinSurvivesADeadBackend(t *testing.T) {
	a, b := startNamedBackend(t, "a", ""), startNamedBackend(t, "b", "")
	gw := gatewaytest.Start(t, fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: pets
    type: proxy
    listeners: [{type: http, paths: [/pets], entrypoints: [{type: http-proxy}]}]
    endpointGroups:
      - name: default
        type: http-proxy
        loadBalancer: {type: round-robin}
        sharedConfiguration: {healthCheck: {path: /health, interval: 100ms}, circuitBreaker: {cooldown: 300ms}}
        endpoints:
          - {name: a, configuration: {target: "http://%s"}}
          - {name: b, configuration: {target: "http://%s"}}
`, a.addr, b.addr))
	url := "http://" + gw.Addr() + "/pets/x"
	seen := func(n int) map[string]int {
		t.Helper()
		counts := map[string]int{}
		for range n {
			code, _, body := call(t, url)
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
			counts[strings.Fields(body)[0]]++
		}
		return counts
	}
	if c := seen(10); c["a"] != 5 || c["b"] != 5 {
		t.Fatalf("round-robin split %v, want 5 and 5", c)
	}
	b.stop()
	if c := seen(50); c["a"] != 50 {
		t.Fatalf("with b dead: %v, want every request answered by a", c)
	}
	startNamedBackend(t, "b", b.addr)
	deadline := time.Now().Add(10 * time.Second)
	for seen(4)["b"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("b never got requests again after it came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Issue 5, must show 3 (in part): a WebSocket echo works through the proxy.
func TestProxyWebSocketEcho(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(echo.Close)
	gw := gatewaytest.Start(t, proxyAPI(echo.URL, "{name: open, security: {type: keyless}}"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+gw.Addr()+"/petstore/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, m := range []string{"one", "two"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo: "+m {
			t.Fatalf("got %q %v", got, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// Issue 5, must show 7: dot segments, encoded dots and slashes and double
// slashes are normalized once, then matched and forwarded in that form:
// they never reach an API (and so a plan) or a backend path they do not
// name plainly.
func TestProxyPathTricks(t *testing.T) {
	pub, priv := echoBackend(t), echoBackend(t)
	gw := gatewaytest.Start(t, fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: public
    type: proxy
    listeners: [{type: http, paths: [/public], entrypoints: [{type: http-proxy}]}]
    endpointGroups: [{name: d, type: http-proxy, endpoints: [{name: p, configuration: {target: "%s/v1/public"}}]}]
    plans: [{name: open, security: {type: keyless}}]
  - id: admin
    type: proxy
    listeners: [{type: http, paths: [/admin], entrypoints: [{type: http-proxy}]}]
    endpointGroups: [{name: d, type: http-proxy, endpoints: [{name: a, configuration: {target: "%s/v1/admin"}}]}]
    plans: [{name: keys, security: {type: api-key}}]
`, pub.URL, priv.URL))
	base := "http://" + gw.Addr()
	for _, tc := range []struct {
		path string
		code int
		body string // the backend's view, when it is reached
	}{
		{"/public/a", 200, "/v1/public/a? xff=127.0.0.1"},
		{"/public/../admin/users", 401, ""},
		{"/public/%2e%2e/admin/users", 401, ""},
		{"/public/%2E%2E/%2E%2E/admin", 401, ""},
		{"/public%2F..%2Fadmin/users", 401, ""},
		{"//admin/users", 401, ""},
		{"/public//a//b", 200, "/v1/public/a/b? xff=127.0.0.1"},
		{"/public/a/../../../etc/passwd", 404, ""},
		{"/public/a/%2e%2e/%2e%2e/v1/admin", 404, ""},
	} {
		code, _, body := rawGet(t, base, tc.path)
		if code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}
}

// rawGet sends "GET <path>" exactly as written, on a connection of its
// own: HTTP clients clean paths or read "//x" as a host.
func rawGet(t *testing.T, base, path string) (int, string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// Issue 5, must show 3 (in part): a gRPC call over h2c works through the
// proxy, trailers (the call's status) included.
func TestProxyGRPCOverH2C(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("pets", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	gw := gatewaytest.Start(t, fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: grpc
    type: proxy
    listeners: [{type: http, paths: [/], entrypoints: [{type: http-proxy}]}]
    endpointGroups:
      - {name: d, type: http-proxy, endpoints: [{name: g, configuration: {target: "http://%s", http: {h2c: true}}}]}
`, ln.Addr()))
	conn, err := grpc.NewClient(gw.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "pets"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check through the proxy: %v %v", resp, err)
	}
	// An error status travels in the trailers: it must arrive as sent.
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown service through the proxy: %v, want NotFound from the backend's trailers", err)
	}
}

// A request body over the limit is answered 413, with or without a
// Content-Length, and the backend never sees it.
func TestProxyBodyLimit(t *testing.T) {
	var reached atomic.Int32
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if n > 1000 {
			reached.Add(1)
		}
		fmt.Fprintf(w, "%d bytes", n)
	}))
	t.Cleanup(be.Close)
	cfg := strings.Replace(proxyAPI(be.URL, "{name: open, security: {type: keyless}}"), "entrypoints: [{type: http-proxy}]",
		"entrypoints: [{type: http-proxy, configuration: {maxRequestBodySize: 1000}}]", 1)
	gw := gatewaytest.Start(t, cfg)
	url := "http://" + gw.Addr() + "/petstore/upload"
	post := func(body io.Reader) (int, string) {
		resp, err := http.Post(url, "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(strings.NewReader(strings.Repeat("x", 1000))); code != http.StatusOK || body != "1000 bytes" {
		t.Fatalf("at the limit: %d %s", code, body)
	}
	if code, _ := post(strings.NewReader(strings.Repeat("x", 1001))); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the limit with a Content-Length: %d, want 413", code)
	}
	// No Content-Length: the limit bites while the body streams.
	if code, _ := post(io.MultiReader(strings.NewReader(strings.Repeat("x", 5000)))); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the limit, chunked: %d, want 413", code)
	}
	if reached.Load() != 0 {
		t.Fatal("a body over the limit reached the backend whole")
	}
}
