package h1

import (
	"bufio"
	"errors"
	"time"
)

// Event loops. Server.ServeLoops (Linux) serves connections on one epoll
// loop per core over non-blocking sockets, instead of a goroutine per
// connection: no goroutine wakes up per request, which is what keeps a
// goroutine-per-connection proxy from nginx's latency and throughput (see
// BENCHMARKS.md). The Handler runs on the loop for each request; it must not
// block. A handler that proxies calls ResponseWriter.Forward, and the loop
// does the backend's I/O: it connects (or reuses a keep-alive connection of
// its own), sends the request, and relays the response as it arrives,
// reading the backend only as fast as the client takes the bytes.
//
// What a loop does not serve goes to the goroutine-per-connection path,
// with the connection and the bytes read so far: requests outside the
// parser's subset, heads or bodies larger than a loop's buffer, and every
// request for which the handler returns false (routes whose plans or
// policies may block, message APIs, upgrades).

// Progress tells how far a forwarded exchange got before it failed.
type Progress uint8

const (
	// SentNothing: no connection to the backend was made; another
	// backend may take the request whatever its method.
	SentNothing Progress = iota
	// SentRequest: the request may have reached the backend, and no
	// response byte came back.
	SentRequest
)

// Forward is an exchange a handler on an event loop passes on to a backend
// (ResponseWriter.Forward). The loop calls its methods on the loop, one at a
// time; none may block.
type Forward interface {
	// Next chooses the backend of the next attempt and writes the
	// request head for it to bw; the loop sends the request body (which
	// it holds whole) after it. prev is the previous attempt's failure and
	// how far it got, nil for the first. ok false ends the attempts: the
	// loop then calls Fail with prev.
	Next(bw *bufio.Writer, prev error, p Progress) (pool *Pool, readTimeout time.Duration, ok bool)
	// WriteHead writes the client's response head for the backend's, to
	// bw, once per exchange. kind is how the backend frames the body: the
	// loop passes a BodyLength body on as it comes and sends BodyChunked
	// and BodyUntilClose bodies chunked, so the head says
	// "Transfer-Encoding: chunked" for those two. closing asks for
	// "Connection: close".
	WriteHead(bw *bufio.Writer, resp *Response, kind BodyKind, closing bool)
	// Fail answers the client when no attempt brought a response head; w
	// has nothing written.
	Fail(w *ResponseWriter, err error)
	// Done is called last, once, when the loop is finished with the
	// exchange: the response relayed, failed or cut, the client gone, or
	// the server closed.
	Done()
}

// Errors of forwarded exchanges, as Next and Fail see them.
var (
	// ErrBackendTimeout: no response head within the read timeout, or no
	// connection within the pool's ConnectTimeout.
	ErrBackendTimeout = errors.New("h1: backend timed out")
	// ErrNoResponse: the backend closed the connection without a
	// response.
	ErrNoResponse = errors.New("h1: backend closed the connection without a response")
)
