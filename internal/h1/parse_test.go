package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// typicalGET is a browser-like API request head of about 300 bytes.
const typicalGET = "GET /api/v1/orders/12345?include=items&limit=20 HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0\r\n" +
	"Accept: application/json\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln\r\n" +
	"X-Request-Id: 7f1c2a9e-1b2c\r\n" +
	"\r\n"

type acceptedHead struct {
	name string
	head string // the head only; rest follows it in the input
	rest string

	method, path, host string
	query              *string // nil: no '?'
	contentLength      int64
	close              bool
	headers            int
}

func ptr(s string) *string { return &s }

var acceptedHeads = []acceptedHead{
	{name: "typical GET", head: typicalGET, method: "GET", path: "/api/v1/orders/12345",
		query: ptr("include=items&limit=20"), host: "api.example.com", contentLength: -1, headers: 7},
	{name: "minimal", head: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		method: "GET", path: "/", host: "a", contentLength: -1, headers: 1},
	{name: "POST with body and a pipelined request behind it",
		head:   "POST /orders HTTP/1.1\r\nHost: shop.example:8080\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
		rest:   "hello" + "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		method: "POST", path: "/orders", host: "shop.example:8080", contentLength: 5, headers: 3},
	{name: "Content-Length 0", head: "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		method: "PUT", path: "/x", host: "a", contentLength: 0, headers: 2},
	{name: "Connection close, any case", head: "DELETE /x HTTP/1.1\r\nhost: a\r\nCONNECTION: Close\r\n\r\n",
		method: "DELETE", path: "/x", host: "a", contentLength: -1, close: true, headers: 2},
	{name: "Connection keep-alive", head: "HEAD /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
		method: "HEAD", path: "/x", host: "a", contentLength: -1, headers: 2},
	{name: "OWS around values, empty value", head: "PATCH /x HTTP/1.1\r\nHost:\t a \t\r\nX-Empty:\r\nX-Sp:   \r\n\r\n",
		method: "PATCH", path: "/x", host: "a", contentLength: -1, headers: 3},
	{name: "escapes, sub-delims, lone ?", head: "OPTIONS /a%2Fb/%2e%2e/;x=1,y@:!$&'()*+~ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		method: "OPTIONS", path: "/a%2Fb/%2e%2e/;x=1,y@:!$&'()*+~", host: "[::1]:80", contentLength: -1, headers: 1},
	{name: "lone ?", head: "GET /a? HTTP/1.1\r\nHost: a\r\n\r\n",
		method: "GET", path: "/a", query: ptr(""), host: "a", contentLength: -1, headers: 1},
	{name: "? and / in the query", head: "GET /a?b=/c?d HTTP/1.1\r\nHost: a\r\n\r\n",
		method: "GET", path: "/a", query: ptr("b=/c?d"), host: "a", contentLength: -1, headers: 1},
	{name: "double slash is a path, not an authority", head: "GET //evil.example/x HTTP/1.1\r\nHost: a\r\n\r\n",
		method: "GET", path: "//evil.example/x", host: "a", contentLength: -1, headers: 1},
	{name: "obs-text in a value, repeated headers",
		head:   "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nX-Name: caf\xc3\xa9\r\nCookie: b=2\r\nPragma: no-cache\r\n\r\n",
		method: "GET", path: "/", host: "a", contentLength: -1, headers: 5},
	{name: "max headers", head: "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", MaxHeaders-1) + "\r\n",
		method: "GET", path: "/", host: "a", contentLength: -1, headers: MaxHeaders},
}

type refusedHead struct {
	name, head string
}

var refusedHeads = []refusedHead{
	// Smuggling vectors: framing net/http and another parser may read differently.
	{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"TE chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"TE upper case", "POST / HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n"},
	{"TE list", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
	{"TE padded value", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked \r\n\r\n"},
	{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"},
	{"TE with space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"},
	{"TE with tab before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n"},
	{"TE folded", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"},
	{"TE name with vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\x0b: chunked\r\n\r\n"},
	{"duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"},
	{"duplicate equal CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n"},
	{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,2\r\n\r\n"},
	{"CL plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n"},
	{"CL minus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"},
	{"CL space inside", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n"},
	{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"},
	{"CL leading zero", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 04\r\n\r\n"},
	{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"},
	{"CL too large", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n"},
	{"CL with space before colon", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 4\r\n\r\n"},
	{"header name with space", "GET / HTTP/1.1\r\nHost: a\r\nX Y: z\r\n\r\n"},
	{"header without colon", "GET / HTTP/1.1\r\nHost: a\r\nX-Y\r\n\r\n"},
	{"empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: z\r\n\r\n"},
	{"obs-fold continuation", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"},
	{"leading space on first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n"},
	{"LF-only line endings", "GET / HTTP/1.1\nHost: a\n\n"},
	{"LF-only blank line", "GET / HTTP/1.1\r\nHost: a\r\n\n"},
	{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n"},
	{"CR CR LF", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n"},
	{"CR blank line without LF", "GET / HTTP/1.1\r\nHost: a\r\n\rX"},
	{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n"},
	{"NUL in name", "GET / HTTP/1.1\r\nHost: a\r\nX\x00A: b\r\n\r\n"},
	{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n"},
	{"non-ASCII name", "GET / HTTP/1.1\r\nHost: a\r\nX-\xc3\xa9: b\r\n\r\n"},

	// Request line.
	{"two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n"},
	{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\n\r\n"},
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n"},
	{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
	{"HTTP/0.9", "GET /\r\n\r\n"},
	{"trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n"},
	{"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"},
	{"extension method", "PURGE / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"method prefix", "GETS / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"absolute-form", "GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"authority-form", "GET b:80 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"empty target", "GET  HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"bad escape", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"short escape", "GET /% HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"bad escape in query", "GET /?a=%g0 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"backslash", "GET /a\\..\\b HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"control char in target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"NUL in target", "GET /a\x00 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"leading CRLF", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},

	// Host.
	{"no Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n"},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
	{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"},
	{"Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"},
	{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
	{"Host with empty port", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n"},
	{"Host with long port", "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n"},
	{"Host with unclosed bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"},

	// Headers only net/http implements.
	{"Upgrade", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
	{"h2c upgrade", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"},
	{"Expect", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n"},
	{"TE trailers", "GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n"},
	{"Connection list", "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n"},
	{"Connection nominating a header", "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Secret\r\nX-Secret: 1\r\n\r\n"},
	{"two Connection headers", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: close\r\n\r\n"},

	// Limits.
	{"too many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", MaxHeaders) + "\r\n"},
	{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX-A: " + strings.Repeat("b", MaxHeadSize) + "\r\n\r\n"},
	{"not HTTP", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
}

func TestParseAccepts(t *testing.T) {
	ref := newReferenceServer(t)
	for _, tc := range acceptedHeads {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.head + tc.rest)
			var req Request
			n, err := req.Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if n != len(tc.head) {
				t.Errorf("n = %d, want %d (head length)", n, len(tc.head))
			}
			if req.Method != tc.method || string(req.Path) != tc.path || string(req.Host) != tc.host ||
				req.ContentLength != tc.contentLength || req.Close != tc.close || len(req.Headers) != tc.headers {
				t.Errorf("got method %q path %q host %q length %d close %v headers %d\nwant method %q path %q host %q length %d close %v headers %d",
					req.Method, req.Path, req.Host, req.ContentLength, req.Close, len(req.Headers),
					tc.method, tc.path, tc.host, tc.contentLength, tc.close, tc.headers)
			}
			if (tc.query == nil) != (req.Query == nil) || tc.query != nil && *tc.query != string(req.Query) {
				t.Errorf("query = %q (nil %v), want %v", req.Query, req.Query == nil, tc.query)
			}
			checkAgainstNetHTTP(t, ref, in)
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range refusedHeads {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			if n, err := req.Parse([]byte(tc.head)); err != ErrUnsupported {
				t.Fatalf("Parse(%q) = %d, %v; want ErrUnsupported", tc.head, n, err)
			}
		})
	}
}

// Most classic vectors above are not just outside the subset: the net/http
// server, the hand-off target, refuses them itself, which is why the fast
// path must not guess. (CL plus TE is not refused: net/http frames by
// Transfer-Encoding and ignores Content-Length, as RFC 9112 allows.) (http.ReadRequest alone reads "Transfer-Encoding :"
// as an unknown header named "Transfer-Encoding "; the server then refuses
// the name.)
func TestNetHTTPServerRefusesSmugglingVectors(t *testing.T) {
	ref := newReferenceServer(t)
	for _, head := range []string{
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / http/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	} {
		if got, handled := ref.serve(t, []byte(head)); handled {
			t.Errorf("net/http served %q as %+v", head, got)
		}
	}
}

func TestParseIncomplete(t *testing.T) {
	for _, tc := range acceptedHeads {
		for k := range len(tc.head) {
			var req Request
			if n, err := req.Parse([]byte(tc.head[:k])); err != ErrIncomplete {
				t.Fatalf("%s: Parse(%q) = %d, %v; want ErrIncomplete", tc.name, tc.head[:k], n, err)
			}
		}
	}
}

// A prefix that can no longer become a supported head is refused at once, so
// the caller hands off without waiting for a head that may never complete.
func TestParseRefusesEarly(t *testing.T) {
	for _, in := range []string{
		"PRI * HTTP/2.0\r\n",
		"CONNECT ",
		"GET http:",
		"GET / HTTP/1.0",
		"GET / HTTP/1.1\r\nTransfer-Encoding:",
		"GET / HTTP/1.1\r\nX-A: b\n",
		"GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", MaxHeaders) + "X",
		"GET /" + strings.Repeat("a", MaxHeadSize),
	} {
		var req Request
		if n, err := req.Parse([]byte(in)); err != ErrUnsupported {
			t.Errorf("Parse(%.40q) = %d, %v; want ErrUnsupported", in, n, err)
		}
	}
}

func TestGet(t *testing.T) {
	var req Request
	if _, err := req.Parse([]byte("GET / HTTP/1.1\r\nHost: a\r\nx-api-key: k1\r\nX-Api-Key: k2\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := req.Get("X-API-KEY"); string(got) != "k1" {
		t.Errorf("Get = %q, want the first value k1", got)
	}
	if got := req.Get("Authorization"); got != nil {
		t.Errorf("Get of a missing header = %q, want nil", got)
	}
}

// Reusing a Request must not carry anything over from the previous head.
func TestParseResetsRequest(t *testing.T) {
	var req Request
	if _, err := req.Parse([]byte("POST /a?b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := req.Parse([]byte("GET /c HTTP/1.1\r\nHost: d\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if req.Method != "GET" || string(req.Path) != "/c" || req.Query != nil || string(req.Host) != "d" ||
		req.ContentLength != -1 || req.Close || len(req.Headers) != 1 || req.HasBody() {
		t.Errorf("second parse kept state: %+v", req)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	in := []byte(typicalGET)
	var req Request
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := req.Parse(in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %v times per head once the Request is warm", allocs)
	}
}

func BenchmarkParse(b *testing.B) {
	in := []byte(typicalGET)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var req Request
	for b.Loop() {
		if _, err := req.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetHTTPReadRequest is the baseline Parse replaces on the fast path.
func BenchmarkNetHTTPReadRequest(b *testing.B) {
	in := []byte(typicalGET)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	src := bytes.NewReader(in)
	br := bufio.NewReader(src)
	for b.Loop() {
		src.Reset(in)
		br.Reset(src)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}
