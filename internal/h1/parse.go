// Package h1 parses the heads of plain HTTP/1.1 requests for the data
// plane's fast path.
//
// The fast path serves ordinary keep-alive proxy traffic without net/http;
// every connection or request it does not handle goes to the net/http server,
// which stays the reference for unusual input. Two parsers reading one byte
// stream is how request smuggling happens, so this parser accepts only a
// strict subset of what net/http accepts, and on everything it accepts it
// agrees with net/http: same method, target, Host, header names and values,
// Content-Length, Connection: close, and the same end of the head. A
// differential fuzz test against net/http (fuzz_test.go) checks exactly that.
//
// # The subset
//
// Parse accepts a request head only when all of this holds; anything else is
// ErrUnsupported, even when it is valid HTTP:
//
//   - Request line "METHOD SP target SP HTTP/1.1 CRLF", single spaces.
//     METHOD is GET, HEAD, POST, PUT, DELETE, PATCH or OPTIONS (CONNECT, PRI
//     and extension methods go to net/http).
//   - target is origin-form: "/" path ["?" query], where path bytes are RFC
//     3986 pchar or "/", query bytes pchar, "/" or "?", and every "%" starts
//     a valid %XX escape. No absolute-form, authority-form, "*", "#",
//     control characters, spaces or bytes >= 0x80.
//   - Only HTTP/1.1. HTTP/1.0 (different keep-alive rules) and the HTTP/2
//     preface "PRI * HTTP/2.0" go to net/http.
//   - Every line ends in CRLF: a bare LF or a CR that is not followed by LF
//     is refused. Lines that start with SP or HTAB (obs-fold) are refused.
//   - Header lines are "name: value": name is a non-empty token with no
//     whitespace before the colon; value is optional SP/HTAB, then visible
//     ASCII, SP, HTAB and obs-text (bytes >= 0x80, which net/http accepts
//     too and which carry no framing meaning), with surrounding SP/HTAB
//     trimmed as net/http does. NUL, DEL and other controls are refused.
//   - Host appears exactly once, non-empty, as reg-name / IPv4 ("a-z0-9-._~")
//     or an "[IPv6]" literal, with an optional ":port" of 1 to 5 digits.
//   - Content-Length appears at most once, as 1 to 18 digits without a sign,
//     spaces, commas or leading zeros ("0" itself is fine). Duplicates, even
//     equal ones that net/http would merge, are refused.
//   - Connection appears at most once, as exactly "close" or "keep-alive"
//     (any case). Lists and other tokens (Upgrade, nominated hop-by-hop
//     headers) go to net/http.
//   - No Transfer-Encoding (of any value), Upgrade, Expect or TE header: the
//     fast path only forwards Content-Length or empty bodies, and upgrades,
//     100-continue and trailers are net/http's job.
//   - At most MaxHeaders header lines and at most MaxHeadSize bytes up to
//     and including the blank line.
//
// Everything the fast path refuses it must hand to net/http unchanged,
// starting at the first byte of the refused request. One known difference
// remains at the connection level, not in Parse: after a POST, net/http skips
// up to four CR or LF bytes that old clients send after the body; Parse
// refuses such input and the hand-off makes net/http answer 400 for it, as it
// would on a fresh connection.
//
// Path normalization (dot segments, %2F, %2e, duplicate slashes) is left to
// the caller: Path is the raw, still-escaped path, exactly as sent.
package h1

import "errors"

const (
	// MaxHeadSize bounds a request head, request line to blank line. Larger
	// heads are ErrUnsupported and go to net/http, which applies its own,
	// larger limit and answers 431 when it is hit.
	MaxHeadSize = 16 << 10
	// MaxHeaders bounds the number of header lines.
	MaxHeaders = 100
	// maxContentLengthDigits keeps Content-Length well inside int64.
	maxContentLengthDigits = 18
)

var (
	// ErrIncomplete means buf holds a valid beginning of a head in the
	// subset but not its end yet: read more and call Parse again with all
	// the bytes.
	ErrIncomplete = errors.New("h1: incomplete message head")
	// ErrUnsupported means the head is outside the subset, or not HTTP at
	// all. The caller hands the connection, with every byte read so far,
	// to net/http, which answers it properly (a response or a 4xx).
	ErrUnsupported = errors.New("h1: message head outside the fast-path subset")
)

// Header is one header line. Name and Value point into the buffer given to
// Parse; Value has surrounding SP/HTAB removed.
type Header struct {
	Name, Value []byte
}

// Request is a parsed request head. Every byte slice points into the buffer
// given to Parse, so a Request is valid only while that buffer is unchanged.
// Reusing one Request for every request on a connection reuses its Headers
// array, which makes parsing allocation-free.
type Request struct {
	// Method is one of the seven accepted methods, as a constant string.
	Method string
	// Target is the raw request-target: Path, then "?" and Query if present.
	Target []byte
	// Path is the raw path, still percent-encoded; it starts with "/".
	Path []byte
	// Query is the raw query after the first "?": nil without a "?", empty
	// but not nil for a target ending in a lone "?".
	Query []byte
	// Host is the Host header's value.
	Host []byte
	// ContentLength is the Content-Length header's value, or -1 when there
	// is none (net/http reports 0 then: no body either way).
	ContentLength int64
	// Close reports "Connection: close": the connection ends after the
	// response. The protocol is always HTTP/1.1, so no header means
	// keep-alive.
	Close bool
	// Headers lists every header line in order, Host, Content-Length and
	// Connection included, with names as sent.
	Headers []Header
	// RemoteAddr is the client's address; Server sets it, Parse does not.
	RemoteAddr string
}

// HasBody reports whether a request body follows the head.
func (r *Request) HasBody() bool { return r.ContentLength > 0 }

// Get returns the value of the first header named name, compared without
// regard to ASCII case, or nil when there is none. name must be ASCII.
func (r *Request) Get(name string) []byte { return headerValue(r.Headers, name) }

func headerValue(hs []Header, name string) []byte {
	for i := range hs {
		if equalFoldASCII(hs[i].Name, name) {
			return hs[i].Value
		}
	}
	return nil
}

// Parse parses one request head at the start of buf. On success n is the
// length of the head including its blank line; a body, or the next
// pipelined request, starts at buf[n]. Otherwise err is ErrIncomplete or
// ErrUnsupported and r is partly filled and meaningless.
//
// Parse stops at the first byte outside the subset, so input that cannot
// become a supported head is refused before it is complete: the caller can
// hand off without waiting for more bytes. Only the first MaxHeadSize bytes
// of buf are examined.
func (r *Request) Parse(buf []byte) (n int, err error) {
	p := parser{buf: buf}
	if len(p.buf) > MaxHeadSize {
		p.buf = p.buf[:MaxHeadSize]
	}
	n, err = p.parse(r)
	if err == ErrIncomplete && len(buf) >= MaxHeadSize {
		err = ErrUnsupported // no end within MaxHeadSize: too large for us
	}
	return n, err
}

type parser struct {
	buf []byte
	i   int
}

func (p *parser) parse(r *Request) (int, error) {
	*r = Request{Headers: r.Headers[:0], ContentLength: -1}
	if err := p.requestLine(r); err != nil {
		return 0, err
	}
	var seenHost, seenLength, seenConnection bool
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
			if !seenHost {
				return 0, ErrUnsupported
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
		f := fieldOf(name)
		if f == fieldRefused { // refuse before the value arrives
			return 0, ErrUnsupported
		}
		value, err := p.headerValue()
		if err != nil {
			return 0, err
		}
		switch f {
		case fieldHost:
			if seenHost || !validHost(value) {
				return 0, ErrUnsupported
			}
			seenHost = true
			r.Host = value
		case fieldContentLength:
			if seenLength {
				return 0, ErrUnsupported
			}
			seenLength = true
			if r.ContentLength = parseContentLength(value); r.ContentLength < 0 {
				return 0, ErrUnsupported
			}
		case fieldConnection:
			if seenConnection {
				return 0, ErrUnsupported
			}
			seenConnection = true
			switch {
			case equalFoldASCII(value, "close"):
				r.Close = true
			case equalFoldASCII(value, "keep-alive"):
			default:
				return 0, ErrUnsupported
			}
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: value})
	}
}

// requestLine parses "METHOD SP origin-form SP HTTP/1.1 CRLF".
func (p *parser) requestLine(r *Request) error {
	b := p.buf
	sp := 0
	for ; sp < len(b) && b[sp] != ' '; sp++ {
		if sp == len("OPTIONS") || b[sp] < 'A' || b[sp] > 'Z' {
			return ErrUnsupported
		}
	}
	if sp == len(b) {
		return ErrIncomplete
	}
	switch string(b[:sp]) { // no allocation: the compiler compares in place
	case "GET":
		r.Method = "GET"
	case "HEAD":
		r.Method = "HEAD"
	case "POST":
		r.Method = "POST"
	case "PUT":
		r.Method = "PUT"
	case "DELETE":
		r.Method = "DELETE"
	case "PATCH":
		r.Method = "PATCH"
	case "OPTIONS":
		r.Method = "OPTIONS"
	default:
		return ErrUnsupported
	}

	start := sp + 1
	i := start
	if i >= len(b) {
		return ErrIncomplete
	}
	if b[i] != '/' {
		return ErrUnsupported
	}
	query := -1 // index of the query's first byte
	for ; ; i++ {
		if i >= len(b) {
			return ErrIncomplete
		}
		c := b[i]
		if c == ' ' {
			break
		}
		switch {
		case c == '%':
			if err := percentEscape(b, i); err != nil {
				return err
			}
			i += 2
		case c == '?' && query < 0:
			query = i + 1
		case query < 0 && charClass[c]&classPath == 0,
			query >= 0 && charClass[c]&classQuery == 0:
			return ErrUnsupported
		}
	}
	r.Target = b[start:i]
	if query < 0 {
		r.Path = r.Target
	} else {
		r.Path = b[start : query-1]
		r.Query = b[query:i]
	}
	i++

	const proto = "HTTP/1.1\r\n"
	for k := 0; k < len(proto); k++ {
		if i+k >= len(b) {
			return ErrIncomplete
		}
		if b[i+k] != proto[k] {
			return ErrUnsupported
		}
	}
	p.i = i + len(proto)
	return nil
}

// percentEscape checks the %XX escape at b[i].
func percentEscape(b []byte, i int) error {
	for k := 1; k <= 2; k++ {
		if i+k >= len(b) {
			return ErrIncomplete
		}
		if charClass[b[i+k]]&classHex == 0 {
			return ErrUnsupported
		}
	}
	return nil
}

// headerName parses "name:" at p.i.
func (p *parser) headerName() ([]byte, error) {
	b := p.buf
	start := p.i
	i := start
	for i < len(b) && charClass[b[i]]&classToken != 0 {
		i++
	}
	switch {
	case i == len(b):
		return nil, ErrIncomplete
	case b[i] != ':', i == start:
		return nil, ErrUnsupported // also SP/HTAB: obs-fold or space before ':'
	}
	p.i = i + 1
	return b[start:i], nil
}

// headerValue parses "OWS value OWS CRLF" at p.i and returns value.
func (p *parser) headerValue() ([]byte, error) {
	b := p.buf
	i := p.i
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	start := i
	for i < len(b) && charClass[b[i]]&classValue != 0 {
		i++
	}
	switch {
	case i == len(b):
		return nil, ErrIncomplete
	case b[i] != '\r':
		return nil, ErrUnsupported // bare LF, NUL, other controls, DEL
	case i+1 == len(b):
		return nil, ErrIncomplete
	case b[i+1] != '\n':
		return nil, ErrUnsupported // bare CR
	}
	end := i
	for end > start && (b[end-1] == ' ' || b[end-1] == '\t') {
		end--
	}
	p.i = i + 2
	return b[start:end], nil
}

type field uint8

const (
	fieldOther field = iota
	fieldHost
	fieldContentLength
	fieldConnection
	fieldRefused // headers whose semantics only net/http implements
)

func fieldOf(name []byte) field {
	switch len(name) {
	case 2:
		if equalFoldASCII(name, "te") {
			return fieldRefused
		}
	case 4:
		if equalFoldASCII(name, "host") {
			return fieldHost
		}
	case 6:
		if equalFoldASCII(name, "expect") {
			return fieldRefused
		}
	case 7:
		if equalFoldASCII(name, "upgrade") {
			return fieldRefused
		}
	case 10:
		if equalFoldASCII(name, "connection") {
			return fieldConnection
		}
	case 14:
		if equalFoldASCII(name, "content-length") {
			return fieldContentLength
		}
	case 17:
		if equalFoldASCII(name, "transfer-encoding") {
			return fieldRefused
		}
	}
	return fieldOther
}

// parseContentLength returns the value of 1 to 18 digits without leading
// zeros, or -1.
func parseContentLength(v []byte) int64 {
	if len(v) == 0 || len(v) > maxContentLengthDigits || (v[0] == '0' && len(v) > 1) {
		return -1
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// validHost accepts host [":" port] where host is reg-name/IPv4 made of
// unreserved characters or a bracketed IPv6 literal, and port is 1 to 5
// digits.
func validHost(v []byte) bool {
	i := 0
	if len(v) > 0 && v[0] == '[' {
		i = 1
		for i < len(v) && (charClass[v[i]]&classHex != 0 || v[i] == ':' || v[i] == '.') {
			i++
		}
		if i == 1 || i == len(v) || v[i] != ']' {
			return false
		}
		i++
	} else {
		for i < len(v) && charClass[v[i]]&classUnreserved != 0 {
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(v) {
		return true
	}
	if v[i] != ':' {
		return false
	}
	port := v[i+1:]
	if len(port) == 0 || len(port) > 5 {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// equalFoldASCII compares b with the ASCII string s, ignoring ASCII case.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

const (
	classToken      = 1 << iota // RFC 9110 tchar
	classPath                   // RFC 3986 pchar without '%', plus '/'
	classQuery                  // classPath plus '?'
	classValue                  // field-value bytes: VCHAR, SP, HTAB, obs-text
	classHex                    // HEXDIG
	classUnreserved             // RFC 3986 unreserved
)

var charClass = func() (t [256]uint8) {
	set := func(class uint8, chars string) {
		for i := range len(chars) {
			t[chars[i]] |= class
		}
	}
	const (
		alpha      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		digit      = "0123456789"
		unreserved = alpha + digit + "-._~"
		subDelims  = "!$&'()*+,;="
	)
	set(classToken, alpha+digit+"!#$%&'*+-.^_`|~")
	set(classPath|classQuery, unreserved+subDelims+":@/")
	set(classQuery, "?")
	set(classHex, digit+"ABCDEFabcdef")
	set(classUnreserved, unreserved)
	for c := 0x20; c < 0x100; c++ {
		if c != 0x7f {
			t[c] |= classValue
		}
	}
	t['\t'] |= classValue
	return t
}()
