package h1

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Addr is the backend's host:port.
	Addr string
	// ConnectTimeout bounds a dial; 0 is none.
	ConnectTimeout time.Duration
	// IdleTimeout closes connections idle that long; 0 keeps them.
	IdleTimeout time.Duration
	// MaxConns caps the connections open at once; 0 is unlimited. Get
	// blocks while the cap is reached, for ConnectTimeout at most.
	MaxConns int
	// MaxIdle caps the idle connections kept; default 256.
	MaxIdle int
}

// Pool keeps plain-TCP HTTP/1.1 connections to one backend alive between
// requests. Its connections carry one request at a time: a caller Gets one,
// writes a request, reads the whole response, and Puts it back (or Closes
// it when the exchange did not end cleanly).
type Pool struct {
	cfg    PoolConfig
	dialer net.Dialer
	slots  chan struct{} // MaxConns tokens; nil when unlimited

	mu     sync.Mutex
	idle   []*Conn // most recently used last
	closed bool

	// For event loops, which keep connections of their own: the address
	// resolved (a *loopAddr) and whether a refresh runs.
	loopAddr  atomic.Value
	resolving atomic.Bool
	isClosedF atomic.Bool
}

// MaxConns is the cap on open connections, 0 for none.
func (p *Pool) MaxConns() int { return p.cfg.MaxConns }

// isClosed reports whether Close was called.
func (p *Pool) isClosed() bool { return p.isClosedF.Load() }

// NewPool returns an empty pool; connections are dialled on demand.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 256
	}
	p := &Pool{cfg: cfg, dialer: net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}}
	if cfg.MaxConns > 0 {
		p.slots = make(chan struct{}, cfg.MaxConns)
	}
	return p
}

// Conn is one backend connection of a Pool. Write a request to W and
// flush it; then parse the response head into Resp from R's buffer and read the
// body from R.
type Conn struct {
	net.Conn
	R *bufio.Reader
	W *bufio.Writer
	// Resp is for the caller to parse response heads into: its Headers
	// array is reused from one response to the next.
	Resp Response
	// Reused reports that the connection served a request before: a
	// failure before any response byte may be the backend having closed it
	// while idle, and a request that can be resent may go on a new one.
	Reused bool

	pool          *Pool
	idleSince     time.Time
	readDeadline  lazyDeadline
	writeDeadline lazyDeadline
}

// ErrPoolClosed is returned by Get after Close.
var ErrPoolClosed = errors.New("h1: backend pool closed")

// Get returns an idle connection, or dials a new one. It blocks while
// MaxConns connections are open, until one is released or ctx ends.
func (p *Pool) Get(ctx context.Context) (*Conn, error) {
	if c := p.takeIdle(); c != nil {
		return c, nil
	}
	return p.Fresh(ctx)
}

// Fresh is Get that never reuses an idle connection.
func (p *Pool) Fresh(ctx context.Context) (*Conn, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, ErrPoolClosed
	}
	if p.slots != nil {
		select {
		case p.slots <- struct{}{}:
		default:
			if err := p.waitSlot(ctx); err != nil {
				return nil, err
			}
		}
	}
	nc, err := p.dialer.DialContext(ctx, "tcp", p.cfg.Addr)
	if err != nil {
		p.release()
		return nil, err
	}
	return &Conn{Conn: nc, R: bufio.NewReaderSize(nc, 16<<10), W: bufio.NewWriterSize(nc, 16<<10), pool: p}, nil
}

// ErrPoolFull is Get's error when MaxConns connections stayed busy for
// ConnectTimeout.
var ErrPoolFull = errors.New("h1: all backend connections busy")

// waitSlot waits for a connection to be released, for ConnectTimeout at
// most: waiting for a free connection is part of connecting.
func (p *Pool) waitSlot(ctx context.Context) error {
	var timeout <-chan time.Time
	if p.cfg.ConnectTimeout > 0 {
		t := time.NewTimer(p.cfg.ConnectTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-timeout:
		return ErrPoolFull
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pool) takeIdle() *Conn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		idle := time.Since(c.idleSince)
		if p.cfg.IdleTimeout > 0 && idle > p.cfg.IdleTimeout {
			c.closeNow()
			continue
		}
		// A connection that waited a while may have been closed by the
		// backend (many keep connections for a few seconds only); a
		// request with a body sent on it could not be resent. Look
		// without waiting; under load connections wait microseconds and
		// skip the look.
		if idle > probeAfter {
			c.ClearReadTimeout() // an expired one would fail the look
			if !stillOpen(c.Conn) {
				c.closeNow()
				continue
			}
		}
		return c
	}
}

// probeAfter is how long a connection may sit idle before takeIdle checks
// that the backend kept it.
const probeAfter = time.Second

func (p *Pool) release() {
	if p.slots != nil {
		<-p.slots
	}
}

// Put returns a connection whose exchange ended cleanly (response read to
// its end, no "Connection: close") for the next request.
func (c *Conn) Put() {
	p := c.pool
	if c.R.Buffered() > 0 { // bytes past the response: the connection is out of step
		c.closeNow()
		return
	}
	c.Reused = true
	c.idleSince = time.Now()
	// The read deadline stays: SetReadTimeout renews it when needed, and
	// nothing reads an idle connection.
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.cfg.MaxIdle {
		p.mu.Unlock()
		c.closeNow()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// Close drops a connection whose exchange did not end cleanly.
func (c *Conn) Close() error {
	c.closeNow()
	return nil
}

func (c *Conn) closeNow() {
	_ = c.Conn.Close()
	c.pool.release()
}

// Close closes the idle connections; those in use close when put back.
func (p *Pool) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.isClosedF.Store(true)
	p.mu.Unlock()
	for _, c := range idle {
		c.closeNow()
	}
}

// SetReadTimeout makes the reads that follow fail no sooner than d from now
// and no later than 5/4 d; d <= 0 is no deadline. Setting a deadline costs a
// timer update per request, so one set for an earlier request is kept while
// it is at least d away.
func (c *Conn) SetReadTimeout(d time.Duration) { c.readDeadline.set(d, c.Conn.SetReadDeadline) }

// ClearReadTimeout removes the read deadline, before a read that may wait
// as long as the backend likes (a streamed body).
func (c *Conn) ClearReadTimeout() { c.readDeadline.set(0, c.Conn.SetReadDeadline) }

// SetWriteTimeout makes the writes that follow fail if the backend takes
// none of their bytes for d (to 5/4 d), renewed lazily as SetReadTimeout's
// is; d <= 0 is no deadline. It bounds a request body sent to a backend
// that stopped reading.
func (c *Conn) SetWriteTimeout(d time.Duration) { c.writeDeadline.set(d, c.Conn.SetWriteDeadline) }

// ClearWriteTimeout removes the write deadline.
func (c *Conn) ClearWriteTimeout() { c.writeDeadline.set(0, c.Conn.SetWriteDeadline) }

// lazyDeadline is a deadline as last set on a connection (zero: none),
// renewed only when the one set is nearer than the timeout asked for.
type lazyDeadline time.Time

func (l *lazyDeadline) set(d time.Duration, apply func(time.Time) error) {
	at := time.Time(*l)
	if d <= 0 {
		if !at.IsZero() {
			*l = lazyDeadline{}
			_ = apply(time.Time{})
		}
		return
	}
	now := time.Now()
	if !at.IsZero() && !at.Before(now.Add(d)) {
		return
	}
	at = now.Add(d + d/4)
	*l = lazyDeadline(at)
	_ = apply(at)
}
