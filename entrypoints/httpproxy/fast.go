package httpproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/internal/h1"
	"github.com/sluicegw/sluice/mediation"
)

// Upstream is what a backend offers the fast path: a keep-alive pool of
// plain HTTP/1.1 connections, and how long to wait for a response head. A
// backend that cannot be served so (https://, h2c) returns a nil pool and
// goes through Transport.
type Upstream interface {
	Upstream() (pool *h1.Pool, readTimeout time.Duration)
}

// fastable reports whether every member can be served by the fast path.
func fastable(members []Member) bool {
	for _, m := range members {
		u, ok := m.(Upstream)
		if !ok {
			return false
		}
		if p, _ := u.Upstream(); p == nil {
			return false
		}
	}
	return len(members) > 0
}

// errNoResponse marks failures after the request was (perhaps) sent and
// before any response byte came back.
var errNoResponse = errors.New("backend closed the connection without a response")

// serveFast forwards r to a backend over the pool's keep-alive connections
// and copies the response straight into the client's connection buffer:
// the data path of plain HTTP/1.1 proxy traffic. It keeps ReverseProxy's
// behaviour: the same rewritten target, hop-by-hop headers dropped in both
// directions, X-Forwarded-*, streaming bodies flushed as they arrive, and
// the pool's retries on another backend.
func (e *Entrypoint) serveFast(w *h1.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	p := e.pool
	hasBody := r.ContentLength > 0
	var tried []Member
	var lastErr error
	for attempt := 0; attempt < p.attempts; attempt++ {
		m := p.pick(tried)
		if m == nil {
			break
		}
		tried = append(tried, m)
		up, readTimeout := m.(Upstream).Upstream()
		sent, err := e.exchange(w, r, x, m, up, readTimeout)
		if err == nil {
			return
		}
		if sent == sentResponse {
			w.SetClosing() // the response began: all we can do is cut it
			return
		}
		m.Report(false)
		lastErr = err
		if !p.mayRetry(sent == sentNothing, r.Method, !hasBody) { // a streamed body is gone
			break
		}
	}
	if hasBody {
		w.SetClosing() // the body may be half read
	}
	mediation.WriteProblem(w, http.StatusBadGateway, "Backend unreachable", fmt.Sprint(lastErr), nil)
}

// How far an exchange got before it failed.
type progress int

const (
	sentNothing  progress = iota // no connection: another backend may take it
	sentRequest                  // the request may have reached the backend
	sentResponse                 // the client has part of the response
)

// exchange runs one attempt on backend m. A reused connection that fails
// before any response byte (the backend closed it while idle) is retried once
// on a new connection when the request has no body.
func (e *Entrypoint) exchange(w *h1.ResponseWriter, r *http.Request, x *mediation.Exchange, m Member, up *h1.Pool, readTimeout time.Duration) (progress, error) {
	ctx := r.Context()
	for try := 0; ; try++ {
		get := up.Get
		if try > 0 {
			get = up.Fresh
		}
		c, err := get(ctx)
		if err != nil {
			return sentNothing, err
		}
		resp, err := e.send(w, c, r, x, m.Target(), readTimeout)
		if err != nil {
			_ = c.Close()
			if c.Reused && errors.Is(err, errNoResponse) && r.ContentLength <= 0 && try == 0 {
				continue
			}
			return sentRequest, err
		}
		m.Report(resp.Status != http.StatusBadGateway && resp.Status != http.StatusServiceUnavailable &&
			resp.Status != http.StatusGatewayTimeout)
		if err := e.relay(w, r, c, resp); err != nil {
			_ = c.Close()
			return sentResponse, err // the head is out: the caller cuts the connection
		}
		return sentResponse, nil
	}
}

// send writes the request and reads the response head (left in c.R).
func (e *Entrypoint) send(w *h1.ResponseWriter, c *h1.Conn, r *http.Request, x *mediation.Exchange, target *url.URL, readTimeout time.Duration) (*h1.Response, error) {
	e.writeRequestHead(c.W, r, x, target)
	c.SetReadTimeout(readTimeout) // for the head; relay lifts it for a body that streams
	var werr error
	if r.ContentLength > 0 {
		// The body goes out as the client sends it: a backend that stops
		// taking it for readTimeout is given up, or a client that leaves
		// meanwhile would hold this connection for good.
		body := clientBody{r: r.Body, progress: func() { c.SetWriteTimeout(readTimeout) }}
		defer c.ClearWriteTimeout()
		n, err := io.Copy(c.W, &body)
		switch {
		case body.err != nil || (err == nil && n != r.ContentLength):
			return nil, fmt.Errorf("reading the request body: %w", cmpErr(body.err, io.ErrUnexpectedEOF))
		case err != nil:
			werr = err // the backend stopped taking the body
		}
	}
	if werr == nil {
		werr = c.W.Flush()
	}
	c.SetReadTimeout(readTimeout) // again: the upload may have taken a while
	if werr != nil {
		// A backend may answer before it read the whole request (a 413, a
		// 401) and close: its answer is what the client should get.
		resp, err := readResponseHead(c)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errNoResponse, werr)
		}
		resp.Close = true // the request did not go through whole: the connection is done
		w.SetClosing()    // and the client's body may be unread: so is the client's
		return resp, nil
	}
	return readResponseHead(c)
}

// writeRequestHead writes the head of the request to a backend at target:
// the rewritten path and the query, hop-by-hop headers dropped,
// X-Forwarded-* set, and the body's Content-Length.
func (e *Entrypoint) writeRequestHead(bw *bufio.Writer, r *http.Request, x *mediation.Exchange, target *url.URL) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString((&url.URL{Path: joinPath(target.Path, x.RelativePath)}).EscapedPath())
	if r.URL.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(target.Host)
	bw.WriteString("\r\n")
	trusted := fromTrusted(r.RemoteAddr, e.cfg.trusted)
	nominated := r.Header["Connection"]
	for k, vs := range r.Header {
		if hopByHop(k, nominated) || k == "Content-Length" {
			continue
		}
		if !trusted && (k == "X-Forwarded-For" || k == "X-Forwarded-Host" || k == "X-Forwarded-Proto" || k == "Forwarded") {
			continue
		}
		if trusted && k == "X-Forwarded-For" {
			continue // extended below
		}
		for _, v := range vs {
			h1.WriteHeaderLine(bw, k, v)
		}
	}
	clientIP := r.RemoteAddr
	if h, _, err := net.SplitHostPort(clientIP); err == nil {
		clientIP = h
	}
	xff := clientIP
	if prior := r.Header["X-Forwarded-For"]; trusted && len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + clientIP
	}
	h1.WriteHeaderLine(bw, "X-Forwarded-For", xff)
	if !trusted || r.Header.Get("X-Forwarded-Host") == "" {
		h1.WriteHeaderLine(bw, "X-Forwarded-Host", r.Host)
	}
	if !trusted || r.Header.Get("X-Forwarded-Proto") == "" {
		h1.WriteHeaderLine(bw, "X-Forwarded-Proto", "http")
	}
	switch {
	case r.ContentLength > 0:
		h1.WriteHeaderLine(bw, "Content-Length", strconv.FormatInt(r.ContentLength, 10))
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
}

// clientBody reads the client's request body, keeping its error apart
// from the backend's write errors.
type clientBody struct {
	r        io.Reader
	err      error
	progress func() // after each read, before what was read is written
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.progress()
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// readResponseHead reads the final response head into c.Resp, skipping
// interim ones; the body follows in c.R.
func readResponseHead(c *h1.Conn) (*h1.Response, error) {
	resp := &c.Resp
	for {
		buf, _ := c.R.Peek(c.R.Buffered())
		n, err := resp.Parse(buf)
		if err == nil {
			_, _ = c.R.Discard(n)
			if resp.Status == http.StatusSwitchingProtocols { // upgrades never take the fast path
				return nil, errors.New("backend response: 101 Switching Protocols to a request without Upgrade")
			}
			if resp.Status < 200 {
				continue // interim (100 Continue, 103 Early Hints): the final head follows
			}
			return resp, nil
		}
		if err != h1.ErrIncomplete {
			return nil, fmt.Errorf("backend response: %w", err)
		}
		if _, err := c.R.Peek(len(buf) + 1); err != nil {
			if len(buf) == 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
				// closed or reset before answering: on a reused connection,
				// the backend dropped it while idle (net/http resends then too)
				return nil, fmt.Errorf("%w: %w", errNoResponse, err)
			}
			return nil, fmt.Errorf("backend response: %w", err)
		}
	}
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// relay writes the response head and body to the client, flushing whenever
// the backend has nothing more buffered so that streams flow event by event.
// The connection goes back to the pool when the response ended cleanly.
func (e *Entrypoint) relay(w *h1.ResponseWriter, r *http.Request, c *h1.Conn, resp *h1.Response) error {
	cw := w.Raw(resp.Status)
	kind := resp.BodyKind(r.Method)
	writeResponseHead(cw, resp, kind, w.Closing())

	bc := bodyCopy{dst: cw, c: c, w: w}
	var err error
	switch kind {
	case h1.BodyLength:
		err = bc.length(resp.ContentLength)
	case h1.BodyChunked:
		err = bc.chunked()
	case h1.BodyUntilClose:
		err = bc.untilClose()
	}
	watchClosed := bc.stopWatch() // before the connection is reused: the watch may close it
	if err != nil {
		return err
	}
	if kind == h1.BodyUntilClose || resp.Close || watchClosed {
		_ = c.Close()
	} else {
		c.Put()
	}
	return nil
}

// writeResponseHead writes the client's head for the backend's response:
// hop-by-hop headers dropped, and the body chunked when the backend's is
// chunked or runs until the close.
func writeResponseHead(cw *bufio.Writer, resp *h1.Response, kind h1.BodyKind, closing bool) {
	cw.WriteString("HTTP/1.1 ")
	// three digits (h1 parses no other), written bytewise: formatting
	// would allocate
	cw.WriteByte(byte('0' + resp.Status/100))
	cw.WriteByte(byte('0' + resp.Status/10%10))
	cw.WriteByte(byte('0' + resp.Status%10))
	cw.WriteByte(' ')
	cw.Write(resp.Reason)
	cw.WriteString("\r\n")
	var nominated []string
	for _, h := range resp.Headers {
		if strings.EqualFold(string(h.Name), "Connection") {
			nominated = append(nominated, string(h.Value))
		}
	}
	for _, h := range resp.Headers {
		if hopByHopName(h.Name, nominated) {
			continue
		}
		cw.Write(h.Name)
		cw.WriteString(": ")
		cw.Write(h.Value)
		cw.WriteString("\r\n")
	}
	if kind == h1.BodyChunked || kind == h1.BodyUntilClose {
		cw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if closing {
		cw.WriteString("Connection: close\r\n")
	}
	cw.WriteString("\r\n")
}

// hopByHop reports headers that belong to one connection, not the message:
// RFC 9110's list, and those the Connection header nominates. name is
// canonical (from an http.Header).
func hopByHop(name string, nominated []string) bool {
	return slices.Contains(hopByHopHeaders[:], name) || isNominated(name, nominated)
}

// hopByHopName is hopByHop for a name as a backend sent it, in any case.
func hopByHopName(name []byte, nominated []string) bool {
	for _, h := range hopByHopHeaders {
		if len(name) == len(h) && strings.EqualFold(string(name), h) {
			return true
		}
	}
	return isNominated(string(name), nominated)
}

// hopByHopHeaders is RFC 9110's list of connection-specific headers.
var hopByHopHeaders = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// isNominated reports name among the tokens of the Connection values.
func isNominated(name string, nominated []string) bool {
	for _, v := range nominated {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}
