package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Handler serves one request on the fast path. r and its byte slices are
// valid only during the call; body reads the request body (Content-Length
// bytes, or nothing). To let net/http serve the request instead, the handler
// returns false having written nothing and read no body: the connection,
// this request included, is handed off for the rest of its life.
type Handler func(w *ResponseWriter, r *Request, body io.Reader) (served bool)

// Server accepts connections and serves the requests in the fast-path subset
// with Handler; every connection it does not serve goes to Handoff, whose
// http.Server answers it as if it had accepted it itself.
type Server struct {
	Handler Handler
	Handoff *Handoff
	// ReadHeaderTimeout bounds reading a request head once it began; 0 is
	// none. IdleTimeout bounds the wait for the next request on a
	// keep-alive connection; 0 is none.
	ReadHeaderTimeout, IdleTimeout time.Duration

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]struct{}
	shutdown atomic.Bool

	loops         []waker // ServeLoops' event loops
	liveLoops     atomic.Int32
	forceClose    atomic.Bool // Shutdown's time is up: loops close everything
	stopListening func()      // ends the loops' listening socket; nil without loops
}

// waker is an event loop as Shutdown sees it.
type waker interface{ wakeUp() }

// maxDrain is how much of an unread request body the server reads away to
// keep a connection; a larger rest closes it.
const maxDrain = 256 << 10

// Serve accepts connections on ln until Shutdown; it returns
// http.ErrServerClosed then, or the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// out of file descriptors and the like: back off as net/http does
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		cn := &conn{srv: s, c: c, remote: c.RemoteAddr().String()}
		s.mu.Lock()
		if s.shutdown.Load() {
			s.mu.Unlock()
			_ = c.Close()
			continue
		}
		s.conns[cn] = struct{}{}
		s.mu.Unlock()
		go cn.serve()
	}
}

// adopt serves a connection an event loop passed on, with the bytes the
// loop read from it, on a goroutine of its own.
func (s *Server) adopt(c net.Conn, read []byte) {
	cn := &conn{srv: s, c: c, remote: c.RemoteAddr().String(), pending: read}
	s.mu.Lock()
	if s.shutdown.Load() && len(read) == 0 {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.conns[cn] = struct{}{}
	s.mu.Unlock()
	go cn.serve()
}

// Shutdown stops accepting, closes idle connections, and waits for the
// requests in progress to finish (their connections close after the
// response) or for ctx to end, when it closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.stopListening != nil {
		s.stopListening()
	}
	loops := s.loops
	s.mu.Unlock()
	wakeAll := func() {
		for _, l := range loops {
			l.wakeUp()
		}
	}
	wakeAll()
	defer func() {
		// The loops end once their last client is gone; on ctx's end,
		// at once.
		if ctx.Err() != nil {
			s.forceClose.Store(true)
			wakeAll()
		}
		for s.liveLoops.Load() > 0 {
			time.Sleep(time.Millisecond)
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() == 0 && s.liveLoops.Load() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				_ = c.c.Close()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// closeIdle closes the connections waiting for a request and returns how
// many remain busy.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			_ = c.c.Close()
		}
	}
	return len(s.conns)
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// conn is one client connection on the fast path.
type conn struct {
	srv  *Server
	c    net.Conn
	idle atomic.Bool // waiting for a request: Shutdown may close it

	remote     string // the client's address
	deadline   readDeadline
	buf        []byte // read buffer: buf[start:end] holds unparsed bytes
	start, end int
	req        Request
	w          ResponseWriter
	body       bodyReader
	watch      *clientWatch // while a handler watches for the client's end
	pending    []byte       // read by an event loop before it passed the connection on
}

var (
	readBufs  = sync.Pool{New: func() any { b := make([]byte, MaxHeadSize+4096); return &b }}
	writeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}
)

func (cn *conn) serve() {
	bp := readBufs.Get().(*[]byte)
	cn.buf = *bp
	cn.end = copy(cn.buf, cn.pending) // the loop's buffer is no larger
	cn.pending = nil
	bw := writeBufs.Get().(*bufio.Writer)
	bw.Reset(cn.c)
	handedOff := false
	defer func() {
		cn.stopWatch()
		if v := recover(); v != nil {
			// As net/http does: the connection ends, the process goes on.
			// ErrAbortHandler is a handler cutting a response it began.
			if v != http.ErrAbortHandler {
				log.Printf("h1: panic serving %s: %v\n%s", cn.remote, v, debug.Stack())
			}
			handedOff = false
		} else if !handedOff && cn.body.remaining > 0 {
			cn.linger(bw)
		}
		cn.srv.forget(cn)
		if !handedOff {
			_ = cn.c.Close()
		}
		bw.Reset(nil)
		writeBufs.Put(bw)
		readBufs.Put(bp)
	}()
	for {
		n, ok := cn.readHead()
		if !ok {
			return
		}
		if n == 0 { // outside the subset: net/http's
			handedOff = cn.handOff()
			return
		}
		cn.req.RemoteAddr = cn.remote
		closing := cn.req.Close || cn.srv.shutdown.Load()
		cn.w.reset(bw, cn.req.Method == http.MethodHead, closing)
		cn.w.cn = cn
		head := cn.start
		cn.start += n
		cn.body.reset(cn, cn.req.ContentLength)
		served := cn.srv.Handler(&cn.w, &cn.req, &cn.body)
		cn.stopWatch()
		if !served {
			cn.start = head
			handedOff = cn.handOff()
			return
		}
		if cn.srv.shutdown.Load() {
			cn.w.closing = true // draining: say so if the head is not out yet
		}
		err := cn.w.finish()
		if f := cn.w.Finished; f != nil {
			f(cn.w.status)
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil || cn.w.closing || !cn.body.drain() {
			return
		}
	}
}

func (cn *conn) stopWatch() {
	if cn.watch != nil {
		cn.watch.stop()
		cn.watch = nil
	}
}

// linger sends what is buffered and half-closes before the close, reading
// away what the client still sends for a while: closing a socket with
// unread input resets it, and the reset can destroy the response (a 413,
// say) before the client read it. net/http does the same.
func (cn *conn) linger(bw *bufio.Writer) {
	_ = bw.Flush()
	if cw, ok := cn.c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = cn.c.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, io.LimitReader(cn.c, maxDrain))
}

// lingerTime bounds linger's wait.
const lingerTime = 500 * time.Millisecond

// readHead reads until buf[start:] holds a whole head in the subset; n is
// its length, or 0 when it is outside the subset. ok is false when the
// connection ended (closed, idle or header timeout) before a request.
func (cn *conn) readHead() (n int, ok bool) {
	if cn.start == cn.end {
		cn.start, cn.end = 0, 0
	}
	for {
		if cn.end > cn.start {
			n, err := cn.req.Parse(cn.buf[cn.start:cn.end])
			switch err {
			case nil:
				return n, true
			case ErrUnsupported:
				return 0, true
			}
		}
		if cn.end == len(cn.buf) { // make room: move the partial head to the front
			cn.end = copy(cn.buf, cn.buf[cn.start:cn.end])
			cn.start = 0
		}
		waiting := cn.end == cn.start
		cn.idle.Store(waiting)
		if waiting && cn.srv.shutdown.Load() {
			return 0, false
		}
		if waiting {
			cn.deadline.arm(cn.c, idleWait, cn.srv.IdleTimeout)
		} else {
			cn.deadline.arm(cn.c, headWait, cn.srv.ReadHeaderTimeout)
		}
		m, err := cn.c.Read(cn.buf[cn.end:])
		cn.idle.Store(false)
		cn.end += m
		if err != nil && m == 0 {
			if cn.end > cn.start { // a partial head: let net/http answer it
				return 0, true
			}
			return 0, false
		}
	}
}

// handOff gives the connection, with the unparsed bytes, to net/http.
func (cn *conn) handOff() bool {
	if cn.srv.Handoff == nil {
		return false
	}
	cn.deadline.clear(cn.c)
	cn.srv.forget(cn)
	cn.srv.Handoff.Give(cn.c, cn.buf[cn.start:cn.end])
	return true
}

// bodyReader reads a Content-Length body: first what the head's read
// brought along, then from the connection, never past the body.
type bodyReader struct {
	cn        *conn
	remaining int64
	started   bool
}

func (b *bodyReader) reset(cn *conn, length int64) {
	*b = bodyReader{cn: cn, remaining: max(length, 0)}
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.remaining == 0 {
		return 0, io.EOF
	}
	b.started = true
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	cn := b.cn
	var n int
	var err error
	if cn.end > cn.start {
		n = copy(p, cn.buf[cn.start:cn.end])
		cn.start += n
	} else {
		cn.deadline.clear(cn.c)
		n, err = cn.c.Read(p)
	}
	b.remaining -= int64(n)
	if b.remaining == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// drain reads away what the handler left of the body, so that the next
// request starts where it should; false means the connection cannot go on.
func (b *bodyReader) drain() bool {
	if b.remaining == 0 {
		return true
	}
	if b.remaining > maxDrain {
		return false
	}
	_, err := io.Copy(io.Discard, b)
	return err == nil && b.remaining == 0
}

// readDeadline sets a connection's read deadline lazily: a deadline costs
// a timer update, and a keep-alive connection would renew its idle one on
// every request. The wait for a request keeps the deadline set for an
// earlier one while it is at least IdleTimeout away, so it ends no sooner
// than IdleTimeout and no later than 5/4 of it. The wait for the rest of a
// head is bounded once, when the head begins: a client that dribbles bytes
// does not push it back.
type readDeadline struct {
	kind waitKind
	at   time.Time // zero: none
}

type waitKind uint8

const (
	noWait   waitKind = iota
	idleWait          // for a request to begin
	headWait          // for the rest of a head
)

func (d *readDeadline) arm(c net.Conn, kind waitKind, timeout time.Duration) {
	if timeout <= 0 {
		d.clear(c)
		return
	}
	if d.kind == kind && kind == headWait {
		return
	}
	now := time.Now()
	if d.kind == kind && !now.Add(timeout).After(d.at) {
		return
	}
	at := now.Add(timeout)
	if kind == idleWait {
		at = at.Add(timeout / 4)
	}
	d.kind, d.at = kind, at
	_ = c.SetReadDeadline(at)
}

func (d *readDeadline) clear(c net.Conn) {
	if d.kind != noWait {
		*d = readDeadline{}
		_ = c.SetReadDeadline(time.Time{})
	}
}
