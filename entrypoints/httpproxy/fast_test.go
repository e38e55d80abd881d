package httpproxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	endpoint "github.com/sluicegw/sluice/endpoints/httpproxy"
	"github.com/sluicegw/sluice/entrypoints/httpproxy"
	"github.com/sluicegw/sluice/mediation"
)

// rawBackend answers every request on a connection with the bytes respond
// returns for its path, and closes the connection when close says so. It
// counts the connections it accepted.
func rawBackend(t *testing.T, respond func(req *http.Request, body []byte) (raw string, close bool)) (url string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int32)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(req.Body)
					raw, closeAfter := respond(req, body)
					if req.Method == http.MethodHead { // the head only, as a server must
						raw = raw[:strings.Index(raw, "\r\n\r\n")+4]
					}
					if _, err := io.WriteString(c, raw); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String(), conns
}

// The lean client's framing: every way a backend can end a body reaches
// the client intact, and the connection is reused when it can be.
func TestFastPathResponseFraming(t *testing.T) {
	backendURL, conns := rawBackend(t, func(req *http.Request, body []byte) (string, bool) {
		switch req.URL.Path {
		case "/length":
			return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Kept: yes\r\nKeep-Alive: timeout=5\r\n\r\nhello", false
		case "/chunked":
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n", false
		case "/until-close":
			return "HTTP/1.1 200 OK\r\n\r\nuntil the end", true
		case "/empty":
			return "HTTP/1.1 204 No Content\r\n\r\n", false
		case "/close":
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", true
		case "/echo":
			return fmt.Sprintf("HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s", len(body), body), false
		}
		return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false
	})
	gw := gateway(t, "fast", backendURL)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for _, tc := range []struct {
		method, path, body, want string
		status                   int
	}{
		{"GET", "/length", "", "hello", 200},
		{"GET", "/chunked", "", "abcdefg", 200},
		{"GET", "/until-close", "", "until the end", 200},
		{"GET", "/empty", "", "", 204},
		{"GET", "/close", "", "ok", 200},
		{"POST", "/echo", strings.Repeat("b", 100_000), strings.Repeat("b", 100_000), 201},
		{"HEAD", "/length", "", "", 200},
		{"GET", "/length", "", "hello", 200},
	} {
		req, _ := http.NewRequest(tc.method, gw+"/petstore"+tc.path, strings.NewReader(tc.body))
		if tc.body == "" {
			req.Body = nil
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || string(b) != tc.want {
			t.Fatalf("%s %s: %d %q (%v), want %d %q", tc.method, tc.path, resp.StatusCode, b, err, tc.status, tc.want)
		}
		if resp.Header.Get("Keep-Alive") != "" {
			t.Errorf("%s: the backend's hop-by-hop Keep-Alive reached the client", tc.path)
		}
		if tc.path == "/chunked" && resp.Trailer.Get("X-Trailer") != "t" {
			t.Errorf("trailer lost: %v", resp.Trailer)
		}
	}
	// Eight requests; /until-close, /close and the HEAD-less rest: the
	// backend saw a new connection only after each one it closed.
	if n := conns.Load(); n != 3 {
		t.Errorf("backend connections: %d, want 3 (one, then one after each close)", n)
	}
}

// A backend that closes idle keep-alive connections: the next request on a
// stale pooled connection is resent on a new one, not answered 502.
func TestFastPathRetriesStaleConnection(t *testing.T) {
	var requests atomic.Int32
	backendURL, conns := rawBackend(t, func(*http.Request, []byte) (string, bool) {
		requests.Add(1)
		// keep-alive advertised, then closed: the proxy finds out only on
		// its next request
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true
	})
	gw := gateway(t, "fast", backendURL)
	for i := range 5 {
		if got := get(t, gw+"/petstore/x", nil); got != "ok" {
			t.Fatalf("request %d: %q", i, got)
		}
		time.Sleep(10 * time.Millisecond) // let the close arrive
	}
	if requests.Load() != 5 || conns.Load() != 5 {
		t.Fatalf("backend saw %d requests on %d connections, want 5 on 5", requests.Load(), conns.Load())
	}
}

// A backend that answers garbage is a 502 with a problem, and the next
// request works.
func TestFastPathBadBackendResponse(t *testing.T) {
	backendURL, _ := rawBackend(t, func(req *http.Request, _ []byte) (string, bool) {
		if req.URL.Path == "/bad" {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", true
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	gw := gateway(t, "fast", backendURL)
	resp, err := http.Get(gw + "/petstore/bad")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("bad backend response: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := get(t, gw+"/petstore/good", nil); got != "ok" {
		t.Fatalf("after a bad response: %q", got)
	}
}

// A backend that dies in the middle of a body: the client's connection
// ends too, so the client sees the body was cut (and a keep-alive client
// does not wait for bytes that never come). The same when a response
// policy makes the fast front go through ReverseProxy.
func TestFastPathTruncatedBodyCutsClient(t *testing.T) {
	for _, flows := range [][]mediation.Flow{nil, {{Response: []mediation.Policy{stampResponse{}}}}} {
		t.Run(fmt.Sprintf("response policies %d", len(flows)), func(t *testing.T) {
			testTruncatedBodyCutsClient(t, flows)
		})
	}
}

// stampResponse is a response policy: it adds a header.
type stampResponse struct{}

func (stampResponse) OnResponse(_ context.Context, _ *mediation.Exchange, h http.Header) error {
	h.Set("X-Stamp", "1")
	return nil
}

func testTruncatedBodyCutsClient(t *testing.T, flows []mediation.Flow) {
	backendURL, _ := rawBackend(t, func(*http.Request, []byte) (string, bool) {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nonly ten b\r\n", true
	})
	gw := gatewayWithEndpoints(t, "fast", httpproxy.DefaultConfig(), nil, flows, backendURL)
	c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET /petstore/x HTTP/1.1\r\nHost: gw\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(b) != "only ten b" {
		t.Fatalf("read %q, %v; want the 10 bytes, then the connection's end", b, err)
	}
}

// A backend that refuses an upload before reading it and closes: the
// client gets the backend's answer, not a 502 for the broken write.
func TestFastPathEarlyAnswerToUpload(t *testing.T) {
	backendURL := afterOneHead(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!")
		_, _ = io.CopyN(io.Discard, br, 64<<10) // a little, as servers do, then the close
	})
	gw := gateway(t, "fast", backendURL)

	c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	const size = 4 << 20
	go func() {
		fmt.Fprintf(c, "POST /petstore/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n", size)
		_, _ = c.Write(make([]byte, size)) // fails once the gateway gives up: fine
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(b) != "too big!" {
		t.Fatalf("got %d %q, want the backend's 413", resp.StatusCode, b)
	}
}

// A backend that stops reading an upload and never answers: the gateway
// gives up after its read timeout (502) instead of holding the client and
// the connection for good.
func TestFastPathBackendStopsReadingUpload(t *testing.T) {
	release := make(chan struct{})
	backendURL := afterOneHead(t, func(net.Conn, *bufio.Reader) {
		<-release // reads nothing more, answers nothing
	})
	t.Cleanup(func() { close(release) }) // before afterOneHead's, which waits for the backend
	const readTimeout = 300 * time.Millisecond
	gw := gatewayWithReadTimeout(t, readTimeout, backendURL)

	c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	const size = 8 << 20 // well past what the socket buffers hold
	start := time.Now()
	go func() {
		fmt.Fprintf(c, "POST /petstore/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n", size)
		_, _ = c.Write(make([]byte, size))
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %d, want 502", resp.StatusCode)
	}
	if took := time.Since(start); took > 4*readTimeout+time.Second {
		t.Errorf("gave up after %v, want about 2 × %v", took, readTimeout)
	}
}

// A client that uploads for longer than the read timeout, to a backend
// that answers as soon as it has the body: the answer reaches the client.
// The timeout counts from the request's end, not from its start.
func TestFastPathSlowUploadWithinReadTimeout(t *testing.T) {
	backendURL, _ := rawBackend(t, func(_ *http.Request, body []byte) (string, bool) {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body), false
	})
	const readTimeout = 300 * time.Millisecond
	gw := gatewayWithReadTimeout(t, readTimeout, backendURL)
	c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	const body = "0123456789"
	fmt.Fprintf(c, "POST /petstore/slow HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n", len(body))
	for i := range len(body) { // a second in all: three times the read timeout
		time.Sleep(readTimeout / 3)
		if _, err := c.Write([]byte{body[i]}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != body {
		t.Fatalf("got %d %q, want 200 with the body echoed", resp.StatusCode, b)
	}
}

// afterOneHead is a backend that accepts one connection, reads one request
// head and leaves the rest to then.
func afterOneHead(t *testing.T, then func(c net.Conn, br *bufio.Reader)) (url string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		then(c, br)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String()
}

// gatewayWithReadTimeout is the fast front over target with the backend
// read timeout d.
func gatewayWithReadTimeout(t *testing.T, d time.Duration, target string) string {
	return gatewayWithEndpoints(t, "fast", httpproxy.DefaultConfig(), func(c *endpoint.Config) {
		c.HTTP.ReadTimeout = d
	}, nil, target)
}
