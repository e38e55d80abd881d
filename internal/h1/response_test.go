package h1

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// typicalResponse is an API response head of about 270 bytes.
const typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 13\r\n" +
	"Date: Mon, 02 Jun 2025 10:00:00 GMT\r\n" +
	"Cache-Control: private, max-age=0\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"X-Request-Id: 7f1c2a9e-1b2c\r\n" +
	"Set-Cookie: session=abc; Path=/; HttpOnly\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

type acceptedResponse struct {
	name string
	head string // the head only; rest follows it in the input
	rest string

	minor, status int
	reason        *string // nil: no SP after the status code
	contentLength int64
	chunked       bool
	close         bool
	headers       int
	kind          BodyKind // for a GET
}

var acceptedResponses = []acceptedResponse{
	{name: "typical", head: typicalResponse, rest: `{"ok": true}` + "\n",
		minor: 1, status: 200, reason: ptr("OK"), contentLength: 13, headers: 8, kind: BodyLength},
	{name: "chunked", head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", rest: "5\r\nhello\r\n0\r\n\r\n",
		minor: 1, status: 200, reason: ptr("OK"), contentLength: -1, chunked: true, headers: 1, kind: BodyChunked},
	{name: "chunked, any case, OWS", head: "HTTP/1.1 201 Created\r\ntransfer-encoding: \tCHUNKED \r\nTrailer: X-Sum, Server-Timing\r\n\r\n",
		minor: 1, status: 201, reason: ptr("Created"), contentLength: -1, chunked: true, headers: 2, kind: BodyChunked},
	{name: "until close", head: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", rest: "data: 1\n\n",
		minor: 1, status: 200, reason: ptr("OK"), contentLength: -1, headers: 1, kind: BodyUntilClose},
	{name: "Content-Length 0", head: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", rest: "HTTP/1.1 200 OK\r\n",
		minor: 1, status: 200, reason: ptr("OK"), contentLength: 0, headers: 1, kind: BodyNone},
	{name: "equal duplicate Content-Length", head: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\ncontent-length:  3 \r\n\r\n", rest: "abc",
		minor: 1, status: 200, reason: ptr("OK"), contentLength: 3, headers: 3, kind: BodyLength},
	{name: "HTTP/1.0 closes", head: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", rest: "hi",
		minor: 0, status: 200, reason: ptr("OK"), contentLength: 2, close: true, headers: 1, kind: BodyLength},
	{name: "HTTP/1.0 keep-alive", head: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n", rest: "hi",
		minor: 0, status: 200, reason: ptr("OK"), contentLength: 2, headers: 2, kind: BodyLength},
	{name: "HTTP/1.0 keep-alive and close", head: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
		minor: 0, status: 200, reason: ptr("OK"), contentLength: 2, close: true, headers: 3, kind: BodyLength},
	{name: "Connection list with close", head: "HTTP/1.1 200 OK\r\nConnection: X-Foo, ,CLOSE\t\r\nContent-Length: 0\r\n\r\n",
		minor: 1, status: 200, reason: ptr("OK"), contentLength: 0, close: true, headers: 2, kind: BodyNone},
	{name: "Connection token that only contains close", head: "HTTP/1.1 200 OK\r\nConnection: closed, x-close\r\nContent-Length: 0\r\n\r\n",
		minor: 1, status: 200, reason: ptr("OK"), contentLength: 0, headers: 2, kind: BodyNone},
	{name: "204 with Content-Length", head: "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
		minor: 1, status: 204, reason: ptr("No Content"), contentLength: 7, headers: 1, kind: BodyNone},
	{name: "304", head: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
		minor: 1, status: 304, reason: ptr("Not Modified"), contentLength: -1, headers: 1, kind: BodyNone},
	{name: "100 Continue", head: "HTTP/1.1 100 Continue\r\n\r\n", rest: "HTTP/1.1 200 OK\r\n",
		minor: 1, status: 100, reason: ptr("Continue"), contentLength: -1, kind: BodyNone},
	{name: "no reason, no space", head: "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
		minor: 1, status: 404, contentLength: 0, headers: 1, kind: BodyNone},
	{name: "empty reason", head: "HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n",
		minor: 1, status: 503, reason: ptr(""), contentLength: 0, headers: 1, kind: BodyNone},
	{name: "odd reason", head: "HTTP/1.1 999  Sp\tTab caf\xc3\xa9 \r\nContent-Length: 0\r\n\r\n",
		minor: 1, status: 999, reason: ptr(" Sp\tTab caf\xc3\xa9 "), contentLength: 0, headers: 1, kind: BodyNone},
	{name: "repeated headers, Pragma", head: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nPragma: no-cache\r\nset-cookie: b=2\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n",
		minor: 1, status: 200, reason: ptr("OK"), contentLength: 0, headers: 5, kind: BodyNone},
	{name: "Trailer without chunked", head: "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 1\r\n\r\n", rest: "x",
		minor: 1, status: 200, reason: ptr("OK"), contentLength: 1, headers: 2, kind: BodyLength},
	{name: "max headers", head: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", MaxHeaders) + "\r\n",
		minor: 1, status: 200, reason: ptr("OK"), contentLength: -1, headers: MaxHeaders, kind: BodyUntilClose},
}

type refusedResponse struct {
	name, head string
}

var refusedResponses = []refusedResponse{
	// Framing a proxy and its client could read differently.
	{"CL then TE", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"TE then CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"},
	{"TE twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"TE list", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
	{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
	{"TE identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n"},
	{"TE empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n"},
	{"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"TE with space before colon", "HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n"},
	{"TE folded", "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"},
	{"differing CLs", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"},
	{"CL list", "HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\n"},
	{"CL plus sign", "HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\n"},
	{"CL minus", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
	{"CL leading zero", "HTTP/1.1 200 OK\r\nContent-Length: 04\r\n\r\n"},
	{"CL hex", "HTTP/1.1 200 OK\r\nContent-Length: 0x4\r\n\r\n"},
	{"CL empty", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"},
	{"CL space inside", "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n"},
	{"CL 19 digits", "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000000\r\n\r\n"},
	{"CL on a 204 still checked", "HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n"},
	{"Trailer announcing Content-Length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-A, content-length\r\n\r\n"},
	{"Trailer announcing Transfer-Encoding", "HTTP/1.1 200 OK\r\nTrailer: Transfer-Encoding\r\nContent-Length: 0\r\n\r\n"},
	{"Trailer announcing Trailer", "HTTP/1.1 200 OK\r\nTrailer:  TRAILER \r\n\r\n"},

	// Line syntax.
	{"LF-only status line", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"},
	{"LF-only header line", "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"},
	{"LF-only blank line", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"},
	{"CR without LF ending the head", "HTTP/1.1 200 OK\r\n\rX"},
	{"bare CR in reason", "HTTP/1.1 200 O\rK\r\n\r\n"},
	{"bare CR in value", "HTTP/1.1 200 OK\r\nX-A: b\rc\r\n\r\n"},
	{"CR CR LF", "HTTP/1.1 200 OK\r\nX-A: b\r\r\n\r\n"},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n"},
	{"leading space on first header", "HTTP/1.1 200 OK\r\n Content-Length: 0\r\n\r\n"},
	{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"},
	{"empty header name", "HTTP/1.1 200 OK\r\n: x\r\n\r\n"},
	{"header without colon", "HTTP/1.1 200 OK\r\nX-A\r\n\r\n"},
	{"non-token name", "HTTP/1.1 200 OK\r\nX(A): b\r\n\r\n"},
	{"non-ASCII name", "HTTP/1.1 200 OK\r\nX-\xc3\xa9: b\r\n\r\n"},
	{"NUL in value", "HTTP/1.1 200 OK\r\nX-A: b\x00c\r\n\r\n"},
	{"DEL in value", "HTTP/1.1 200 OK\r\nX-A: b\x7f\r\n\r\n"},
	{"NUL in reason", "HTTP/1.1 200 O\x00K\r\n\r\n"},

	// Status line.
	{"HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n"},
	{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"},
	{"HTTP/0.9", "HTTP/0.9 200 OK\r\n\r\n"},
	{"lower-case version", "http/1.1 200 OK\r\n\r\n"},
	{"ICY", "ICY 200 OK\r\n\r\n"},
	{"two spaces before status", "HTTP/1.1  200 OK\r\n\r\n"},
	{"tab before status", "HTTP/1.1\t200 OK\r\n\r\n"},
	{"tab after status", "HTTP/1.1 200\tOK\r\n\r\n"},
	{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n"},
	{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"},
	{"status below 100", "HTTP/1.1 099 OK\r\n\r\n"},
	{"signed status", "HTTP/1.1 +20 OK\r\n\r\n"},
	{"no status", "HTTP/1.1\r\n\r\n"},
	{"leading CRLF", "\r\nHTTP/1.1 200 OK\r\n\r\n"},

	// Limits and garbage.
	{"too many headers", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", MaxHeaders+1) + "\r\n"},
	{"head too large", "HTTP/1.1 200 OK\r\nX-A: " + strings.Repeat("b", MaxHeadSize) + "\r\n\r\n"},
	{"a request", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"SSH banner", "SSH-2.0-OpenSSH_9.6\r\n"},
	{"TLS alert", "\x15\x03\x03\x00\x02\x02\x46"},
}

func TestResponseAccepts(t *testing.T) {
	for _, tc := range acceptedResponses {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.head + tc.rest)
			var r Response
			n, err := r.Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if n != len(tc.head) {
				t.Errorf("n = %d, want %d (head length)", n, len(tc.head))
			}
			if r.Minor != tc.minor || r.Status != tc.status || r.ContentLength != tc.contentLength ||
				r.Chunked != tc.chunked || r.Close != tc.close || len(r.Headers) != tc.headers {
				t.Errorf("got minor %d status %d length %d chunked %v close %v headers %d\nwant minor %d status %d length %d chunked %v close %v headers %d",
					r.Minor, r.Status, r.ContentLength, r.Chunked, r.Close, len(r.Headers),
					tc.minor, tc.status, tc.contentLength, tc.chunked, tc.close, tc.headers)
			}
			if (tc.reason == nil) != (r.Reason == nil) || tc.reason != nil && *tc.reason != string(r.Reason) {
				t.Errorf("reason = %q (nil %v), want %v", r.Reason, r.Reason == nil, tc.reason)
			}
			if got := r.BodyKind("GET"); got != tc.kind {
				t.Errorf("BodyKind(GET) = %v, want %v", got, tc.kind)
			}
			if got := r.BodyKind("HEAD"); got != BodyNone {
				t.Errorf("BodyKind(HEAD) = %v, want none", got)
			}
			checkResponseAgainstNetHTTP(t, in)
		})
	}
}

func TestResponseRefuses(t *testing.T) {
	for _, tc := range refusedResponses {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			if n, err := r.Parse([]byte(tc.head)); err != ErrUnsupported {
				t.Fatalf("Parse(%q) = %d, %v; want ErrUnsupported", tc.head, n, err)
			}
		})
	}
}

// The framing refusals are not pedantry: net/http's client refuses these
// responses too, so a backend sending them is broken, not just unusual.
func TestNetHTTPRefusesResponseFramingVectors(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: b\x00c\r\n\r\n",
	} {
		if _, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head)), nil); err == nil {
			t.Errorf("net/http read %q", head)
		}
	}
}

func TestResponseIncomplete(t *testing.T) {
	for _, tc := range acceptedResponses {
		for k := range len(tc.head) {
			var r Response
			if n, err := r.Parse([]byte(tc.head[:k])); err != ErrIncomplete {
				t.Fatalf("%s: Parse(%q) = %d, %v; want ErrIncomplete", tc.name, tc.head[:k], n, err)
			}
		}
	}
}

// A prefix that cannot become a supported head is refused without waiting
// for more bytes.
func TestResponseRefusesEarly(t *testing.T) {
	for _, in := range []string{
		"HTTP/2",
		"HTTP/1.1 0",
		"HTTP/1.1 2000",
		"HTTP/1.1 200 OK\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding:",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding:",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length:",
		"HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", MaxHeaders) + "X",
		"HTTP/1.1 200 OK\r\nX-A: " + strings.Repeat("b", MaxHeadSize),
	} {
		var r Response
		if n, err := r.Parse([]byte(in)); err != ErrUnsupported {
			t.Errorf("Parse(%.50q) = %d, %v; want ErrUnsupported", in, n, err)
		}
	}
}

func TestResponseBodyKind(t *testing.T) {
	for _, tc := range []struct {
		head, method string
		want         BodyKind
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "GET", BodyLength},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", BodyNone},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "POST", BodyChunked},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD", BodyNone},
		{"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", BodyNone},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "GET", BodyNone},
		{"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", "GET", BodyNone},
		{"HTTP/1.1 199 X\r\nContent-Length: 5\r\n\r\n", "GET", BodyNone},
		{"HTTP/1.1 204 No Content\r\n\r\n", "DELETE", BodyNone},
		{"HTTP/1.1 205 Reset Content\r\n\r\n", "GET", BodyUntilClose},
		{"HTTP/1.1 500 Oops\r\n\r\n", "GET", BodyUntilClose},
		{"HTTP/1.0 200 OK\r\n\r\n", "GET", BodyUntilClose},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", BodyNone},
	} {
		var r Response
		if _, err := r.Parse([]byte(tc.head)); err != nil {
			t.Fatalf("Parse(%q): %v", tc.head, err)
		}
		if got := r.BodyKind(tc.method); got != tc.want {
			t.Errorf("%q for %s: BodyKind = %v, want %v", tc.head, tc.method, got, tc.want)
		}
		checkResponseAgainstNetHTTP(t, []byte(tc.head))
	}
}

func TestResponseGet(t *testing.T) {
	var r Response
	if _, err := r.Parse([]byte("HTTP/1.1 200 OK\r\nset-cookie: a\r\nSet-Cookie: b\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := r.Get("SET-COOKIE"); string(got) != "a" {
		t.Errorf("Get = %q, want the first value a", got)
	}
	if got := r.Get("Content-Length"); got != nil {
		t.Errorf("Get of a missing header = %q, want nil", got)
	}
}

// Reusing a Response must not carry anything over from the previous head.
func TestResponseParseResets(t *testing.T) {
	var r Response
	if _, err := r.Parse([]byte("HTTP/1.0 500 Oops\r\nContent-Length: 3\r\nConnection: close\r\nX-A: b\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Parse([]byte("HTTP/1.1 204\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if r.Minor != 1 || r.Status != 204 || r.Reason != nil || r.ContentLength != -1 || r.Chunked || r.Close || len(r.Headers) != 0 {
		t.Errorf("second parse kept state: %+v", r)
	}
}

func TestResponseParseDoesNotAllocate(t *testing.T) {
	in := []byte(typicalResponse)
	var r Response
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := r.Parse(in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %v times per head once the Response is warm", allocs)
	}
}

func BenchmarkResponseParse(b *testing.B) {
	in := []byte(typicalResponse)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var r Response
	for b.Loop() {
		if _, err := r.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetHTTPReadResponse is the baseline Response.Parse replaces.
func BenchmarkNetHTTPReadResponse(b *testing.B) {
	in := []byte(typicalResponse)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	src := bytes.NewReader(in)
	br := bufio.NewReader(src)
	for b.Loop() {
		src.Reset(in)
		br.Reset(src)
		if _, err := http.ReadResponse(br, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzResponse checks the subset property against http.ReadResponse:
// whatever Parse accepts, net/http reads the same way up to the same byte,
// with the same framing, for GET and for HEAD; whatever Parse calls
// incomplete, net/http cannot read; every prefix gets the answer a caller
// reading a stream would need.
func FuzzResponse(f *testing.F) {
	for _, tc := range acceptedResponses {
		if len(tc.head+tc.rest) <= 1024 {
			f.Add([]byte(tc.head + tc.rest))
		}
	}
	for _, tc := range refusedResponses {
		if len(tc.head) <= 1024 {
			f.Add([]byte(tc.head))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkResponseAgainstNetHTTP(t, in)
	})
}

// FuzzResponseFields assembles heads from parts so that most inputs are
// nearly acceptable and the fuzzer explores status lines and the framing
// headers rather than rebuilding the syntax.
func FuzzResponseFields(f *testing.F) {
	f.Add("1.1", "200 OK", "Content-Length", "5", "Connection", "close")
	f.Add("1.0", "204 ", "Transfer-Encoding", "chunked", "Content-Length", "0")
	f.Add("1.1", "304", "Transfer-Encoding", " Chunked", "Trailer", "X-A, Content-Length")
	f.Add("1.0", "500 Oops", "Connection", "Keep-Alive", "content-length", "5")
	f.Fuzz(func(t *testing.T, version, status, name1, value1, name2, value2 string) {
		in := "HTTP/" + version + " " + status + "\r\n" + name1 + ": " + value1 + "\r\n" + name2 + ": " + value2 + "\r\n\r\nbody"
		checkResponseAgainstNetHTTP(t, []byte(in))
	})
}

// checkResponseAgainstNetHTTP fails t when Parse's answer for in disagrees
// with http.ReadResponse's.
func checkResponseAgainstNetHTTP(t *testing.T, in []byte) {
	t.Helper()
	var r Response
	n, err := r.Parse(in)
	checkResponsePrefixes(t, in, n, err)
	switch err {
	case nil:
	case ErrIncomplete:
		if bytes.Contains(in, []byte("\r\n\r\n")) {
			t.Fatalf("ErrIncomplete for %q, which holds a blank line", in)
		}
		if hr, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), nil); err == nil {
			t.Fatalf("ErrIncomplete for %q, but net/http read %q", in, hr.Status)
		}
		return
	case ErrUnsupported:
		return
	default:
		t.Fatalf("Parse(%q): unexpected error %v", in, err)
	}
	if n <= 0 || n > len(in) || n > MaxHeadSize || !bytes.HasSuffix(in[:n], []byte("\r\n\r\n")) {
		t.Fatalf("Parse(%q) = n %d: not the end of a head", in, n)
	}
	if r.Status < 100 || r.Status > 999 || r.Minor < 0 || r.Minor > 1 || r.Chunked && r.ContentLength >= 0 {
		t.Fatalf("Parse(%q) = %+v: fields out of range", in, r)
	}

	want := responseHeader(&r)
	for _, method := range []string{"GET", "HEAD"} {
		src := bytes.NewReader(in)
		br := bufio.NewReader(src)
		hr, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("Parse accepted %q, net/http refused it: %v", in, err)
		}
		if consumed := len(in) - src.Len() - br.Buffered(); consumed != n {
			t.Fatalf("%q: Parse's head is %d bytes, net/http's %d", in, n, consumed)
		}
		kind := r.BodyKind(method)
		wantStatus := strconv.Itoa(r.Status)
		if r.Reason != nil {
			wantStatus += " " + string(r.Reason)
		}
		wantLength := r.ContentLength // HEAD: the header's value
		if method != "HEAD" {
			switch kind {
			case BodyNone:
				wantLength = 0
			case BodyChunked, BodyUntilClose:
				wantLength = -1
			}
		}
		var wantTE []string
		if r.Chunked {
			wantTE = []string{"chunked"}
		}
		var diffs []string
		check := func(what string, equal bool) {
			if !equal {
				diffs = append(diffs, what)
			}
		}
		check("status", hr.StatusCode == r.Status)
		check("status line", hr.Status == wantStatus)
		check("proto", hr.ProtoMajor == 1 && hr.ProtoMinor == r.Minor && hr.Proto == "HTTP/1."+strconv.Itoa(r.Minor))
		check("header", maps.EqualFunc(hr.Header, want, slices.Equal))
		check("ContentLength", hr.ContentLength == wantLength)
		check("TransferEncoding", slices.Equal(hr.TransferEncoding, wantTE))
		check("Close", hr.Close == (r.Close || kind == BodyUntilClose))
		check("body", (hr.Body == http.NoBody) == (kind == BodyNone))
		if len(diffs) > 0 {
			t.Fatalf("%q for %s: net/http disagrees on %v\nParse:    %+v, %v\nnet/http: %+v", in, method, diffs, r, kind, hr)
		}
		if kind == BodyLength && int64(len(in)-n) >= r.ContentLength {
			body, err := io.ReadAll(hr.Body)
			if err != nil || int64(len(body)) != r.ContentLength || !bytes.Equal(body, in[n:n+len(body)]) {
				t.Fatalf("%q: net/http read body %q, %v; want the %d bytes after the head", in, body, err, r.ContentLength)
			}
		}
	}
}

// responseHeader is the header map http.ReadResponse builds from r's lines.
func responseHeader(r *Response) http.Header {
	h := http.Header{}
	for _, f := range r.Headers {
		k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		h[k] = append(h[k], string(f.Value))
	}
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = []string{"no-cache"}
	}
	delete(h, "Transfer-Encoding") // moved to TransferEncoding
	if r.Chunked {
		delete(h, "Trailer") // moved to Trailer's keys
	}
	if r.Minor == 1 && r.Close {
		delete(h, "Connection") // moved to Close
	}
	if cl := h["Content-Length"]; len(cl) > 1 {
		h["Content-Length"] = cl[:1] // duplicates merged
	}
	return h
}

// checkResponsePrefixes is checkPrefixes for Response.Parse.
func checkResponsePrefixes(t *testing.T, in []byte, n int, err error) {
	t.Helper()
	step := 1
	if len(in) > 128 {
		step = len(in)/64 + 1
	}
	var r Response
	check := func(k int) {
		if k < 0 || k >= len(in) {
			return
		}
		kn, kerr := r.Parse(in[:k])
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
