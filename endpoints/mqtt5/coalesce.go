package mqtt5

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
)

// coalescingConn lets concurrent MQTT packets share socket writes, and
// reads the socket through a buffer.
//
// Why: paho writes every packet with a write system call of its own (a
// writev of the packet's parts) and reads every packet with three or more
// (one byte of type, the length byte by byte, then the rest). With many
// requests publishing at once on the shared connection, these calls are a
// large part of the gateway's CPU time. Here a packet is only appended to a buffer
// while paho holds the connection's lock; on Unlock, if no goroutine is
// writing to the socket, the unlocking one becomes the writer: it yields
// once (runtime.Gosched), so that goroutines already runnable, such as
// other requests about to publish, can append their packets too, then
// writes what is pending outside the lock, looping until nothing is left.
// Packets that arrive meanwhile are carried by that writer's next write, so
// concurrent publishes share one system call. A lone packet on an idle
// process is written at once (Gosched returns at once when nothing else is
// runnable); under CPU load it waits at most for the goroutines that were
// already runnable, which is what lets the writes merge.
//
// paho v0.23 writes every packet through packets.ControlPacket.WriteTo,
// which holds Lock across the Write of each part of the packet (connect,
// publish, acknowledgements, pings, disconnect, and retransmissions from
// the session state alike), so a packet stays whole. A Write made without
// Lock, which paho does not do, is taken as a packet of its own: it locks,
// and returns only once its bytes were written, with the write's error.
// Such Writes stay whole, but one made while another goroutine's packet is
// open cannot be told from that packet's own parts, and is appended to it
// (and written with it); as with paho's packets.NewThreadSafeConn, Writes
// outside Lock must not race packets written in several parts.
//
// A packet's Write reports success once appended, so a failed socket write
// is reported later: it closes the connection, so that paho's reader fails
// and autopaho reconnects (PUBLISHes at QoS 1 and 2 are in paho's session
// and are answered or resent), and every later Write returns the error.
// Pending bytes are bounded by maxPending: an appender that would exceed it
// waits for the writer, or writes itself when there is none; a larger part
// is written straight from the caller's buffer.
//
// Reads go through a bufio.Reader, so that one system call reads all the
// packets that have arrived; paho reads from one goroutine at a time (the
// CONNACK during Connect, then its reader). Deadlines and addresses pass
// through to the wrapped connection.
type coalescingConn struct {
	net.Conn
	r *bufio.Reader // reads the socket in chunks of readBuffer

	pkt  sync.Mutex  // held from Lock to Unlock: one packet at a time
	open atomic.Bool // pkt is held (set and cleared by its holder)

	mu   sync.Mutex // guards the fields below
	cond sync.Cond  // on mu; broadcast when a socket write ends
	// pending holds appended bytes that no write has taken yet; spare is
	// the buffer of the last write, kept to append into next.
	pending, spare []byte
	writing        bool // a goroutine is writing to the socket
	// appended and sent are stream offsets: bytes appended (or written
	// straight through) and bytes whose socket write succeeded.
	appended, sent uint64
	err            error // the first failed write; later writes fail with it
	closed         bool
}

const (
	// maxPending bounds the bytes waiting for the socket.
	maxPending = 1 << 20
	// maxSpare is the largest buffer kept for reuse after a burst.
	maxSpare = 64 << 10
	// readBuffer holds the packets read by one system call; larger reads
	// (large packets) bypass it.
	readBuffer = 4 << 10
	// closeFlush bounds how long Close waits for a write in progress, which
	// may carry a DISCONNECT, before closing the socket under it.
	closeFlush = 2 * time.Second
)

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c, r: bufio.NewReaderSize(c, readBuffer)}
	cc.cond.L = &cc.mu
	return cc
}

// Lock starts a packet: the Writes until Unlock are kept together. It
// blocks while another goroutine's packet is open.
func (c *coalescingConn) Lock() {
	c.pkt.Lock()
	c.open.Store(true)
}

// Unlock ends a packet. If no goroutine is writing to the socket, it yields
// once, then writes everything pending before returning (blocking on the
// socket); otherwise the writer in progress carries this packet and Unlock
// returns at once.
func (c *coalescingConn) Unlock() {
	c.mu.Lock()
	c.open.Store(false)
	c.pkt.Unlock() // others may append while this goroutine writes
	if !c.writing && len(c.pending) > 0 {
		// Become the writer, but first let runnable goroutines append.
		c.writing = true
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
		c.writing = false
		c.cond.Broadcast()
		c.flushLocked()
	}
	c.mu.Unlock()
}

// Read reads from the socket through the read buffer. It must not be
// called concurrently with itself.
func (c *coalescingConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write appends p to the open packet. Without Lock held it is a packet of
// its own and blocks until p was written to the socket. It fails with the
// error of an earlier failed write, or net.ErrClosed after Close.
func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	// Checked under mu, which Unlock holds to clear it: bytes appended to an
	// open packet are always carried by that packet's Unlock.
	if !c.open.Load() {
		c.mu.Unlock()
		return c.writeAlone(p)
	}
	defer c.mu.Unlock()
	if err := c.appendLocked(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeAlone writes p as a packet of its own and waits until it is sent.
func (c *coalescingConn) writeAlone(p []byte) (int, error) {
	c.Lock()
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.appendLocked(p)
	end := c.appended
	c.open.Store(false)
	c.pkt.Unlock()
	if err != nil {
		return 0, err
	}
	for c.err == nil && c.sent < end {
		if c.writing {
			c.cond.Wait()
		} else {
			c.flushLocked()
		}
	}
	if c.sent < end {
		return 0, c.err
	}
	return len(p), nil
}

// appendLocked adds p to the pending bytes, first making room when they
// would exceed maxPending. A p of maxPending or more is written straight
// to the socket once everything before it was.
func (c *coalescingConn) appendLocked(p []byte) error {
	for c.usableLocked() == nil && len(c.pending) > 0 && len(c.pending)+len(p) > maxPending {
		if c.writing {
			c.cond.Wait()
		} else {
			c.writeLocked()
		}
	}
	if len(p) >= maxPending {
		for c.usableLocked() == nil && c.writing {
			c.cond.Wait()
		}
		if err := c.usableLocked(); err != nil {
			return err
		}
		c.appended += uint64(len(p))
		c.sendLocked(p)
		return c.usableLocked()
	}
	if err := c.usableLocked(); err != nil {
		return err
	}
	c.pending = append(c.pending, p...)
	c.appended += uint64(len(p))
	return nil
}

// usableLocked says why nothing more can be written, if so.
func (c *coalescingConn) usableLocked() error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return net.ErrClosed
	}
	return nil
}

// flushLocked writes until nothing is pending. The caller must not be the
// writer; it is the writer until flushLocked returns.
func (c *coalescingConn) flushLocked() {
	for len(c.pending) > 0 && c.err == nil {
		c.writeLocked()
	}
}

// writeLocked takes the pending bytes and writes them to the socket.
func (c *coalescingConn) writeLocked() {
	buf := c.pending
	c.pending, c.spare = c.spare[:0], nil
	c.sendLocked(buf)
	if cap(buf) <= maxSpare {
		c.spare = buf[:0]
	}
}

// sendLocked writes buf to the socket with mu released, as the writer.
func (c *coalescingConn) sendLocked(buf []byte) {
	c.writing = true
	c.mu.Unlock()
	_, err := c.Conn.Write(buf)
	if err != nil {
		// Fail the reader too, so that paho notices and reconnects.
		_ = c.Conn.Close()
	}
	c.mu.Lock()
	c.writing = false
	if err != nil {
		if c.err == nil {
			c.err = err
		}
		c.pending = nil
	} else {
		c.sent += uint64(len(buf))
	}
	c.cond.Broadcast()
}

// Close closes the connection once a write in progress ended, so that the
// packets it carries (a DISCONNECT among them) are not cut off; it waits at
// most closeFlush for a socket that does not take them.
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	if c.writing {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlush))
		for c.writing {
			c.cond.Wait()
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// dialCoalescing is autopaho's AttemptConnection for the schemes whose
// connections are wrapped in a coalescingConn: TCP and TLS. It dials as
// autopaho would (bounded by cfg.ConnectTimeout, which autopaho does not
// apply to AttemptConnection itself).
func dialCoalescing(ctx context.Context, cfg autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	if cfg.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.ConnectTimeout)
		defer cancel()
	}
	var conn net.Conn
	var err error
	if isTLSScheme(u.Scheme) {
		conn, err = (&tls.Dialer{Config: cfg.TlsCfg}).DialContext(ctx, "tcp", u.Host)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	return newCoalescingConn(conn), nil
}

// coalesces says whether connections to u are dialled by dialCoalescing.
// WebSocket connections, and any behind an all_proxy (which autopaho's
// own dialler honours), keep autopaho's defaults.
func coalesces(u *url.URL) bool {
	return !isWebSocketScheme(u.Scheme) && os.Getenv("all_proxy") == ""
}
