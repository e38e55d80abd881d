package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/mediation"
)

// closeTimeout bounds the polite close of a connection when its owner gave
// no deadline.
const closeTimeout = 5 * time.Second

// link keeps one AMQP connection open. amqp091-go does not reconnect by
// itself: link dials, watches the connection (NotifyClose), and redials with
// exponential back-off when it is lost or refused. Users ask for the current
// connection with get and open their own channels on it; they notice a loss
// on those channels and ask again.
type link struct {
	url          string
	addr         string // host:port, dialed by link itself
	name         string // the connection_name the broker's UI shows
	connect      time.Duration
	writeTimeout time.Duration
	reconnect    Reconnect
	log          *slog.Logger

	ctx    context.Context // ends when the link is closed
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned

	mu      sync.Mutex
	conn    *amqp.Connection // nil while disconnected
	changed chan struct{}    // closed and replaced whenever conn changes
	lastErr error            // why the last attempt failed or the connection was lost
	closeBy time.Time        // deadline of the polite close, set by close
}

// linkOptions configure a link.
type linkOptions struct {
	url, addr, name string
	connectTimeout  time.Duration
	// writeTimeout bounds every write to the socket, so that a broker that
	// stopped reading (or a network that stopped carrying) fails writers
	// instead of blocking them: the connection is then dropped and redialed.
	writeTimeout time.Duration
	reconnect    Reconnect
	log          *slog.Logger
}

// newLink starts connecting in the background.
func newLink(o linkOptions) *link {
	ctx, cancel := context.WithCancel(context.Background())
	l := &link{
		url: o.url, addr: o.addr, name: o.name,
		connect: o.connectTimeout, writeTimeout: o.writeTimeout, reconnect: o.reconnect,
		log: o.log.With("connection", o.name),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		changed: make(chan struct{}),
	}
	go l.run()
	return l
}

// get returns the current connection, waiting for one until ctx ends. It
// fails with an error wrapping mediation.ErrUnavailable (saying why the
// broker cannot be reached) when ctx's deadline passes, ctx.Err() when ctx is
// canceled, and mediation.ErrClosed once the link is closed.
func (l *link) get(ctx context.Context) (*amqp.Connection, error) {
	for {
		l.mu.Lock()
		conn, changed, lastErr := l.conn, l.changed, l.lastErr
		l.mu.Unlock()
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		select {
		case <-changed:
		case <-l.ctx.Done():
			return nil, mediation.ErrClosed
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, ctx.Err()
			}
			if lastErr == nil {
				lastErr = errors.New("still connecting")
			}
			return nil, unavailable("not connected to "+l.addr, lastErr)
		}
	}
}

// err returns why the link is down, or nil while it is connected.
func (l *link) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil && !l.conn.IsClosed() {
		return nil
	}
	return l.lastErr
}

// closed is closed when the link is being closed.
func (l *link) closed() <-chan struct{} { return l.ctx.Done() }

// close closes the connection politely (until ctx's deadline) and stops
// redialing. It waits for the link's goroutine until ctx ends.
func (l *link) close(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(closeTimeout)
	}
	l.mu.Lock()
	l.closeBy = deadline
	l.mu.Unlock()
	l.cancel()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq: closing connection %q: %w", l.name, ctx.Err())
	}
}

func (l *link) set(conn *amqp.Connection, err error) {
	l.mu.Lock()
	l.conn = conn
	if err != nil {
		l.lastErr = err
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *link) setErr(err error) {
	l.mu.Lock()
	l.lastErr = err
	l.mu.Unlock()
}

func (l *link) run() {
	defer close(l.done)
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !sleep(l.ctx, l.reconnect.delay(attempt-1)) {
			return
		}
		conn, err := l.dial()
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			l.setErr(err)
			l.log.Warn("rabbitmq: cannot connect, retrying", "addr", l.addr, "attempt", attempt+1, "error", err)
			continue
		}
		if attempt > 0 {
			l.log.Info("rabbitmq: connected", "addr", l.addr, "attempts", attempt+1)
		}
		if !l.hold(conn) {
			return
		}
		attempt = 0 // the next attempt, after a loss, waits reconnect.initialDelay
	}
}

// hold publishes conn and watches it until it is lost (true) or the link is
// closed (false).
func (l *link) hold(conn *amqp.Connection) bool {
	lost := conn.NotifyClose(make(chan *amqp.Error, 1))
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 1))
	l.set(conn, nil)
	for {
		select {
		case b, ok := <-blocked:
			if !ok {
				blocked = nil
			} else if b.Active {
				l.log.Warn("rabbitmq: broker blocks publishing (resource alarm)", "reason", b.Reason)
			} else {
				l.log.Info("rabbitmq: broker unblocked publishing")
			}
		case aerr := <-lost:
			var err error = errors.New("connection closed")
			if aerr != nil {
				err = aerr
			}
			err = fmt.Errorf("connection lost: %w", err)
			l.set(nil, err)
			l.log.Warn("rabbitmq: connection lost, reconnecting", "addr", l.addr, "error", err)
			return true
		case <-l.ctx.Done():
			l.mu.Lock()
			deadline := l.closeBy
			l.mu.Unlock()
			l.set(nil, mediation.ErrClosed)
			_ = conn.CloseDeadline(deadline)
			return false
		}
	}
}

// dial opens a connection within connectTimeout. It dials TCP itself so
// that closing the link aborts a handshake in progress, and wraps the socket
// so that no write blocks longer than writeTimeout.
func (l *link) dial() (*amqp.Connection, error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.connect)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, err
	}
	// The handshake's deadline; amqp091 clears it once the connection is
	// open, and its heartbeats set read deadlines from then on.
	deadline, _ := ctx.Deadline()
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil, err
	}
	abort := context.AfterFunc(ctx, func() { raw.Close() })
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(l.name)
	conn, err := amqp.DialConfig(l.url, amqp.Config{
		Properties: props,
		Dial: func(string, string) (net.Conn, error) {
			return &timedConn{Conn: raw, timeout: l.writeTimeout}, nil
		},
	})
	if !abort() { // the link was closed or the handshake timed out
		if err == nil {
			conn.Close()
			err = ctx.Err()
		}
		return nil, err
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// timedConn bounds every write to the socket by timeout. A write that times
// out breaks the connection, which amqp091 then reports as lost.
type timedConn struct {
	net.Conn
	timeout time.Duration
}

func (c *timedConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// delay is the wait before reconnection attempt n (from 0): initialDelay
// doubled n times, capped at maxDelay, with ±20% jitter so that gateways
// that lost the broker together do not come back in lockstep.
func (r Reconnect) delay(n int) time.Duration {
	d, maxd := time.Duration(r.InitialDelay), time.Duration(r.MaxDelay)
	for i := 0; i < n && d < maxd; i++ {
		d *= 2
	}
	d = min(d, maxd)
	if spread := int64(d) / 5; spread > 0 {
		d += time.Duration(rand.Int64N(2*spread+1) - spread)
	}
	return d
}

// sleep waits d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
