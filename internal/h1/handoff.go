package h1

import (
	"net"
	"sync"
)

// Handoff is the net.Listener through which the fast path gives net/http the
// connections it does not serve itself. An http.Server serves it like any
// listener; Accept yields handed-off connections, each replaying the bytes
// the fast path had already read before the rest of the stream.
type Handoff struct {
	addr  net.Addr
	conns chan net.Conn

	mu     sync.Mutex
	closed chan struct{}
}

// NewHandoff returns a hand-off listener reporting addr as its address.
func NewHandoff(addr net.Addr) *Handoff {
	return &Handoff{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Give hands c to whoever Accepts, with read (copied) replayed first. It
// blocks until a goroutine takes it; after Close it closes c instead.
func (h *Handoff) Give(c net.Conn, read []byte) {
	if len(read) > 0 {
		c = &replayConn{Conn: c, pending: append([]byte(nil), read...)}
	}
	select {
	case h.conns <- c:
	case <-h.closed:
		_ = c.Close()
	}
}

// Accept waits for the next handed-off connection.
func (h *Handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; later hand-offs close their connection.
func (h *Handoff) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.closed:
	default:
		close(h.closed)
	}
	return nil
}

// Addr is the address of the real listener.
func (h *Handoff) Addr() net.Addr { return h.addr }

// replayConn returns bytes read before the hand-off ahead of the stream.
// net/http reads from one goroutine at a time, so pending needs no lock.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

var _ net.Listener = (*Handoff)(nil)
