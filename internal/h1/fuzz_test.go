package h1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// FuzzParse checks the subset property against net/http: whatever Parse
// accepts, net/http reads the same way, up to the same byte; whatever Parse
// calls incomplete, net/http cannot read either; and Parse gives the same
// answer for every prefix of its input as a caller feeding it a stream
// would get.
func FuzzParse(f *testing.F) {
	// Seeds stay small: the fuzzer minimizes every new input it keeps, and
	// minimizing a 16 KiB input stalls it for a minute. The unit tests
	// cover the size limits.
	for _, tc := range acceptedHeads {
		if len(tc.head+tc.rest) <= 1024 {
			f.Add([]byte(tc.head + tc.rest))
		}
	}
	for _, tc := range refusedHeads {
		if len(tc.head) <= 1024 {
			f.Add([]byte(tc.head))
		}
	}
	ref := newReferenceServer(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		checkAgainstNetHTTP(t, ref, in)
	})
}

// FuzzParseFields runs the same checks on heads assembled from fields, so
// that most inputs are close to acceptable and the fuzzer spends its time on
// the character classes of targets, Host values and header lines rather than
// on rebuilding the request line.
func FuzzParseFields(f *testing.F) {
	f.Add("GET", "/a/b?c=d", "example.com:8080", "X-Api-Key", "k1")
	f.Add("POST", "/%2e%2e/x;y", "[::1]", "Content-Length", "5")
	f.Add("PUT", "/a?", "a", "Connection", "close")
	f.Add("DELETE", "//x", "a.b-c_d~", "Cookie", "a=\xc3\xa9; b=\"c\"")
	ref := newReferenceServer(f)
	f.Fuzz(func(t *testing.T, method, target, host, name, value string) {
		in := method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + name + ": " + value + "\r\n\r\n"
		checkAgainstNetHTTP(t, ref, []byte(in))
	})
}

// checkAgainstNetHTTP fails t when Parse's answer for in disagrees with
// net/http's.
func checkAgainstNetHTTP(t *testing.T, ref *referenceServer, in []byte) {
	t.Helper()
	var req Request
	n, err := req.Parse(in)
	checkPrefixes(t, in, n, err)
	switch err {
	case nil:
	case ErrIncomplete:
		if bytes.Contains(in, []byte("\r\n\r\n")) {
			t.Fatalf("ErrIncomplete for %q, which holds a blank line", in)
		}
		if r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in))); err == nil {
			t.Fatalf("ErrIncomplete for %q, but net/http read %s %q", in, r.Method, r.RequestURI)
		}
		return
	case ErrUnsupported:
		return // net/http decides; nothing to agree on
	default:
		t.Fatalf("Parse(%q): unexpected error %v", in, err)
	}

	if n <= 0 || n > len(in) || n > MaxHeadSize || !bytes.HasSuffix(in[:n], []byte("\r\n\r\n")) {
		t.Fatalf("Parse(%q) = n %d: not the end of a head", in, n)
	}

	// net/http's request reader: same request, same head length.
	src := bytes.NewReader(in)
	br := bufio.NewReader(src)
	hr, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("Parse accepted %q, net/http refused it: %v", in, err)
	}
	if consumed := len(in) - src.Len() - br.Buffered(); consumed != n {
		t.Fatalf("%q: Parse's head is %d bytes, net/http's %d", in, n, consumed)
	}
	want := canonicalHeader(&req)
	delete(want, "Host") // net/http moves Host out of the header map
	checkSame(t, in, "ReadRequest", &req, want, view{
		method: hr.Method, requestURI: hr.RequestURI, proto: hr.Proto, host: hr.Host,
		header: hr.Header, contentLength: hr.ContentLength, close: hr.Close, url: hr.URL,
	})

	// net/http's server checks more than ReadRequest (Host syntax, header
	// bytes): it must call its handler with the same request.
	got, ok := ref.serve(t, in)
	if !ok {
		t.Fatalf("Parse accepted %q, the net/http server refused it", in)
	}
	checkSame(t, in, "http.Server", &req, want, got)

	// HTTPRequest, for the handlers written for net/http: the same again.
	path, _ := url.PathUnescape(string(req.Path))
	req.RemoteAddr = "192.0.2.1:1234"
	std := req.HTTPRequest(path, bytes.NewReader(in[n:]))
	checkSame(t, in, "HTTPRequest", &req, want, view{
		method: std.Method, requestURI: std.RequestURI, proto: std.Proto, host: std.Host,
		header: std.Header, contentLength: std.ContentLength, close: std.Close, url: std.URL,
	})
	if std.RemoteAddr != req.RemoteAddr {
		t.Fatalf("%q: HTTPRequest's RemoteAddr %q", in, std.RemoteAddr)
	}
}

// view is what a net/http reader made of a request.
type view struct {
	method, requestURI, proto, host string
	header                          http.Header
	contentLength                   int64
	close                           bool
	url                             *url.URL
}

func checkSame(t *testing.T, in []byte, who string, req *Request, wantHeader http.Header, got view) {
	t.Helper()
	wantLength := req.ContentLength
	if wantLength < 0 {
		wantLength = 0 // net/http: no Content-Length in a request means no body
	}
	gotPath, err := url.PathUnescape(string(req.Path))
	if err != nil {
		t.Fatalf("%q: Path %q does not unescape: %v", in, req.Path, err)
	}
	var diffs []string
	check := func(what string, equal bool) {
		if !equal {
			diffs = append(diffs, what)
		}
	}
	check("method", got.method == req.Method)
	check("RequestURI", got.requestURI == string(req.Target))
	check("proto", got.proto == "HTTP/1.1")
	check("Host", got.host == string(req.Host))
	check("header", maps.EqualFunc(got.header, wantHeader, slices.Equal))
	check("ContentLength", got.contentLength == wantLength)
	check("Close", got.close == req.Close)
	check("URL.Path", got.url.Path == gotPath)
	check("URL.RawQuery", got.url.RawQuery == string(req.Query))
	check("URL.ForceQuery", got.url.ForceQuery == (req.Query != nil && len(req.Query) == 0))
	check("URL.Host", got.url.Host == "" && got.url.Scheme == "" && got.url.Opaque == "")
	if len(diffs) > 0 {
		t.Fatalf("%q: %s disagrees on %v\nParse:    %+v\nnet/http: %+v", in, who, diffs, req, got)
	}
}

// canonicalHeader is the header map net/http builds from req's lines.
func canonicalHeader(req *Request) http.Header {
	h := http.Header{}
	for _, f := range req.Headers {
		k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		h[k] = append(h[k], string(f.Value))
	}
	// net/http's only rewrite of a request header (HTTP/1.0 caches).
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = []string{"no-cache"}
	}
	return h
}

// checkPrefixes checks that prefixes of in get the answer a caller reading
// in piece by piece would need: ErrIncomplete until the full head is there,
// unless the prefix is already refused, and the full answer from the head's
// end on. Long inputs get a sample of prefixes, always including those around
// the head's end, to keep each run cheap enough for the fuzzer's
// minimization.
func checkPrefixes(t *testing.T, in []byte, n int, err error) {
	t.Helper()
	step := 1
	if len(in) > 128 {
		step = len(in)/64 + 1
	}
	var req Request
	check := func(k int) {
		if k < 0 || k >= len(in) {
			return
		}
		kn, kerr := req.Parse(in[:k])
		switch {
		case err == nil && k < n && kerr != ErrIncomplete,
			err == nil && k >= n && (kerr != nil || kn != n),
			err == ErrIncomplete && kerr != ErrIncomplete,
			err == ErrUnsupported && kerr == nil:
			t.Fatalf("Parse(%q) = %d, %v but its prefix %q gives %d, %v", in, n, err, in[:k], kn, kerr)
		}
	}
	for k := 0; k < len(in); k += step {
		check(k)
	}
	if err == nil {
		check(n - 2)
		check(n - 1)
		check(n)
	}
}

// referenceServer is a real net/http server reading from in-memory
// connections, for the checks only the server makes.
type referenceServer struct {
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
}

type conversationKey struct{}

func newReferenceServer(tb testing.TB) *referenceServer {
	ref := &referenceServer{conns: make(chan net.Conn), done: make(chan struct{})}
	ref.srv = &http.Server{
		ErrorLog: log.New(io.Discard, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, conversationKey{}, c.(*memConn))
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := r.Context().Value(conversationKey{}).(*memConn)
			c.handled = true
			c.got = view{
				method: r.Method, requestURI: r.RequestURI, proto: r.Proto, host: r.Host,
				header: r.Header.Clone(), contentLength: r.ContentLength, close: r.Close, url: r.URL,
			}
			// Only the first request counts. Taking the connection away
			// also spares the server's lingering close (a 500 ms sleep)
			// after unread bodies or garbage behind the head.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			conn.Close()
		}),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		ref.srv.Serve(ref)
	}()
	tb.Cleanup(func() {
		ref.srv.Close()
		<-served
	})
	return ref
}

// serve feeds in to the server on a fresh connection that reaches EOF after
// in, and reports whether the handler saw a request and what it saw.
func (ref *referenceServer) serve(t *testing.T, in []byte) (view, bool) {
	c := &memConn{r: bytes.NewReader(in), closed: make(chan struct{})}
	select {
	case ref.conns <- c:
	case <-ref.done:
		t.Fatal("reference server closed")
	}
	select {
	case <-c.closed:
	case <-time.After(time.Minute): // a hang guard, not a speed assertion
		t.Fatalf("net/http server neither answered nor closed for %q", in)
	}
	return c.got, c.handled
}

func (ref *referenceServer) Accept() (net.Conn, error) {
	select {
	case c := <-ref.conns:
		return c, nil
	case <-ref.done:
		return nil, net.ErrClosed
	}
}

func (ref *referenceServer) Close() error {
	select {
	case <-ref.done:
	default:
		close(ref.done)
	}
	return nil
}

func (ref *referenceServer) Addr() net.Addr { return memAddr{} }

// memConn is a connection whose peer sent r and then closed its side.
// The handler sets handled and got before it closes the connection, which
// publishes them to serve.
type memConn struct {
	r         *bytes.Reader
	handled   bool
	got       view
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *memConn) Read(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.r.Read(p)
}
func (c *memConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *memConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}
func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "192.0.2.1:1234" }
