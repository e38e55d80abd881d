package h1

import (
	"bufio"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// smallBody is how much of a response body ResponseWriter holds back to
// send it with a Content-Length; larger bodies, and flushed ones, are
// chunked.
const smallBody = 4 << 10

// ResponseWriter is the fast path's http.ResponseWriter. It frames a body by
// Content-Length when the handler sets one or finishes within smallBody,
// otherwise by chunked encoding, and it implements http.Flusher. It does not
// sniff a Content-Type and cannot be hijacked: upgrades never reach the fast
// path.
//
// A handler that produces a whole HTTP/1.1 response itself (the reverse
// proxy) calls Raw and writes it straight to the connection's buffer.
type ResponseWriter struct {
	cn      *conn // nil outside a Server
	bw      *bufio.Writer
	header  http.Header
	status  int
	headOut bool  // status line and headers are in bw
	chunked bool  // body framed by chunks
	length  int64 // declared Content-Length, -1 if none
	sent    int64 // body bytes written (for HEAD: that a GET would write)
	body    []byte
	noBody  bool // HEAD request, or a status without a body
	raw     bool
	isHead  bool
	// closing is set when the connection must end after this response:
	// the client asked, the server drains, or the body could not be framed.
	closing bool
	onLoop  bool    // served by an event loop: Forward is available
	forward Forward // set by Forward: the loop relays a backend's response
	// Finished, when a handler sets it, is called with the status once
	// the response is complete: after the handler returns, or after the
	// loop relayed a forwarded response.
	Finished func(status int)
}

func (w *ResponseWriter) reset(bw *bufio.Writer, isHead, closing bool) {
	clear(w.header)
	*w = ResponseWriter{cn: w.cn, bw: bw, header: w.header, body: w.body[:0], isHead: isHead, closing: closing, length: -1, onLoop: w.onLoop}
	if w.header == nil {
		w.header = http.Header{}
	}
}

// Header returns the response headers to set before WriteHeader or Write.
func (w *ResponseWriter) Header() http.Header { return w.header }

// WriteHeader records the status; it is sent with the first body bytes, a
// Flush, or the end of the handler.
func (w *ResponseWriter) WriteHeader(code int) {
	if w.status != 0 || code < 100 || code > 999 {
		return
	}
	if code < 200 { // informational answers are not supported here
		return
	}
	w.status = code
	w.noBody = w.isHead || code == http.StatusNoContent || code == http.StatusNotModified
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			w.header.Del("Content-Length")
		}
	}
}

// Write sends body bytes.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		w.sent += int64(len(p)) // for HEAD's Content-Length only
		return len(p), nil
	}
	if !w.headOut {
		if w.length < 0 && len(w.body)+len(p) <= smallBody {
			w.body = append(w.body, p...)
			return len(p), nil
		}
		w.writeHead(w.length < 0)
	}
	return w.writeBody(p)
}

// Flush sends what was written so far to the client.
func (w *ResponseWriter) Flush() {
	if w.raw {
		_ = w.bw.Flush()
		return
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headOut {
		w.writeHead(w.length < 0 && !w.noBody)
	}
	_ = w.bw.Flush()
}

// FlushError is Flush that reports a write error (http.ResponseController
// uses it).
func (w *ResponseWriter) FlushError() error {
	w.Flush()
	return w.bw.Flush() // a failed flush keeps its error: this returns it
}

// Raw hands the connection's buffered writer to a handler that writes a
// complete response itself: status line, headers ("Connection: close" when
// Closing says so) and a body framed by Content-Length or chunks. status is
// what metrics record. After Raw, no other method may be called but Flush
// and SetClosing. The server flushes the buffer after the handler returns.
func (w *ResponseWriter) Raw(status int) *bufio.Writer {
	w.raw, w.status, w.headOut = true, status, true
	return w.bw
}

// OnLoop reports whether the request is served by an event loop
// (Server.ServeLoops): the handler runs on the loop and must not block, and
// it passes backend exchanges on with Forward.
func (w *ResponseWriter) OnLoop() bool { return w.onLoop }

// Forward hands the exchange to the event loop, which sends the request to
// a backend and relays the response without blocking (see Forward). The
// handler returns right after, having written nothing. Outside a loop it
// does nothing and returns false.
func (w *ResponseWriter) Forward(f Forward) bool {
	if !w.onLoop || w.status != 0 {
		return false
	}
	w.forward = f
	return true
}

// Closing reports whether the connection ends after this response.
func (w *ResponseWriter) Closing() bool { return w.closing }

// SetClosing ends the connection after this response: a raw handler calls it
// when it could not finish the response it began, or wrote
// "Connection: close".
func (w *ResponseWriter) SetClosing() { w.closing = true }

// Status is the response's status code, 0 if nothing was written.
func (w *ResponseWriter) Status() int { return w.status }

// finish completes the response after the handler returned.
func (w *ResponseWriter) finish() error {
	if w.raw {
		return nil
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headOut {
		switch {
		case w.length >= 0:
		case !w.noBody:
			w.length = int64(len(w.body))
		case w.countsForHead() && w.sent <= smallBody:
			w.length = w.sent // what the GET would declare; a longer one is chunked
		}
		w.writeHead(false)
	}
	if w.chunked {
		_, err := w.bw.WriteString("0\r\n\r\n")
		return err
	}
	if !w.noBody && w.length >= 0 && w.sent < w.length {
		w.closing = true // the body fell short of its Content-Length: only the close can say so
	}
	return nil
}

// countsForHead: a HEAD answer carries the Content-Length a GET would.
func (w *ResponseWriter) countsForHead() bool {
	return w.isHead && w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

// writeHead writes the status line and headers, and the body held back.
func (w *ResponseWriter) writeHead(chunked bool) {
	w.headOut = true
	w.chunked = chunked && !w.noBody
	bw := w.bw
	bw.WriteString("HTTP/1.1 ")
	var num [20]byte
	bw.Write(strconv.AppendInt(num[:0], int64(w.status), 10))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(w.status))
	bw.WriteString("\r\n")
	for k, vs := range w.header {
		if k == "Connection" || k == "Transfer-Encoding" || k == "Content-Length" {
			// framing is this writer's; a handler may only ask to close
			if k == "Connection" && len(vs) > 0 && vs[0] == "close" {
				w.closing = true
			}
			continue
		}
		for _, v := range vs {
			WriteHeaderLine(bw, k, v)
		}
	}
	if _, ok := w.header["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	} else if w.length >= 0 && w.status != http.StatusNoContent {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], w.length, 10))
		bw.WriteString("\r\n")
	}
	if w.closing {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if len(w.body) > 0 && !w.noBody {
		body := w.body
		w.body = w.body[:0]
		_, _ = w.writeBody(body)
	}
}

func (w *ResponseWriter) writeBody(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if w.chunked {
		var size [16]byte
		w.bw.Write(strconv.AppendInt(size[:0], int64(len(p)), 16))
		w.bw.WriteString("\r\n")
		n, err := w.bw.Write(p)
		w.bw.WriteString("\r\n")
		return n, err
	}
	if w.length >= 0 { // never past the declared length: the rest would be a response of its own
		if rest := w.length - w.sent; int64(len(p)) > rest {
			n, _ := w.bw.Write(p[:rest])
			w.sent += int64(n)
			w.closing = true
			return n, http.ErrContentLength
		}
	}
	n, err := w.bw.Write(p)
	w.sent += int64(n)
	return n, err
}

// WriteHeaderLine writes "name: value\r\n", cutting the value at a CR
// or LF so that no value can split the message: for the responses here,
// and for the requests the proxy writes to backends.
func WriteHeaderLine(bw *bufio.Writer, name, value string) {
	bw.WriteString(name)
	bw.WriteString(": ")
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\r' || c == '\n' {
			value = value[:i] // net/http replaces them; a cut is as safe
			break
		}
	}
	bw.WriteString(value)
	bw.WriteString("\r\n")
}

// cachedDate is the Date header value, renewed once a second.
var cachedDate atomic.Pointer[dateValue]

type dateValue struct {
	sec  int64
	text string
}

func httpDate() string {
	now := time.Now()
	if d := cachedDate.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &dateValue{sec: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.text
}

// Interface guards.
var (
	_ http.ResponseWriter = (*ResponseWriter)(nil)
	_ http.Flusher        = (*ResponseWriter)(nil)
)
