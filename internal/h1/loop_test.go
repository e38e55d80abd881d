//go:build linux

package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loopServer runs ServeLoops (2 loops) with handler, a net/http server
// behind the hand-off answering "slow <method> <path> <body>".
func loopServer(t testing.TB, handler Handler) string {
	t.Helper()
	t.Cleanup(func() { allForwardsDone(t) }) // runs after the servers' shutdown
	addr, _ := startServers(t, handler, 5*time.Second, 5*time.Second, func(s *Server, ln net.Listener) error { return s.ServeLoops(ln, 2) })
	return addr
}

// sendRaw connects to addr and writes text; the connection closes with
// the test.
func sendRaw(t *testing.T, addr, text string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
	return c
}

// oneLoop runs s on one loop, for tests that shut it down themselves;
// served yields ServeLoops' result.
func oneLoop(t *testing.T, s *Server) (addr string, served <-chan error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeLoops(ln, 1) }()
	return ln.Addr().String(), done
}

// testForward forwards to pools in turn, one attempt each: the request
// line and Host, the body's length, nothing else.
type testForward struct {
	pools   []*Pool
	r       *Request // valid while the loop holds the request
	method  string
	target  string
	length  int64
	rt      time.Duration
	attempt int
	errs    []error
	done    bool
}

func (f *testForward) Next(bw *bufio.Writer, prev error, _ Progress) (*Pool, time.Duration, bool) {
	if prev != nil {
		f.errs = append(f.errs, prev)
	}
	if f.attempt == len(f.pools) {
		return nil, 0, false
	}
	p := f.pools[f.attempt]
	f.attempt++
	fmt.Fprintf(bw, "%s %s HTTP/1.1\r\nHost: backend\r\n", f.method, f.target)
	if f.length > 0 {
		fmt.Fprintf(bw, "Content-Length: %d\r\n", f.length)
	}
	bw.WriteString("\r\n")
	return p, f.rt, true
}

func (f *testForward) WriteHead(bw *bufio.Writer, resp *Response, kind BodyKind, closing bool) {
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", resp.Status, resp.Reason)
	for _, h := range resp.Headers {
		if equalFoldASCII(h.Name, "Transfer-Encoding") || equalFoldASCII(h.Name, "Connection") {
			continue
		}
		fmt.Fprintf(bw, "%s: %s\r\n", h.Name, h.Value)
	}
	if kind == BodyChunked || kind == BodyUntilClose {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if closing {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

func (f *testForward) Fail(w *ResponseWriter, err error) {
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprintf(w, "failed after %d attempts: %v", f.attempt, err)
}

func (f *testForward) Done() {
	if f.done {
		panic("Forward.Done called twice")
	}
	f.done = true
	forwardsOpen.Add(-1)
}

// forwardsOpen counts testForwards not Done yet (the loop tests run one
// at a time).
var forwardsOpen atomic.Int64

// allForwardsDone fails t unless every forwarded exchange was Done.
func allForwardsDone(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); forwardsOpen.Load() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d forwarded exchanges never Done", forwardsOpen.Load())
		}
	}
}

// forwardTo is a handler that forwards /fwd... requests to the pools and
// hands off the rest.
func forwardTo(rt time.Duration, pools ...*Pool) Handler {
	return func(w *ResponseWriter, r *Request, _ io.Reader) bool {
		if !bytes.HasPrefix(r.Path, []byte("/fwd")) || !w.OnLoop() {
			return false
		}
		forwardsOpen.Add(1)
		w.Forward(&testForward{pools: pools, method: r.Method, target: string(r.Target), length: max(r.ContentLength, 0), rt: rt})
		return true
	}
}

// countingBackend is a net/http backend that counts its connections.
func countingBackend(t testing.TB, h http.HandlerFunc) (*Pool, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	srv := &http.Server{Handler: h, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	p := NewPool(PoolConfig{Addr: ln.Addr().String(), ConnectTimeout: time.Second})
	t.Cleanup(func() {
		p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Close()
		_ = srv.Shutdown(ctx)
	})
	return p, &conns
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestLoopForwardsAndKeepsBackendConnections(t *testing.T) {
	pool, conns := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), b)
	})
	addr := loopServer(t, forwardTo(time.Second, pool))
	c := newClient(t)
	for i := range 50 {
		want := fmt.Sprintf("GET /fwd/%d?q=%d ", i, i)
		if code, body := get(t, c, fmt.Sprintf("http://%s/fwd/%d?q=%d", addr, i, i)); code != 200 || body != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, code, body, want)
		}
	}
	resp, err := c.Post("http://"+addr+"/fwd/post", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST /fwd/post payload" {
		t.Fatalf("POST: %q", b)
	}
	if n := conns.Load(); n > 2 {
		t.Errorf("the backend saw %d connections for 51 sequential requests; kept connections should serve them", n)
	}
	if code, body := get(t, c, "http://"+addr+"/other"); code != 200 || body != "slow GET /other " {
		t.Errorf("a request the handler declines: %d %q, want net/http's answer", code, body)
	}
}

func TestLoopPipelinedRequestsAnswerInOrder(t *testing.T) {
	pool, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fwd/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Fprint(w, r.URL.Path)
	})
	addr := loopServer(t, forwardTo(time.Second, pool))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	paths := []string{"/fwd/slow", "/fwd/a", "/fwd/b", "/fwd/slow", "/fwd/c"}
	var all strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&all, "GET %s HTTP/1.1\r\nHost: gw\r\n\r\n", p)
	}
	if _, err := io.WriteString(conn, all.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for _, p := range paths {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != p {
			t.Fatalf("got %q, want %q: pipelined responses out of order", b, p)
		}
	}
}

func TestLoopStreamsResponsesAsTheyCome(t *testing.T) {
	next := make(chan struct{})
	pool, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fwd/close" { // no length, no chunks: the body ends with the connection
			w.Header().Set("Connection", "close")
			hj, _, _ := w.(http.Hijacker).Hijack()
			io.WriteString(hj, "HTTP/1.1 200 OK\r\n\r\nuntil")
			time.Sleep(20 * time.Millisecond)
			io.WriteString(hj, " close")
			hj.Close()
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-next
		fmt.Fprint(w, "data: two\n\n")
	})
	addr := loopServer(t, forwardTo(time.Second, pool))
	resp, err := http.Get("http://" + addr + "/fwd/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q %v: the response waited for its end", line, err)
	}
	close(next)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest: %q", rest)
	}
	code, body := get(t, http.DefaultClient, "http://"+addr+"/fwd/close")
	if code != 200 || body != "until close" {
		t.Fatalf("a body delimited by the close: %d %q", code, body)
	}
}

func TestLoopSlowClientHoldsTheBackendBack(t *testing.T) {
	// Kernel buffers take some megabytes on their own; a loop that
	// buffered without bound would take all of it in the pause.
	const size, bound = 128 << 20, 48 << 20
	var written atomic.Int64
	done := make(chan struct{})
	pool, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for written.Load() < size {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	addr := loopServer(t, forwardTo(5*time.Second, pool))
	conn := sendRaw(t, addr, "GET /fwd/big HTTP/1.1\r\nHost: gw\r\n\r\n")
	time.Sleep(800 * time.Millisecond) // not reading
	if w := written.Load(); w > bound {
		t.Fatalf("the backend wrote %d of %d bytes to a client reading none: the loop buffers without bound", w, size)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("read %d bytes (%v), want %d", n, err, size)
	}
	<-done
}

func TestLoopBackendFailures(t *testing.T) {
	dead := NewPool(PoolConfig{Addr: closedPort(t), ConnectTimeout: time.Second})
	silentLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silentLn.Close() })
	var silentConns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silentLn.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			silentConns = append(silentConns, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range silentConns {
			c.Close()
		}
	})
	silent := NewPool(PoolConfig{Addr: silentLn.Addr().String(), ConnectTimeout: time.Second})
	good, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "good") })

	t.Run("refused, then another backend", func(t *testing.T) {
		addr := loopServer(t, forwardTo(time.Second, dead, good))
		if code, body := get(t, http.DefaultClient, "http://"+addr+"/fwd"); code != 200 || body != "good" {
			t.Fatalf("%d %q, want the second backend's answer", code, body)
		}
	})
	t.Run("refused everywhere", func(t *testing.T) {
		addr := loopServer(t, forwardTo(time.Second, dead))
		code, body := get(t, http.DefaultClient, "http://"+addr+"/fwd")
		if code != 502 || !strings.Contains(body, "connection refused") {
			t.Fatalf("%d %q, want 502 naming the refusal", code, body)
		}
	})
	t.Run("no answer within the read timeout", func(t *testing.T) {
		addr := loopServer(t, forwardTo(300*time.Millisecond, silent))
		start := time.Now()
		code, body := get(t, http.DefaultClient, "http://"+addr+"/fwd")
		if code != 502 || !strings.Contains(body, ErrBackendTimeout.Error()) {
			t.Fatalf("%d %q, want 502 for the timeout", code, body)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
			t.Fatalf("answered after %v, want about the 300ms read timeout", d)
		}
	})
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// scriptedBackend answers each connection with script(request number on the
// connection) and closes it when script says so.
func scriptedBackend(t *testing.T, script func(conn, req int) (answer string, closeAfter bool)) *Pool {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					answer, closeAfter := script(n, i)
					io.WriteString(c, answer)
					if closeAfter {
						return
					}
				}
			})
		}
	})
	p := NewPool(PoolConfig{Addr: ln.Addr().String(), ConnectTimeout: time.Second})
	t.Cleanup(p.Close)
	return p
}

func TestLoopResendsOnAConnectionClosedWhileIdle(t *testing.T) {
	// Each connection answers its first request and closes on the second
	// without an answer, as a backend does that closes a kept connection
	// just as a request arrives: that request must go again on a new
	// connection.
	pool := scriptedBackend(t, func(conn, req int) (string, bool) {
		if req > 0 {
			return "", true
		}
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d", conn%10), false
	})
	addr := loopServer(t, forwardTo(time.Second, pool))
	c := newClient(t)
	for i := range 5 {
		if code, body := get(t, c, "http://"+addr+"/fwd"); code != 200 || body != strconv.Itoa(i) {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
}

func TestLoopCutsAResponseTheBackendCut(t *testing.T) {
	pool := scriptedBackend(t, func(_, _ int) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.", true
	})
	addr := loopServer(t, forwardTo(time.Second, pool))
	resp, err := http.Get("http://" + addr + "/fwd")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading a body the backend cut: %v, want unexpected EOF", err)
	}
}

func TestLoopClientLeavingFreesTheBackend(t *testing.T) {
	gone := make(chan struct{})
	pool, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the proxy closed the connection
		close(gone)
	})
	addr := loopServer(t, forwardTo(time.Second, pool))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /fwd/stream HTTP/1.1\r\nHost: gw\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	select {
	case <-gone:
	case <-time.After(3 * time.Second):
		t.Fatal("the backend's stream outlived its client")
	}
}

func TestLoopHandsOffWhatItDoesNotServe(t *testing.T) {
	pool, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "fwd %d", len(b))
	})
	addr := loopServer(t, forwardTo(time.Second, pool))
	big := strings.Repeat("b", loopBuf+1)
	resp, err := http.Post("http://"+addr+"/fwd/upload", "text/plain", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The goroutine path's handler is the same one: off the loop it
	// declines to forward, and net/http answers.
	if want := "slow POST /fwd/upload " + big; string(b) != want {
		t.Fatalf("a body larger than a loop's buffer: %.60q, want net/http's answer", b)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/fwd/h", nil)
	req.Header.Set("X-Big", strings.Repeat("h", MaxHeadSize))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "slow GET /fwd/h " {
		t.Fatalf("a head larger than the subset: %q", b)
	}
}

func TestLoopSurvivesAPanickingHandler(t *testing.T) {
	addr := loopServer(t, func(w *ResponseWriter, r *Request, _ io.Reader) bool {
		if string(r.Path) == "/panic" {
			panic(http.ErrAbortHandler)
		}
		w.Write([]byte("ok"))
		return true
	})
	if _, err := http.Get("http://" + addr + "/panic"); err == nil {
		t.Fatal("a panicking handler's request got an answer")
	}
	if code, body := get(t, newClient(t), "http://"+addr+"/fine"); code != 200 || body != "ok" {
		t.Fatalf("after a panic: %d %q", code, body)
	}
}

func TestLoopShutdownFinishesRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	pool, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprint(w, "finished")
	})
	s := &Server{Handler: forwardTo(5*time.Second, pool)}
	addr, served := oneLoop(t, s)
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/fwd")
		if err != nil {
			answer <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer <- string(b)
	}()
	time.Sleep(100 * time.Millisecond) // the request reaches the backend
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if got := <-answer; got != "finished" {
		t.Fatalf("the request in flight got %q", got)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("ServeLoops: %v", err)
	}
	allForwardsDone(t)
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

// A request handed off while an earlier response is still being written:
// that response arrives whole, before the hand-off's.
func TestLoopHandOffWaitsForPendingOutput(t *testing.T) {
	const size = 8 << 20
	addr := loopServer(t, func(w *ResponseWriter, r *Request, _ io.Reader) bool {
		if string(r.Path) != "/big" {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(bytes.Repeat([]byte("x"), size))
		return true
	})
	conn := sendRaw(t, addr, "GET /big HTTP/1.1\r\nHost: gw\r\n\r\nGET /other HTTP/1.1\r\nHost: gw\r\n\r\n")
	time.Sleep(300 * time.Millisecond) // the first response fills the socket
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || len(b) != size || bytes.Count(b, []byte("x")) != size {
		t.Fatalf("first response: %d bytes (%v), want %d x's", len(b), err, size)
	}
	if resp, err = http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ = io.ReadAll(resp.Body); string(b) != "slow GET /other " {
		t.Fatalf("second response: %q", b)
	}
}

// The idle timeout runs from the end of a response, not from when the loop
// queued it: a slow reader is not cut.
func TestLoopIdleTimeoutWaitsForTheResponse(t *testing.T) {
	const size = 8 << 20
	s := &Server{IdleTimeout: 300 * time.Millisecond, Handler: func(w *ResponseWriter, r *Request, _ io.Reader) bool {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(bytes.Repeat([]byte("x"), size))
		return true
	}}
	addr, served := oneLoop(t, s)
	defer func() { s.Shutdown(context.Background()); <-served }()
	conn := sendRaw(t, addr, "GET /big HTTP/1.1\r\nHost: gw\r\n\r\n")
	time.Sleep(700 * time.Millisecond) // a slow client
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, resp.Body); n != size {
		t.Fatalf("read %d of %d bytes (%v): the idle timeout cut a response being written", n, size, err)
	}
}

// An edge on an idle backend connection with nothing to read (spurious, or
// late) leaves it kept.
func TestLoopKeepsAnIdleBackendOnAnEmptyEdge(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	p := NewPool(PoolConfig{Addr: "127.0.0.1:1"})
	l := &loop{conns: map[int]*lconn{}, idle: map[*Pool][]*lconn{}}
	b := &lconn{fd: fds[0], backend: true, pool: p}
	l.conns[b.fd] = b
	l.idle[p] = []*lconn{b}
	l.backendReadable(b)
	if b.fd < 0 || len(l.idle[p]) != 1 {
		t.Fatal("an idle backend connection with nothing to read was dropped")
	}
	unix.Close(b.fd)
}

// Once Shutdown began, new clients are refused at once, as net/http's are,
// not accepted by the kernel and left unanswered.
func TestLoopShutdownRefusesNewClients(t *testing.T) {
	release := make(chan struct{})
	pool, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { <-release; w.Write([]byte("x")) })
	s := &Server{Handler: forwardTo(5*time.Second, pool)}
	addr, served := oneLoop(t, s)
	inFlight := make(chan struct{})
	go func() {
		defer close(inFlight)
		if resp, err := http.Get("http://" + addr + "/fwd"); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	close(release)
	<-inFlight
	<-shut
	<-served
	if err == nil {
		t.Fatal("a connection was accepted while the server drained")
	}
	allForwardsDone(t)
}

// Shutdown may wake the loops after they ended: it must not write to their
// closed descriptors, whose numbers may be other files' by then.
func TestLoopShutdownLeavesClosedWakeDescriptorsAlone(t *testing.T) {
	hold := make(chan struct{})
	s := &Server{Handler: func(w *ResponseWriter, r *Request, _ io.Reader) bool {
		if w.OnLoop() {
			return false // to a goroutine, which stays busy past Shutdown's ctx
		}
		<-hold
		return true
	}}
	addr, served := oneLoop(t, s)
	sendRaw(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	s.mu.Lock()
	wake := s.loops[0].(*loop).wake
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	<-served // the loop ended: it had no clients
	var pipes [][2]int
	mine := -1
	for range 16 { // take the freed numbers
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		pipes = append(pipes, p)
		if p[1] == wake {
			mine = len(pipes) - 1
		}
	}
	defer func() {
		for _, p := range pipes {
			unix.Close(p[0])
			unix.Close(p[1])
		}
	}()
	<-shut
	close(hold)
	if mine < 0 {
		t.Skip("the eventfd's number went elsewhere")
	}
	var b [16]byte
	if n, _ := unix.Read(pipes[mine][0], b[:]); n > 0 {
		t.Fatalf("Shutdown wrote %d bytes to an unrelated pipe (the loop's closed eventfd %d)", n, wake)
	}
}

// FuzzLoopRelay sends one GET through a loop to a backend that answers
// with the fuzzed bytes and closes. The loop must neither hang nor die, and
// when the answer is a response both h1 and net/http read whole, the client
// gets its status and body.
func FuzzLoopRelay(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nuntil the close",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
		"garbage",
		"",
	} {
		f.Add([]byte(seed))
	}
	var answer atomic.Pointer[[]byte]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { ln.Close(); wg.Wait() }()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					c.Write(*answer.Load())
				}
			})
		}
	})
	pool := NewPool(PoolConfig{Addr: ln.Addr().String(), ConnectTimeout: time.Second})
	defer pool.Close()
	addr := loopServer(f, forwardTo(time.Second, pool))
	f.Fuzz(func(t *testing.T, backend []byte) {
		answer.Store(&backend)
		want, wantBody, ok := wholeResponse(backend)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /fwd HTTP/1.1\r\nHost: gw\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("no answer within 5s for a backend answering %q", backend)
		}
		if ok && (err != nil || resp.StatusCode != want || !bytes.Equal(body, wantBody)) {
			t.Fatalf("backend answered %q: client got %v %q (%v), want %d %q", backend, statusOf(resp), body, err, want, wantBody)
		}
	})
}

// wholeResponse reports the status and body of a final response that h1
// parses and net/http reads to its end.
func wholeResponse(b []byte) (status int, body []byte, ok bool) {
	var r Response
	if _, err := r.Parse(b); err != nil || r.Status < 200 || r.Status == http.StatusSwitchingProtocols {
		return 0, nil, false
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), &http.Request{Method: http.MethodGet})
	if err != nil {
		return 0, nil, false
	}
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, false
	}
	return resp.StatusCode, body, true
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// FuzzLoopRequest sends the fuzzed bytes as a client would, then closes its
// side: the loop must answer or close within the timeouts, and go on
// serving others.
func FuzzLoopRequest(f *testing.F) {
	for _, seed := range []string{
		"GET /fwd HTTP/1.1\r\nHost: gw\r\n\r\n",
		"GET /fwd HTTP/1.1\r\nHost: gw\r\n\r\nGET /other HTTP/1.1\r\nHost: gw\r\n\r\n",
		"POST /fwd HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc",
		"POST /fwd HTTP/1.1\r\nHost: gw\r\nContent-Length: 30\r\n\r\nabc",
		"GET /fwd HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\nGET /fwd HTTP/1.1\r\n",
		"GET /other HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET /fwd HTTP/1.1\r\nHost: gw\r\n",
	} {
		f.Add([]byte(seed))
	}
	pool, _ := countingBackend(f, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.URL.Path, b)
	})
	addr := loopServer(f, forwardTo(time.Second, pool))
	f.Fuzz(func(t *testing.T, client []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(client)
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the connection neither answered nor closed within 10s after %q", client)
		}
		// and the server goes on
		c2, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c2, "GET /fwd/ok HTTP/1.1\r\nHost: gw\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
		if err != nil {
			t.Fatalf("after %q: %v", client, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "/fwd/ok " {
			t.Fatalf("after %q: %q", client, b)
		}
	})
}

// A client in the middle of sending a head does not hold Shutdown up.
func TestLoopShutdownClosesHalfSentRequests(t *testing.T) {
	s := &Server{ReadHeaderTimeout: 10 * time.Second, Handler: func(w *ResponseWriter, _ *Request, _ io.Reader) bool {
		w.Write([]byte("ok"))
		return true
	}}
	addr, served := oneLoop(t, s)
	sendRaw(t, addr, "GET / HTTP/1.1\r\nHo")
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v, with a half-sent request open", err)
	}
	<-served
}

// A backend named by host name is looked up off the loop: requests fail
// over at once while the name resolves (or cannot), and go through after.
func TestLoopResolvesBackendNamesOffTheLoop(t *testing.T) {
	byIP, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "named") })
	_, port, _ := net.SplitHostPort(byIP.cfg.Addr)
	named := NewPool(PoolConfig{Addr: net.JoinHostPort("localhost", port), ConnectTimeout: time.Second})
	unknown := NewPool(PoolConfig{Addr: "sluice-test-no-such-host.invalid:80", ConnectTimeout: 3 * time.Second})
	defer named.Close()
	defer unknown.Close()
	addr := loopServer(t, func(w *ResponseWriter, r *Request, body io.Reader) bool {
		pool := named
		if string(r.Path) == "/fwd/unknown" {
			pool = unknown
		}
		return forwardTo(time.Second, pool)(w, r, body)
	})
	c := newClient(t)
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, body := get(t, c, "http://"+addr+"/fwd/named")
		if code == 200 && body == "named" {
			break
		}
		if code != 502 || time.Now().After(deadline) {
			t.Fatalf("%d %q: want 502 while the name resolves, then the backend's answer", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 3 {
		start := time.Now()
		if code, _ := get(t, c, "http://"+addr+"/fwd/unknown"); code != 502 {
			t.Fatalf("a backend name that does not resolve: %d", code)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("a request to an unresolvable backend took %v: the lookup blocked the loop", d)
		}
	}
	for unknown.resolving.Load() { // the lookup's goroutine ends before the leak check
		time.Sleep(10 * time.Millisecond)
	}
}

// A client that leaves before the backend's response head frees the
// backend connection at once (the README's claim for loops; the goroutine
// tier notices only at readTimeout).
func TestLoopClientLeavingBeforeTheHead(t *testing.T) {
	gone := make(chan struct{})
	pool, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // no head yet: the proxy closed the connection
		close(gone)
	})
	addr := loopServer(t, forwardTo(time.Minute, pool))
	c := sendRaw(t, addr, "GET /fwd/slow HTTP/1.1\r\nHost: gw\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // the request reaches the backend
	c.Close()
	select {
	case <-gone:
	case <-time.After(3 * time.Second):
		t.Fatal("the backend kept waiting on a request whose client left")
	}
}
