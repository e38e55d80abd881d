package h1

// Response heads: the reverse proxy's upstream client reads backend
// responses with Response.Parse instead of http.ReadResponse. The backend is
// less trusted than the proxy, and a proxy that frames a response body
// differently from its client is open to response splitting, so Parse, like
// Request.Parse, accepts a strict subset of what net/http's ReadResponse
// accepts and agrees with it on everything it accepts: status, header names
// and values, Content-Length, chunked framing, Close, and the end of the
// head. FuzzResponse (response_test.go) checks that against net/http.
//
// # The response subset
//
//   - Status line "HTTP/1.1 SP 3DIGIT [SP reason] CRLF", or HTTP/1.0; the
//     status is 100 to 999, the reason is SP, HTAB, visible ASCII and
//     obs-text, taken as sent.
//   - Header lines as for requests: CRLF only, no obs-fold, token names,
//     values without controls, trimmed of SP/HTAB; at most MaxHeaders lines
//     and MaxHeadSize bytes.
//   - Content-Length is 1 to 18 digits without a sign or leading zeros.
//     Repeated Content-Length lines must all carry the same value: net/http
//     merges such duplicates in responses and some backends send them, and
//     one value cannot be framed two ways. Headers keeps every line as sent.
//   - Transfer-Encoding appears at most once, as "chunked" in any case, and
//     only in HTTP/1.1 (net/http ignores it in HTTP/1.0; Parse refuses).
//     Anything else, gzip or lists included, is refused, as is a response
//     with both Transfer-Encoding and Content-Length (RFC 9112 calls that a
//     smuggling or splitting attempt).
//   - A Trailer header must not announce Transfer-Encoding, Content-Length
//     or Trailer (net/http refuses those for chunked responses).
//   - Connection may be any list; Close reports the "close" token, and
//     HTTP/1.0 without "keep-alive".

// BodyKind tells how a response body is framed; see Response.BodyKind.
type BodyKind uint8

const (
	// BodyNone: no body follows the head; the next response, if any,
	// starts right after it.
	BodyNone BodyKind = iota
	// BodyLength: exactly ContentLength (> 0) bytes follow.
	BodyLength
	// BodyChunked: a chunked body follows; ChunkScanner finds its end.
	BodyChunked
	// BodyUntilClose: the body runs until the backend closes the
	// connection, which therefore cannot be reused.
	BodyUntilClose
)

func (k BodyKind) String() string {
	switch k {
	case BodyNone:
		return "none"
	case BodyLength:
		return "content-length"
	case BodyChunked:
		return "chunked"
	case BodyUntilClose:
		return "until-close"
	}
	return "invalid"
}

// Response is a parsed response head. Every byte slice points into the
// buffer given to Parse, so a Response is valid only while that buffer is
// unchanged. Reusing one Response reuses its Headers array, which makes
// parsing allocation-free.
type Response struct {
	// Minor is the protocol's minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
	Minor int
	// Status is the three-digit status code, 100 to 999.
	Status int
	// Reason is the reason phrase as sent, possibly empty; nil when the
	// status line ends right after the code.
	Reason []byte
	// ContentLength is the Content-Length header's value, or -1 when there
	// is none. It does not say whether a body follows: see BodyKind.
	ContentLength int64
	// Chunked reports "Transfer-Encoding: chunked".
	Chunked bool
	// Close reports that the backend ends the connection after this
	// response: "close" among the Connection tokens, or HTTP/1.0 without
	// "keep-alive". A BodyUntilClose body ends the connection too.
	Close bool
	// Headers lists every header line in order, with names as sent.
	Headers []Header
}

// BodyKind tells how the body that follows the head is framed, for a
// response to a request with the given method: none for HEAD, 1xx, 204,
// 304 and "Content-Length: 0", then chunked, Content-Length, or until the
// connection closes, as RFC 9112 section 6.3 orders them. A 101 or a 2xx
// to CONNECT switches protocols; that is the caller's to notice.
func (r *Response) BodyKind(method string) BodyKind {
	switch {
	case method == "HEAD", r.Status < 200, r.Status == 204, r.Status == 304:
		return BodyNone
	case r.Chunked:
		return BodyChunked
	case r.ContentLength > 0:
		return BodyLength
	case r.ContentLength == 0:
		return BodyNone
	}
	return BodyUntilClose
}

// Get returns the value of the first header named name, compared without
// regard to ASCII case, or nil when there is none. name must be ASCII.
func (r *Response) Get(name string) []byte { return headerValue(r.Headers, name) }

// Parse parses one response head at the start of buf. On success n is the
// length of the head including its blank line; the body starts at buf[n].
// Otherwise err is ErrIncomplete (read more and call Parse again with all
// the bytes) or ErrUnsupported (outside the subset, or not HTTP), and r is
// partly filled and meaningless.
//
// Like Request.Parse, it refuses as soon as a byte leaves the subset and
// examines only the first MaxHeadSize bytes of buf: a head without its end
// within them is ErrUnsupported.
func (r *Response) Parse(buf []byte) (n int, err error) {
	p := parser{buf: buf}
	if len(p.buf) > MaxHeadSize {
		p.buf = p.buf[:MaxHeadSize]
	}
	n, err = p.parseResponse(r)
	if err == ErrIncomplete && len(buf) >= MaxHeadSize {
		err = ErrUnsupported
	}
	return n, err
}

func (p *parser) parseResponse(r *Response) (int, error) {
	*r = Response{Headers: r.Headers[:0], ContentLength: -1}
	if err := p.statusLine(r); err != nil {
		return 0, err
	}
	var seenLength, hasClose, hasKeepAlive bool
	for {
		if p.i >= len(p.buf) {
			return 0, ErrIncomplete
		}
		if p.buf[p.i] == '\r' { // blank line: end of head
			if p.i+1 >= len(p.buf) {
				return 0, ErrIncomplete
			}
			if p.buf[p.i+1] != '\n' {
				return 0, ErrUnsupported
			}
			if r.Minor == 0 {
				r.Close = hasClose || !hasKeepAlive
			} else {
				r.Close = hasClose
			}
			return p.i + 2, nil
		}
		if len(r.Headers) == MaxHeaders {
			return 0, ErrUnsupported
		}
		name, err := p.headerName()
		if err != nil {
			return 0, err
		}
		f := responseFieldOf(name)
		if f == respTransferEncoding && (r.Minor == 0 || r.Chunked || seenLength) {
			return 0, ErrUnsupported // refuse before the value arrives
		}
		if f == respContentLength && r.Chunked {
			return 0, ErrUnsupported
		}
		value, err := p.headerValue()
		if err != nil {
			return 0, err
		}
		switch f {
		case respContentLength:
			n := parseContentLength(value)
			if n < 0 || seenLength && n != r.ContentLength {
				return 0, ErrUnsupported
			}
			seenLength = true
			r.ContentLength = n
		case respTransferEncoding:
			if !equalFoldASCII(value, "chunked") {
				return 0, ErrUnsupported
			}
			r.Chunked = true
		case respConnection:
			hasClose = hasClose || containsToken(value, "close")
			hasKeepAlive = hasKeepAlive || containsToken(value, "keep-alive")
		case respTrailer:
			if !validTrailerDecl(value) {
				return 0, ErrUnsupported
			}
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: value})
	}
}

// statusLine parses "HTTP/1.x SP 3DIGIT [SP reason] CRLF".
func (p *parser) statusLine(r *Response) error {
	b := p.buf
	const proto = "HTTP/1."
	for k := range len(proto) {
		if k >= len(b) {
			return ErrIncomplete
		}
		if b[k] != proto[k] {
			return ErrUnsupported
		}
	}
	i := len(proto)
	if i >= len(b) {
		return ErrIncomplete
	}
	switch b[i] {
	case '0':
		r.Minor = 0
	case '1':
		r.Minor = 1
	default:
		return ErrUnsupported
	}
	i++
	if i >= len(b) {
		return ErrIncomplete
	}
	if b[i] != ' ' {
		return ErrUnsupported
	}
	i++
	for k := range 3 {
		if i >= len(b) {
			return ErrIncomplete
		}
		c := b[i]
		if c < '0' || c > '9' || k == 0 && c == '0' {
			return ErrUnsupported
		}
		r.Status = r.Status*10 + int(c-'0')
		i++
	}
	if i >= len(b) {
		return ErrIncomplete
	}
	switch b[i] {
	case '\r':
	case ' ':
		i++
		start := i
		for i < len(b) && charClass[b[i]]&classValue != 0 {
			i++
		}
		if i == len(b) {
			return ErrIncomplete
		}
		if b[i] != '\r' {
			return ErrUnsupported // bare LF, controls
		}
		r.Reason = b[start:i]
	default:
		return ErrUnsupported // a fourth digit, HTAB
	}
	switch {
	case i+1 >= len(b):
		return ErrIncomplete
	case b[i+1] != '\n':
		return ErrUnsupported
	}
	p.i = i + 2
	return nil
}

// respField names the header fields a response's framing depends on.
type respField uint8

const (
	respOther respField = iota
	respContentLength
	respTransferEncoding
	respConnection
	respTrailer
)

func responseFieldOf(name []byte) respField {
	switch len(name) {
	case 7:
		if equalFoldASCII(name, "trailer") {
			return respTrailer
		}
	case 10:
		if equalFoldASCII(name, "connection") {
			return respConnection
		}
	case 14:
		if equalFoldASCII(name, "content-length") {
			return respContentLength
		}
	case 17:
		if equalFoldASCII(name, "transfer-encoding") {
			return respTransferEncoding
		}
	}
	return respOther
}

// forEachElement calls fn with every non-empty element of the
// comma-separated list v, trimmed of SP/HTAB, until fn returns false.
func forEachElement(v []byte, fn func([]byte) bool) {
	for len(v) > 0 {
		elem := v
		rest := []byte(nil)
		for i, c := range v {
			if c == ',' {
				elem, rest = v[:i], v[i+1:]
				break
			}
		}
		elem = trimOWS(elem)
		if len(elem) > 0 && !fn(elem) {
			return
		}
		v = rest
	}
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// containsToken reports whether the list v holds token, in any ASCII case,
// as net/http's httpguts.HeaderValuesContainsToken decides it.
func containsToken(v []byte, token string) bool {
	found := false
	forEachElement(v, func(e []byte) bool {
		found = equalFoldASCII(e, token)
		return !found
	})
	return found
}

// validTrailerDecl reports whether the Trailer list v announces none of
// the framing fields net/http refuses in a trailer.
func validTrailerDecl(v []byte) bool {
	ok := true
	forEachElement(v, func(e []byte) bool {
		ok = !equalFoldASCII(e, "transfer-encoding") && !equalFoldASCII(e, "content-length") &&
			!equalFoldASCII(e, "trailer")
		return ok
	})
	return ok
}
