// Package tcpproxy is a TCP proxy for fault tests: it forwards every
// connection it accepts to a target address, and on demand drops open
// connections (CutAll), black-holes new ones (Pause) or resets them (Refuse),
// so that a test can simulate a dropped connection or a broker outage without
// touching the broker itself.
//
// A Proxy listens on 127.0.0.1 on a free port and is closed at the end of the
// test that created it; every goroutine it starts has ended when Close
// returns.
package tcpproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dialTimeout bounds the connection to the target, so that a target that
// does not answer cannot hold a client's connection forever.
const dialTimeout = 10 * time.Second

// mode is what the proxy does with a new connection.
type mode uint8

const (
	forwarding mode = iota // dial the target and copy both ways
	blackHole              // accept, then never read, write or close
	refusing               // accept, then reset at once
)

// Proxy forwards TCP connections to a target. Its methods are safe for
// concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	ctx    context.Context // ends on Close: aborts dials to the target
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection's goroutines

	mu     sync.Mutex
	mode   mode
	gen    uint64                // incremented by every cut: a dial that started before it is abandoned
	pairs  map[*pair]struct{}    // forwarded connections
	held   map[net.Conn]struct{} // black-holed connections
	closed bool

	accepted atomic.Int64
}

// pair is one forwarded connection: the client's side and the target's.
type pair struct {
	client, server net.Conn
	once           sync.Once
}

func (p *pair) close() {
	p.once.Do(func() {
		p.client.Close()
		p.server.Close()
	})
}

// New starts a proxy to target (host:port) on 127.0.0.1 and closes it when
// t's test ends. The target need not be up: a connection the proxy cannot
// forward is closed.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tcpproxy: listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ln:     ln,
		target: target,
		ctx:    ctx,
		cancel: cancel,
		pairs:  make(map[*pair]struct{}),
		held:   make(map[net.Conn]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(func() { p.Close() })
	return p
}

// Addr is the host:port clients connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address connections are forwarded to.
func (p *Proxy) Target() string { return p.target }

// Open is the number of connections being forwarded now. A test checks it
// to make sure a client really goes through the proxy (a broker that
// advertises its own address to clients would be reached around it).
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// Accepted is the number of connections accepted since the proxy started.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// CutAll closes every open connection, both ways, as a network failure
// would; new connections are forwarded as before.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutLocked()
}

// Pause simulates a broker that stopped answering: open connections are cut
// and new ones are accepted but black-holed (nothing is read, written or
// closed) until Resume, so clients see their requests time out.
func (p *Proxy) Pause() { p.setMode(blackHole) }

// Refuse simulates a broker that is down: open connections are cut and new
// ones are reset as soon as they are accepted, until Resume.
func (p *Proxy) Refuse() { p.setMode(refusing) }

// Resume forwards new connections again. Connections black-holed by Pause
// are closed, so that their clients reconnect.
func (p *Proxy) Resume() { p.setMode(forwarding) }

func (p *Proxy) setMode(m mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	p.cutLocked()
}

// cutLocked closes every forwarded and held connection.
func (p *Proxy) cutLocked() {
	p.gen++
	for pr := range p.pairs {
		pr.close()
		delete(p.pairs, pr)
	}
	for c := range p.held {
		c.Close()
		delete(p.held, c)
	}
}

// Close stops listening, closes every connection and waits for the proxy's
// goroutines to end. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	p.cancel()
	p.cutLocked()
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (out of file descriptors, ...): pause rather than spin.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.accepted.Add(1)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		switch p.mode {
		case blackHole:
			p.held[c] = struct{}{}
			p.mu.Unlock()
		case refusing:
			p.mu.Unlock()
			reset(c)
		default:
			gen := p.gen
			p.mu.Unlock()
			p.wg.Add(1)
			go p.forward(c, gen)
		}
	}
}

// reset closes c with a TCP RST rather than a FIN, as a closed port would
// answer.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// forward dials the target for client and copies both ways until either
// side fails or the connection is cut. gen is the cut generation at accept
// time: a cut during the dial drops the connection too.
func (p *Proxy) forward(client net.Conn, gen uint64) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, dialTimeout)
	server, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		client.Close()
		return
	}
	pr := &pair{client: client, server: server}
	p.mu.Lock()
	if p.closed || p.gen != gen || p.mode != forwarding {
		p.mu.Unlock()
		pr.close()
		return
	}
	p.pairs[pr] = struct{}{}
	p.mu.Unlock()

	var done sync.WaitGroup
	done.Add(2)
	go func() { defer done.Done(); pipe(pr, server, client) }()
	pipe(pr, client, server)
	done.Done()
	done.Wait()
	pr.close()
	p.mu.Lock()
	delete(p.pairs, pr)
	p.mu.Unlock()
}

// pipe copies src to dst. At src's end of stream it half-closes dst, so that
// a client that shuts down its writing side is seen as such by the target;
// on an error it closes the whole pair.
func pipe(pr *pair, dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	pr.close()
}
