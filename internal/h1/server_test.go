package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer runs a fast-path Server whose Handler is fast, with a net/http
// server behind its hand-off answering "slow <method> <path> <body>".
func testServer(t *testing.T, fast Handler) (addr string, s *Server) {
	t.Helper()
	return testServerWith(t, fast, 5*time.Second, 5*time.Second)
}

// testServerWith is testServer with the given timeouts, for both servers.
func testServerWith(t *testing.T, fast Handler, idle, header time.Duration) (addr string, s *Server) {
	t.Helper()
	return startServers(t, fast, idle, header, (*Server).Serve)
}

// startServers runs a fast-path Server through serve (Serve or loops), a
// net/http server behind its hand-off, and stops both at the end.
func startServers(t testing.TB, fast Handler, idle, header time.Duration, serve func(*Server, net.Listener) error) (addr string, s *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hand := NewHandoff(ln.Addr())
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "slow %s %s %s", r.Method, r.URL.Path, b)
	}), IdleTimeout: idle, ReadHeaderTimeout: header}
	s = &Server{Handler: fast, Handoff: hand, IdleTimeout: idle, ReadHeaderTimeout: header}
	var wg sync.WaitGroup
	wg.Go(func() { _ = slow.Serve(hand) })
	wg.Go(func() {
		if err := serve(s, ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serving: %v", err)
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("fast shutdown: %v", err)
		}
		if err := slow.Shutdown(ctx); err != nil {
			t.Errorf("net/http shutdown: %v", err)
		}
		wg.Wait()
	})
	return ln.Addr().String(), s
}

// echo serves GETs and POSTs under /fast and hands off everything else.
func echo(w *ResponseWriter, r *Request, body io.Reader) bool {
	if !strings.HasPrefix(string(r.Path), "/fast") {
		return false
	}
	b, err := io.ReadAll(body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return true
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "fast %s %s %s", r.Method, r.Path, b)
	return true
}

// roundTrips writes raw on one connection and reads n responses.
func roundTrips(t *testing.T, addr, raw string, n int) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []string
	for range n {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d of %d: %v", len(out)+1, n, err)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(out)+1, err)
		}
		out = append(out, fmt.Sprintf("%d %s", res.StatusCode, b))
	}
	return out
}

func TestFastAndHandedOffRequests(t *testing.T) {
	addr, _ := testServer(t, echo)
	for _, tc := range []struct {
		name, raw string
		want      []string
	}{
		{"keep-alive and pipelined on the fast path",
			"GET /fast/a HTTP/1.1\r\nHost: x\r\n\r\nPOST /fast/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /fast/c HTTP/1.1\r\nHost: x\r\n\r\n",
			[]string{"200 fast GET /fast/a ", "200 fast POST /fast/b hello", "200 fast GET /fast/c "}},
		{"a chunked request goes to net/http with its bytes",
			"POST /fast/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			[]string{"200 slow POST /fast/a hello"}},
		{"the handler declines: net/http gets the request and the rest",
			"GET /fast/a HTTP/1.1\r\nHost: x\r\n\r\nPOST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /fast/b HTTP/1.1\r\nHost: x\r\n\r\n",
			[]string{"200 fast GET /fast/a ", "200 slow POST /other hi", "200 slow GET /fast/b "}},
		{"HTTP/1.0 goes to net/http",
			"GET /fast/a HTTP/1.0\r\nHost: x\r\n\r\n",
			[]string{"200 slow GET /fast/a "}},
		{"a body left unread is skipped",
			"POST /fast/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /fast/b HTTP/1.1\r\nHost: x\r\n\r\n",
			[]string{"200 fast POST /fast/a abc", "200 fast GET /fast/b "}},
		{"bad input is net/http's to refuse",
			"GET /fast/a HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
			[]string{"400 400 Bad Request: invalid header name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := roundTrips(t, addr, tc.raw, len(tc.want))
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Errorf("response %d = %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestHeadSplitAcrossReads(t *testing.T) {
	addr, _ := testServer(t, echo)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw := "POST /fast/split HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
	for i := range len(raw) { // a byte at a time: every split point
		if _, err := c.Write([]byte{raw[i]}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if string(b) != "fast POST /fast/split body" {
		t.Fatalf("body %q", b)
	}
}

func TestResponseFraming(t *testing.T) {
	big := strings.Repeat("x", smallBody+1)
	addr, _ := testServer(t, func(w *ResponseWriter, r *Request, _ io.Reader) bool {
		switch string(r.Path) {
		case "/small":
			io.WriteString(w, "small")
		case "/big":
			io.WriteString(w, big)
		case "/flushed":
			io.WriteString(w, "one ")
			w.Flush()
			io.WriteString(w, "two")
		case "/declared":
			w.Header().Set("Content-Length", "8")
			io.WriteString(w, "declared")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/split":
			w.Header().Set("X-Evil", "a\r\nInjected: yes")
			w.Header().Set("Connection", "close")
		}
		return true
	})
	for _, tc := range []struct {
		path, method string
		length       int64
		chunked      bool
		body         string
	}{
		{"/small", "GET", 5, false, "small"},
		{"/big", "GET", -1, true, big},
		{"/flushed", "GET", -1, true, "one two"},
		{"/declared", "GET", 8, false, "declared"},
		{"/empty", "GET", 0, false, ""},
		{"/small", "HEAD", 5, false, ""},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			chunked := len(res.TransferEncoding) > 0
			if res.ContentLength != tc.length || chunked != tc.chunked || string(b) != tc.body {
				t.Errorf("length %d chunked %v body %d bytes, want %d %v %d", res.ContentLength, chunked, len(b), tc.length, tc.chunked, len(tc.body))
			}
			if res.Header.Get("Date") == "" {
				t.Error("no Date header")
			}
		})
	}
	t.Run("no header injection, Connection: close honoured", func(t *testing.T) {
		got := roundTrips(t, addr, "GET /split HTTP/1.1\r\nHost: x\r\n\r\n", 1)
		if got[0] != "200 " {
			t.Fatalf("got %q", got)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /split HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		all, err := io.ReadAll(c) // ends: the server closed the connection
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(all), "Injected") || !strings.Contains(string(all), "Connection: close") {
			t.Fatalf("response:\n%s", all)
		}
	})
}

func TestShutdownClosesIdleAndWaitsForBusy(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	addr, s := testServer(t, func(w *ResponseWriter, r *Request, _ io.Reader) bool {
		if string(r.Path) == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
		return true
	})
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if got := roundTripOn(t, idle, "/idle"); got != "done" {
		t.Fatalf("idle connection: %q", got)
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection after shutdown: %v, want EOF", err)
	}
	select {
	case err := <-done:
		t.Fatalf("shutdown returned %v with a request in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	res, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Close {
		t.Error("the last response of a draining server should say Connection: close")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func roundTripOn(t *testing.T, c net.Conn, path string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// The idle timeout ends a keep-alive connection that waits for its next
// request, though requests before renewed it lazily: no sooner than the
// timeout after the last one, and not much later than 5/4 of it.
func TestIdleTimeoutClosesKeepAlive(t *testing.T) {
	const idle = 400 * time.Millisecond
	addr, _ := testServerWith(t, echo, idle, time.Second)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var last time.Time
	for i := range 5 { // requests within the timeout keep the connection
		if i > 0 {
			time.Sleep(idle / 4)
		}
		fmt.Fprint(c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		last = time.Now()
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	// The server's wait began just before the response arrived here.
	if waited := time.Since(last); waited < idle-50*time.Millisecond || waited > idle*5/4+300*time.Millisecond {
		t.Errorf("closed after %v idle, want %v to 5/4 of it", waited, idle)
	}
}

// A client that sends a head a byte at a time cannot keep a connection
// beyond the header timeout by dribbling.
func TestHeaderTimeoutNotExtendedByDribbling(t *testing.T) {
	const header = 300 * time.Millisecond
	addr, _ := testServerWith(t, echo, 5*time.Second, header)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	head := "GET /fast HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Dribble: y\r\n", 100)
	for i := 0; i < len(head); i++ {
		if _, err := c.Write([]byte{head[i]}); err != nil {
			break // cut off: what the test wants
		}
		time.Sleep(20 * time.Millisecond)
		if time.Since(start) > 5*time.Second {
			t.Fatal("still writing a head after 5s")
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c) // a 408 from net/http, or nothing; then the end
	// Both servers bound the head: the fast path, then net/http, which
	// the fast path hands the partial head to.
	if took := time.Since(start); took > 2*header+time.Second {
		t.Errorf("connection lasted %v with a dribbled head (%q), want about %v", took, b, 2*header)
	}
}

// A handler that breaks its own Content-Length: more bytes than declared
// never reach the client (they would read as a response of their own), and
// fewer end the connection so the client sees the body was cut.
func TestWriterHoldsToContentLength(t *testing.T) {
	addr, _ := testServer(t, func(w *ResponseWriter, r *Request, _ io.Reader) bool {
		w.Header().Set("Content-Length", "5")
		switch string(r.Path) {
		case "/over":
			if _, err := io.WriteString(w, "hello, and HTTP/1.1 200 OK smuggled"); err != http.ErrContentLength {
				t.Errorf("overflowing write: %v, want ErrContentLength", err)
			}
		case "/short":
			io.WriteString(w, "he")
		}
		return true
	})
	for path, want := range map[string]error{"/over": nil, "/short": io.ErrUnexpectedEOF} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n", path)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(path, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != want {
			t.Errorf("%s: body %q, %v; want %v", path, b, err, want)
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Errorf("%s: after the response: %q, want the connection's end", path, rest)
		}
		c.Close()
	}
}

// A handler that panics ends its connection, not the server.
func TestHandlerPanicEndsOnlyItsConnection(t *testing.T) {
	addr, _ := testServer(t, func(w *ResponseWriter, r *Request, body io.Reader) bool {
		if string(r.Path) == "/fast/panic" {
			panic(http.ErrAbortHandler) // quiet, as net/http treats it
		}
		return echo(w, r, body)
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET /fast/panic HTTP/1.1\r\nHost: x\r\n\r\n")
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("panicking handler: %q, %v; want the connection closed", b, err)
	}
	resp, err := http.Get("http://" + addr + "/fast/after")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if !strings.HasPrefix(string(b), "fast GET /fast/after") {
		t.Fatalf("after a panic: %q", b)
	}
}
