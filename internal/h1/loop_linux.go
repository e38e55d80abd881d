//go:build linux

package h1

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// loopBuf is the size of a connection's input buffer on a loop: a
	// request head and body must fit in it to be served there.
	loopBuf = MaxHeadSize + 4096
	// highWater is how much response a loop holds for a slow client
	// before it stops reading the backend.
	highWater = 256 << 10
	// sweepEvery is the granularity of a loop's timeouts.
	sweepEvery = 100 * time.Millisecond
	// maxFreeBufs bounds the input buffers a loop keeps for reuse.
	maxFreeBufs = 256
)

// LoopsSupported reports whether ServeLoops runs event loops here.
const LoopsSupported = true

// ServeLoops serves ln on n event loops (n <= 0: GOMAXPROCS-1, at least
// one) until
// Shutdown, and returns http.ErrServerClosed then. A listener that is not
// TCP is served by Serve instead. Connections the loops do not serve go on
// to the goroutine-per-connection path and from there, when needed, to
// Handoff.
func (s *Server) ServeLoops(ln net.Listener, n int) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return s.Serve(ln)
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	lfd := -1
	if cerr := rc.Control(func(fd uintptr) { lfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("h1: duplicating the listener: %w", err)
	}
	defer func() {
		s.mu.Lock()
		s.stopListening = nil // Shutdown calls it under mu: never after the close
		s.mu.Unlock()
		unix.Close(lfd)
	}()
	if n <= 0 {
		// One P stays free for the goroutines: handed-off connections,
		// streams, the admin API, broker clients, the collector. Without
		// it, each time a loop waits in the kernel the runtime takes its P
		// away and wakes threads to look for work (measured: four times
		// nginx's context switches per request, and a longer tail).
		n = max(1, runtime.GOMAXPROCS(0)-1)
	}
	s.mu.Lock()
	s.ln = ln
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.stopListening = func() {
		// Closing ln leaves this duplicate listening; shutdown(2) stops
		// the socket itself, so that new clients are refused at once
		// (and a waiting loop sees it readable, accepts nothing, and
		// forgets it), while the descriptor stays valid until the loops
		// are gone.
		_ = unix.Shutdown(lfd, unix.SHUT_RD)
	}
	var loops []*loop
	for range n {
		l, err := newLoop(s, lfd)
		if err != nil {
			s.mu.Unlock()
			for _, l := range loops {
				l.closeFds()
			}
			return err
		}
		loops = append(loops, l)
		s.loops = append(s.loops, l)
	}
	s.mu.Unlock()
	if s.shutdown.Load() {
		for _, l := range loops {
			l.closeFds()
		}
		return http.ErrServerClosed
	}
	for _, l := range loops {
		s.liveLoops.Add(1)
		go l.run()
	}
	for _, l := range loops {
		<-l.done
	}
	return http.ErrServerClosed
}

// loop is one event loop. Everything in it belongs to its goroutine, but
// done and the wake descriptor, which Shutdown uses.
type loop struct {
	srv       *Server
	ep        int
	wakeMu    sync.Mutex // orders wakeUp before the close of wake
	wake      int        // -1 once closed
	lfd       int
	listening bool

	conns map[int]*lconn
	idle  map[*Pool][]*lconn // keep-alive backend connections, most recent last
	free  [][]byte           // input buffers for reuse
	bw    *bufio.Writer      // writes into target
	sink  sliceWriter
	now   time.Time
	sweep time.Time // next timeout sweep
	done  chan struct{}
}

// lconn is a client's or a backend's connection on a loop. For a client,
// peer is the backend connection of the exchange in flight; for a
// backend, the client it answers (nil while idle).
type lconn struct {
	fd      int
	backend bool
	peer    *lconn
	in      []byte // bytes read and not consumed; a buffer from the loop
	out     []byte // bytes to write, from off on
	off     int
	eof     bool // the read side ended
	hup     bool // epoll said the peer closed or failed: read to the end
	more    bool // the last fill stopped at a full buffer: the kernel may hold more
	// deadline ends the current wait; zero is none.
	deadline time.Time
	waitKind waitKind

	// client
	remote  string
	req     Request
	w       ResponseWriter
	body    loopBody
	fwd     Forward // the exchange in flight, nil when none
	bodyAt  int     // where the body of the request in flight starts in in
	reqLen  int     // its head and body
	sent    []byte  // its head as last sent, for a resend
	rt      time.Duration
	status  int
	resent  bool // resent once on a fresh connection already
	rfull   bool // in is full: reading stopped until it is consumed
	closing bool // close once out is written
	passOn  bool // hand off to the goroutine path once out is written

	// backend
	pool       *Pool
	reused     bool
	connecting bool
	got        bool // a response byte came
	sendFailed bool
	headDone   bool
	paused     bool // client's output at highWater
	resp       Response
	kind       BodyKind
	remaining  int64
	chunks     ChunkScanner
	idleSince  time.Time
}

// sliceWriter appends to the slice it points to.
type sliceWriter struct{ p *[]byte }

func (w *sliceWriter) Write(b []byte) (int, error) {
	*w.p = append(*w.p, b...)
	return len(b), nil
}

// loopBody reads a request body the loop holds whole.
type loopBody struct{ p []byte }

func (b *loopBody) Read(p []byte) (int, error) {
	if len(b.p) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.p)
	b.p = b.p[n:]
	return n, nil
}

func newLoop(s *Server, lfd int) (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("h1: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("h1: eventfd: %w", err)
	}
	l := &loop{srv: s, ep: ep, wake: wake, lfd: lfd, conns: map[int]*lconn{}, idle: map[*Pool][]*lconn{}, done: make(chan struct{})}
	l.bw = bufio.NewWriterSize(&l.sink, 4096)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		l.closeFds()
		return nil, fmt.Errorf("h1: epoll: %w", err)
	}
	if err := l.listen(); err != nil {
		l.closeFds()
		return nil, err
	}
	return l, nil
}

// listen watches the listener; EPOLLEXCLUSIVE wakes one loop per
// connection, not all.
func (l *loop) listen() error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(l.lfd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, l.lfd, &ev); err != nil {
		return fmt.Errorf("h1: epoll: %w", err)
	}
	l.listening = true
	return nil
}

func (l *loop) closeFds() {
	l.wakeMu.Lock()
	unix.Close(l.wake)
	l.wake = -1
	l.wakeMu.Unlock()
	unix.Close(l.ep)
}

// wakeUp interrupts the loop's wait; any goroutine may call it, also after
// the loop ended (the descriptor's number may be another file's by then).
func (l *loop) wakeUp() {
	l.wakeMu.Lock()
	defer l.wakeMu.Unlock()
	if l.wake >= 0 {
		var one = [8]byte{1}
		_, _ = unix.Write(l.wake, one[:])
	}
}

func (l *loop) run() {
	runtime.LockOSThread()
	defer func() {
		for _, c := range l.conns { // clients first: their exchanges are Done
			if !c.backend {
				l.closeClient(c)
			}
		}
		for _, c := range l.conns {
			l.closeConn(c)
		}
		l.closeFds()
		l.srv.liveLoops.Add(-1)
		close(l.done)
	}()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(l.ep, events, int(sweepEvery/time.Millisecond))
		if err != nil && err != unix.EINTR {
			log.Printf("h1: event loop: %v", err)
			return
		}
		l.now = time.Now()
		for i := range max(n, 0) {
			ev := events[i]
			fd := int(ev.Fd)
			switch fd {
			case l.lfd:
				l.accept()
				continue
			case l.wake:
				var b [8]byte
				_, _ = unix.Read(l.wake, b[:]) // only the loop closes it
				continue
			}
			// A connection closed earlier in this batch may have its
			// descriptor reused by one opened since: the event is then
			// spurious for it, which reading or writing without blocking
			// shrugs off.
			if c := l.conns[fd]; c != nil {
				l.event(c, ev.Events)
			}
		}
		if !l.now.Before(l.sweep) {
			l.sweepTimeouts()
			l.sweep = l.now.Add(sweepEvery)
		}
		if l.srv.shutdown.Load() && l.drain() {
			return
		}
	}
}

// event handles what epoll reported for c. A panic in the code it runs (a
// Forward's methods, say) ends c's connection and its exchange, not the
// process: the handler's own are recovered in callHandler.
func (l *loop) event(c *lconn, events uint32) {
	defer func() {
		if v := recover(); v != nil {
			log.Printf("h1: event loop: panic on %s: %v\n%s", c.remote, v, debug.Stack())
			if c.backend && c.peer != nil {
				c = c.peer
			}
			if c.backend {
				l.closeConn(c)
			} else {
				l.closeClient(c)
			}
		}
	}()
	if events&(unix.EPOLLOUT|unix.EPOLLERR) != 0 {
		l.writable(c)
	}
	if c.fd >= 0 && events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.hup = c.hup || events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
		l.readable(c)
	}
}

// drain runs while the server shuts down: no more connections, idle ones
// closed, busy ones closed after their response. It reports when none
// remain.
func (l *loop) drain() bool {
	if l.listening {
		_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, l.lfd, nil) // still open: see ServeLoops
		l.listening = false
	}
	force := l.srv.forceClose.Load()
	clients := 0
	for _, c := range l.conns {
		switch {
		case c.backend:
		case force || (c.fwd == nil && c.off == len(c.out)):
			// Nothing in flight, nothing to write: at most a request
			// half sent, which net/http would wait for; a loop does not.
			l.closeClient(c)
		default:
			c.closing = true
			clients++
		}
	}
	return clients == 0
}

func (l *loop) accept() {
	for range 64 {
		fd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.EINTR, unix.ECONNABORTED:
			default:
				// Out of descriptors and the like: stop listening until
				// the next sweep rather than spin on a ready listener.
				_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, l.lfd, nil)
				l.listening = false
			}
			return
		}
		if l.srv.shutdown.Load() {
			unix.Close(fd)
			continue
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &lconn{fd: fd, remote: sockaddrString(sa)}
		c.w.onLoop = true
		if !l.register(c) {
			continue
		}
		l.wait(c, idleWait)
	}
}

// register adds c to the loop, edge-triggered for both directions.
func (l *loop) register(c *lconn) bool {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.fd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		unix.Close(c.fd)
		c.fd = -1
		return false
	}
	l.conns[c.fd] = c
	return true
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrInet6:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	}
	return ""
}

// wait sets c's deadline as the goroutine path's readDeadline does: an
// idle wait renewed per request, a head wait bounded once, from its
// first byte.
func (l *loop) wait(c *lconn, kind waitKind) {
	if kind == headWait && c.waitKind == headWait {
		return
	}
	c.waitKind = kind
	timeout := l.srv.IdleTimeout
	if kind == headWait {
		timeout = l.srv.ReadHeaderTimeout
	}
	c.deadline = time.Time{}
	if timeout > 0 {
		c.deadline = l.now.Add(timeout)
	}
}

func (l *loop) getBuf() []byte {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		return b
	}
	return make([]byte, 0, loopBuf)
}

func (l *loop) putBuf(b []byte) {
	if cap(b) == loopBuf && len(l.free) < maxFreeBufs {
		l.free = append(l.free, b[:0])
	}
}

// target points the loop's buffered writer at dst; callers Flush when done.
func (l *loop) target(dst *[]byte) *bufio.Writer {
	_ = l.bw.Flush()
	l.sink.p = dst
	return l.bw
}

// fill reads what c has for it, until the kernel has no more or c.in is
// full; it reports whether in filled up. A read that leaves room in the
// buffer took all there was: more bytes would bring a new edge, so it
// does not read again only to hear EAGAIN, unless the peer hung up, which
// the read after the data tells.
func (l *loop) fill(c *lconn) (full bool) {
	c.more = false
	for !c.eof {
		if c.in == nil {
			c.in = l.getBuf()
		}
		if len(c.in) == cap(c.in) {
			c.more = true
			return true
		}
		n, err := read(c.fd, c.in[len(c.in):cap(c.in)])
		switch {
		case n > 0:
			short := len(c.in)+n < cap(c.in)
			c.in = c.in[:len(c.in)+n]
			if short && !c.hup {
				return false
			}
		case err == unix.EAGAIN:
			return false
		case err == unix.EINTR:
		case err != nil:
			c.eof, c.closing = true, true
			c.sendFailed = true // a reset connection takes no more either
		default:
			c.eof = true
		}
	}
	return false
}

func (l *loop) readable(c *lconn) {
	if c.backend {
		l.backendReadable(c)
		return
	}
	if c.fwd != nil && c.rfull {
		return // reading resumes when the exchange in flight ends
	}
	c.rfull = l.fill(c)
	if c.fwd != nil {
		if c.eof {
			l.closeClient(c) // the client left while its request was in flight
		}
		return
	}
	l.drive(c)
}

func (l *loop) writable(c *lconn) {
	if c.backend && c.connecting {
		errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && errno != 0 {
			err = unix.Errno(errno)
		}
		if err != nil {
			l.backendFailed(c, dialError(err), SentNothing)
			return
		}
		if _, err := unix.Getpeername(c.fd); err != nil {
			return // a spurious event (see run): still connecting
		}
		c.connecting = false
		c.deadline = l.after(c.peer.rt)
	}
	l.flush(c)
	if c.fd >= 0 && !c.backend && c.peer != nil && c.peer.paused && len(c.out)-c.off < highWater {
		c.peer.paused = false
		l.backendReadable(c.peer)
	}
}

func (l *loop) after(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return l.now.Add(d)
}

func dialError(err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
}

// flush writes c.out; what the socket does not take now goes when
// EPOLLOUT says it can. A client whose response is out and that is
// closing is closed.
func (l *loop) flush(c *lconn) {
	for c.off < len(c.out) && !c.connecting {
		n, err := write(c.fd, c.out[c.off:])
		if n > 0 {
			c.off += n
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err == unix.EINTR {
			continue
		}
		if !c.backend {
			l.closeClient(c)
			return
		}
		// The backend stopped taking the request: it may have answered
		// already (a 413), which the read side will find.
		c.sendFailed = true
		c.out, c.off = c.out[:0], 0
		return
	}
	if c.off == len(c.out) {
		c.out, c.off = c.out[:0], 0
		if cap(c.out) > highWater {
			c.out = nil
		}
		switch {
		case c.backend || c.fwd != nil:
		case c.closing:
			l.closeClient(c)
		case c.passOn:
			l.handOff(c)
		case len(c.in) == 0:
			l.wait(c, idleWait) // from the end of the response, not its start
		}
	}
}

// drive serves the requests c has buffered, one after another, until one
// is forwarded, more bytes are needed, or the connection ends.
func (l *loop) drive(c *lconn) {
	for c.fd >= 0 && c.fwd == nil && !c.passOn {
		if c.closing || l.srv.shutdown.Load() {
			if c.off == len(c.out) {
				l.closeClient(c)
			}
			return
		}
		if len(c.in) == 0 {
			if c.in != nil {
				l.putBuf(c.in)
				c.in = nil
			}
			if c.eof {
				l.closeClient(c)
				return
			}
			if c.off == len(c.out) {
				l.wait(c, idleWait)
			} else {
				c.waitKind, c.deadline = noWait, time.Time{} // flush arms it
			}
			return
		}
		n, err := c.req.Parse(c.in)
		if err == ErrIncomplete && !c.rfull && !c.eof {
			l.wait(c, headWait)
			return
		}
		if err != nil { // outside the subset, or a head too large for a loop
			l.handOff(c)
			return
		}
		if c.req.ContentLength > int64(cap(c.in)-n) {
			l.handOff(c) // a body too large to hold: the goroutine path streams it
			return
		}
		total := n + int(max(c.req.ContentLength, 0))
		if len(c.in) < total {
			if c.eof {
				l.closeClient(c)
				return
			}
			l.wait(c, headWait) // the body's wait is bounded with the head's
			return
		}
		if !l.dispatch(c, n, total) {
			return
		}
		if c.rfull {
			c.rfull = l.fill(c)
		}
	}
}

// dispatch runs the handler for the request in c.in[:total] (head n). It
// reports whether the response is complete, so that the next request may
// be served.
func (l *loop) dispatch(c *lconn, n, total int) bool {
	c.waitKind, c.deadline = noWait, time.Time{}
	c.req.RemoteAddr = c.remote
	closing := c.req.Close || c.eof || l.srv.shutdown.Load()
	c.w.reset(l.target(&c.out), c.req.Method == http.MethodHead, closing)
	c.body.p = c.in[n:total]
	before := len(c.out)
	served, ok := l.callHandler(c, before)
	if !ok {
		return false // it panicked: the connection is closed
	}
	if !served {
		if f := c.w.forward; f != nil { // not the contract, but not a leak either
			c.w.forward = nil
			f.Done()
		}
		_ = l.bw.Flush()
		l.handOff(c)
		return false
	}
	if f := c.w.forward; f != nil {
		_ = l.bw.Flush()
		c.w.forward = nil
		c.fwd, c.bodyAt, c.reqLen, c.resent, c.status = f, n, total, false, 0
		l.attempt(c, nil, SentNothing)
		return false
	}
	_ = c.w.finish()
	_ = l.bw.Flush()
	c.reqLen = total
	l.complete(c, c.w.status)
	return c.fd >= 0
}

// callHandler runs the handler. A panic ends the connection, as net/http
// does, after the responses before this one (from before in c.out) are
// written; ok is false then.
func (l *loop) callHandler(c *lconn, before int) (served, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				log.Printf("h1: panic serving %s: %v\n%s", c.remote, v, debug.Stack())
			}
			_ = l.bw.Flush()
			c.out = c.out[:before]
			c.closing = true
			if f := c.w.forward; f != nil { // handed over before the panic
				c.w.forward = nil
				f.Done()
			}
			l.flush(c)
			served, ok = true, false
		}
	}()
	return l.srv.Handler(&c.w, &c.req, &c.body), true
}

func (l *loop) consume(c *lconn, n int) {
	c.in = c.in[:copy(c.in, c.in[n:])]
}

// handOff moves c to the goroutine-per-connection path, with what it read,
// once what the loop has to write to it is written.
func (l *loop) handOff(c *lconn) {
	if c.off < len(c.out) {
		c.passOn = true // flush comes back here
		return
	}
	c.passOn = false
	fd := c.fd
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, fd, nil)
	delete(l.conns, fd)
	c.fd = -1
	read := append([]byte(nil), c.in...)
	if c.in != nil {
		l.putBuf(c.in)
		c.in = nil
	}
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f) // a duplicate, on Go's netpoller
	_ = f.Close()
	if err != nil {
		return
	}
	l.srv.adopt(nc, read)
}

// attempt asks the exchange for its next backend and sends the request.
func (l *loop) attempt(c *lconn, prev error, p Progress) {
	for {
		c.sent = c.sent[:0]
		pool, rt, ok := c.fwd.Next(l.target(&c.sent), prev, p)
		_ = l.bw.Flush()
		if !ok {
			l.fail(c, prev)
			return
		}
		c.rt = rt
		b, err := l.backendConn(pool, false)
		if err != nil {
			prev, p = err, SentNothing
			continue
		}
		l.send(c, b)
		return
	}
}

func (l *loop) send(c, b *lconn) {
	b.peer, c.peer = c, b
	b.got, b.sendFailed, b.headDone, b.paused = false, false, false, false
	b.out = append(append(b.out, c.sent...), c.in[c.bodyAt:c.reqLen]...)
	if b.connecting {
		b.deadline = l.after(b.pool.cfg.ConnectTimeout)
		return
	}
	b.deadline = l.after(c.rt)
	l.flush(b)
}

// fail answers the client when every attempt failed.
func (l *loop) fail(c *lconn, err error) {
	_ = l.target(&c.out)
	c.fwd.Fail(&c.w, err)
	_ = c.w.finish()
	_ = l.bw.Flush()
	l.endExchange(c, c.w.status)
}

// endExchange completes the client's side of an exchange and goes on with
// its next request.
func (l *loop) endExchange(c *lconn, status int) {
	c.peer = nil
	l.release(c)
	l.complete(c, status)
	if c.fd < 0 {
		return
	}
	if c.rfull {
		c.rfull = l.fill(c)
	}
	l.drive(c)
}

// complete ends the request in c.in[:c.reqLen], whose response is in c.out:
// metrics, the bytes consumed, and the response sent on its way.
func (l *loop) complete(c *lconn, status int) {
	if f := c.w.Finished; f != nil {
		f(status)
	}
	l.consume(c, c.reqLen)
	c.closing = c.closing || c.w.closing
	l.flush(c)
}

// backendConn returns a keep-alive connection to the pool's backend, or a
// new one being connected.
func (l *loop) backendConn(p *Pool, fresh bool) (*lconn, error) {
	if !fresh {
		idle := l.idle[p]
		for len(idle) > 0 {
			b := idle[len(idle)-1]
			idle = idle[:len(idle)-1]
			l.idle[p] = idle
			if p.cfg.IdleTimeout > 0 && l.now.Sub(b.idleSince) > p.cfg.IdleTimeout {
				l.closeConn(b)
				continue
			}
			return b, nil
		}
	}
	if p.isClosed() {
		return nil, ErrPoolClosed
	}
	sa, err := p.loopSockaddr()
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	family := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, dialError(err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30) // as the goroutine pool's dialer
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, dialError(err)
	}
	b := &lconn{fd: fd, backend: true, pool: p, connecting: err != nil}
	if !l.register(b) {
		return nil, dialError(unix.EBADF)
	}
	return b, nil
}

func (l *loop) backendReadable(b *lconn) {
	c := b.peer
	if c == nil { // idle: EOF or bytes out of step end it
		var one [1]byte
		if _, err := read(b.fd, one[:]); err == unix.EAGAIN {
			return
		}
		l.dropIdle(b)
		return
	}
	for {
		if b.headDone && len(c.out)-c.off >= highWater {
			b.paused = true // the client's write side resumes it
			return
		}
		full := l.fill(b)
		if len(b.in) > 0 {
			b.got = true
		}
		l.relay(b)
		if b.fd < 0 || b.peer != c || !full {
			return
		}
	}
}

// relay parses the response head, then passes the body on to the client.
func (l *loop) relay(b *lconn) {
	c := b.peer
	for !b.headDone {
		n, err := b.resp.Parse(b.in)
		switch {
		case err == ErrIncomplete && len(b.in) == cap(b.in):
			l.backendFailed(b, fmt.Errorf("backend response: head larger than %d bytes", cap(b.in)), SentRequest)
			return
		case err == ErrIncomplete && b.eof && len(b.in) == 0:
			l.backendFailed(b, ErrNoResponse, SentRequest)
			return
		case err == ErrIncomplete && b.eof:
			l.backendFailed(b, errors.New("backend response: connection closed inside the head"), SentRequest)
			return
		case err == ErrIncomplete:
			return
		case err != nil:
			l.backendFailed(b, fmt.Errorf("backend response: %w", err), SentRequest)
			return
		case b.resp.Status == http.StatusSwitchingProtocols:
			l.backendFailed(b, errors.New("backend response: 101 Switching Protocols to a request without Upgrade"), SentRequest)
			return
		case b.resp.Status < 200: // interim: the final head follows
			l.consume(b, n)
			continue
		}
		b.kind = b.resp.BodyKind(c.req.Method)
		c.fwd.WriteHead(l.target(&c.out), &b.resp, b.kind, c.closing || c.w.closing)
		_ = l.bw.Flush()
		c.status = b.resp.Status
		b.headDone, b.remaining = true, b.resp.ContentLength
		b.chunks.Reset()
		if b.resp.Close {
			b.sendFailed = true // not to be reused
		}
		l.consume(b, n)
		b.deadline = time.Time{} // a stream may wait for its next bytes as long as the backend likes
	}
	done := false
	switch b.kind {
	case BodyNone:
		done = true
	case BodyLength:
		take := int(min(int64(len(b.in)), b.remaining))
		c.out = append(c.out, b.in[:take]...)
		l.consume(b, take)
		b.remaining -= int64(take)
		done = b.remaining == 0
	case BodyChunked:
		n, end, err := b.chunks.Scan(b.in)
		c.out = append(c.out, b.in[:n]...)
		l.consume(b, n)
		if err != nil {
			l.cut(b)
			return
		}
		done = end
	case BodyUntilClose:
		if len(b.in) > 0 {
			c.out = strconv.AppendInt(c.out, int64(len(b.in)), 16)
			c.out = append(append(append(c.out, "\r\n"...), b.in...), "\r\n"...)
			b.in = b.in[:0]
		}
		if b.eof {
			c.out = append(c.out, "0\r\n\r\n"...)
			done = true
		}
	}
	if !done && b.eof {
		l.cut(b)
		return
	}
	if done {
		l.finish(b)
		return
	}
	l.flush(c)
}

// finish ends an exchange whose response was relayed whole: the backend
// connection is kept when it is in step, and the client goes on.
func (l *loop) finish(b *lconn) {
	c := b.peer
	b.peer = nil
	p := b.pool
	if b.kind == BodyUntilClose || b.sendFailed || b.eof || len(b.in) > 0 || b.off < len(b.out) ||
		p.isClosed() || len(l.idle[p]) >= p.cfg.MaxIdle || (b.more && !l.drained(b)) {
		l.closeConn(b)
	} else {
		b.reused, b.idleSince = true, l.now
		b.deadline = l.after(p.cfg.IdleTimeout)
		if b.in != nil {
			l.putBuf(b.in)
			b.in = nil
		}
		l.idle[p] = append(l.idle[p], b)
	}
	l.endExchange(c, c.status)
}

// cut ends a response that began and cannot be finished: the client gets
// what came and then the close, which tells it the response is short.
func (l *loop) cut(b *lconn) {
	c := b.peer
	l.closeConn(b)
	c.peer, c.closing = nil, true
	l.release(c)
	if f := c.w.Finished; f != nil {
		f(c.status)
	}
	l.flush(c)
}

// backendFailed handles an attempt that failed before a response head.
func (l *loop) backendFailed(b *lconn, err error, p Progress) {
	c := b.peer
	reused, got, pool := b.reused, b.got, b.pool
	b.peer = nil
	l.closeConn(b)
	if c == nil {
		return
	}
	c.peer = nil
	// A kept connection the backend closed while it sat idle: the request
	// goes once more, on a new connection, when it has no body (net/http's
	// rule too).
	if reused && !got && errors.Is(err, ErrNoResponse) && c.req.ContentLength <= 0 && !c.resent {
		c.resent = true
		if nb, derr := l.backendConn(pool, true); derr == nil {
			l.send(c, nb)
			return
		} else {
			err, p = derr, SentNothing
		}
	}
	l.attempt(c, err, p)
}

// drained reports that the kernel holds nothing more from b: bytes past a
// response put the connection out of step, and no edge would tell of them.
func (l *loop) drained(b *lconn) bool {
	var one [1]byte
	_, err := read(b.fd, one[:])
	return err == unix.EAGAIN
}

func (l *loop) dropIdle(b *lconn) {
	idle := l.idle[b.pool]
	for i, x := range idle {
		if x == b {
			l.idle[b.pool] = append(idle[:i], idle[i+1:]...)
			break
		}
	}
	l.closeConn(b)
}

// closeClient closes a client's connection, and the backend connection of
// its exchange in flight, which is out of step.
func (l *loop) closeClient(c *lconn) {
	if b := c.peer; b != nil {
		b.peer = nil
		l.closeConn(b)
	}
	c.peer = nil
	l.release(c)
	l.closeConn(c)
}

// release ends the client's exchange in flight, if any (Forward.Done).
func (l *loop) release(c *lconn) {
	if f := c.fwd; f != nil {
		c.fwd = nil
		f.Done()
	}
}

func (l *loop) closeConn(c *lconn) {
	if c.fd < 0 {
		return
	}
	delete(l.conns, c.fd)
	unix.Close(c.fd) // also leaves the epoll set: the descriptor is not shared
	c.fd = -1
	if c.in != nil {
		l.putBuf(c.in)
		c.in = nil
	}
	c.out = nil
}

// sweepTimeouts ends the waits whose deadline passed.
func (l *loop) sweepTimeouts() {
	if !l.listening && !l.srv.shutdown.Load() {
		_ = l.listen()
	}
	for _, c := range l.conns {
		if c.fd < 0 || c.deadline.IsZero() || l.now.Before(c.deadline) {
			continue
		}
		switch {
		case !c.backend:
			l.closeClient(c)
		case c.peer == nil:
			l.dropIdle(c)
		case c.connecting:
			l.backendFailed(c, dialError(unix.ETIMEDOUT), SentNothing)
		default:
			l.backendFailed(c, ErrBackendTimeout, SentRequest)
		}
	}
	for p, idle := range l.idle {
		if len(idle) == 0 {
			delete(l.idle, p)
		} else if p.isClosed() {
			for _, b := range idle {
				l.closeConn(b)
			}
			delete(l.idle, p)
		}
	}
}

// loopAddr is a pool's backend address resolved for non-blocking connects.
type loopAddr struct {
	ip      net.IP // nil: the name could not be resolved (err)
	port    int
	err     error
	expires time.Time // zero for an IP literal
}

const (
	// resolveTTL is how long a backend name's address is used before it
	// is looked up again (in the background: the loop goes on with the
	// old one).
	resolveTTL = 30 * time.Second
	// resolveRetry is how soon a failed lookup is tried again.
	resolveRetry = time.Second
)

// errResolving is a connect's error while a backend name is looked up for
// the first time.
var errResolving = errors.New("h1: backend name not resolved yet")

// loopSockaddr returns the backend's address, a new value each time: a
// unix.Sockaddr is written to by Connect, and loops connect at once. An IP
// literal is parsed once. A name is looked up off the loop: until the
// first answer a connect fails at once (another backend may take the
// request), and later lookups refresh it in the background.
func (p *Pool) loopSockaddr() (unix.Sockaddr, error) {
	a, ok := p.loopAddr.Load().(*loopAddr)
	if !ok || (!a.expires.IsZero() && time.Now().After(a.expires)) {
		if a == nil {
			var err error
			if a, err = p.literalAddr(); err != nil {
				return nil, err
			}
		}
		if a == nil || a.ip == nil || !a.expires.IsZero() {
			p.resolveInBackground()
		}
		if a == nil {
			return nil, errResolving
		}
	}
	if a.ip == nil {
		return nil, a.err
	}
	if ip4 := a.ip.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: a.port}
		copy(sa.Addr[:], ip4)
		return sa, nil
	}
	sa := &unix.SockaddrInet6{Port: a.port}
	copy(sa.Addr[:], a.ip.To16())
	return sa, nil
}

// literalAddr returns the address when Addr holds an IP (stored for good),
// nil when it holds a name.
func (p *Pool) literalAddr() (*loopAddr, error) {
	host, port, err := net.SplitHostPort(p.cfg.Addr)
	if err != nil {
		return nil, err
	}
	portNum, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("backend port %q: %w", port, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, nil
	}
	a := &loopAddr{ip: ip, port: portNum}
	p.loopAddr.Store(a)
	return a, nil
}

// resolveInBackground looks the backend's name up on a goroutine of its
// own, one at a time; a failure is kept for resolveRetry (connects fail
// with it meanwhile, unless an earlier address is still there to use).
func (p *Pool) resolveInBackground() {
	if !p.resolving.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.resolving.Store(false)
		host, port, _ := net.SplitHostPort(p.cfg.Addr) // checked by literalAddr
		portNum, _ := strconv.Atoi(port)
		ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(p.cfg.ConnectTimeout, 5*time.Second))
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
		cancel()
		a := &loopAddr{port: portNum, expires: time.Now().Add(resolveTTL)}
		switch {
		case err == nil:
			a.ip = ips[0]
		default:
			if old, ok := p.loopAddr.Load().(*loopAddr); ok && old.ip != nil {
				a.ip = old.ip // keep using what worked
			}
			a.err, a.expires = fmt.Errorf("resolving backend %s: %w", host, err), time.Now().Add(resolveRetry)
		}
		p.loopAddr.Store(a)
	}()
}

// read and write are the system calls without the scheduler's bookkeeping
// (syscall.Syscall's entersyscall): on non-blocking descriptors they never
// block.
func read(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func write(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
