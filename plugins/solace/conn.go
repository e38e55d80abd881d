package solace

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/sluicegw/sluice/mediation"
)

// dialer opens AMQP connections as the configuration says.
type dialer struct {
	url     string // without credentials: go-amqp would prefer them to SASLType
	addr    string
	name    string // prefix of the container id
	opts    amqp.ConnOptions
	timeout time.Duration
}

func newDialer(cfg *Config, name string) (*dialer, error) {
	u, err := parseURL(cfg.URL)
	if err != nil { // checked by Validate; never echo the URL: it may hold a password
		return nil, fmt.Errorf("solace: url: %w", err)
	}
	user, pass := cfg.Username, cfg.Password
	if user == "" {
		user, pass = u.user, u.pass
	}
	scheme := "amqp://"
	if u.tls {
		scheme = "amqps://"
	}
	d := &dialer{
		url:     scheme + u.addr,
		addr:    u.addr,
		name:    name,
		timeout: time.Duration(cfg.ConnectTimeout),
		opts: amqp.ConnOptions{
			HostName:    cfg.VPN,
			IdleTimeout: time.Duration(cfg.IdleTimeout),
			SASLType:    amqp.SASLTypeAnonymous(),
		},
	}
	if user != "" {
		d.opts.SASLType = amqp.SASLTypePlain(user, pass)
	}
	if u.tls {
		tc, err := tlsConfig(&cfg.TLS, u.host)
		if err != nil {
			return nil, err
		}
		// go-amqp would otherwise verify the broker's certificate against
		// HostName, which is the VPN.
		d.opts.TLSConfig = tc
	}
	return d, nil
}

func tlsConfig(c *TLS, host string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("solace: tls.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("solace: tls.caFile %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("solace: tls.certFile/keyFile: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// dial opens one connection within the connect timeout, or until ctx ends.
func (d *dialer) dial(ctx context.Context) (*amqp.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	opts := d.opts
	opts.ContainerID = d.name + "-" + randomHex(6)
	return amqp.Dial(ctx, d.url, &opts)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

// closeTimeout bounds a polite close (of a session, a link) that nothing
// else bounds.
const closeTimeout = 5 * time.Second

// keeper keeps one AMQP connection open: it dials, notices a loss
// (Conn.Done, which go-amqp closes on a read or write error and when the
// broker is silent past the idle timeout), and redials with exponential
// back-off. Users ask for the current connection with get, open their own
// sessions on it, notice a loss on those and ask again.
type keeper struct {
	d         *dialer
	reconnect Reconnect
	log       *slog.Logger

	ctx    context.Context // ends when the keeper is closed
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned

	mu      sync.Mutex
	conn    *amqp.Conn    // nil while disconnected
	changed chan struct{} // closed and replaced whenever conn changes
	lastErr error         // why the last attempt failed or the connection was lost
}

// newKeeper starts connecting in the background.
func newKeeper(d *dialer, r Reconnect, log *slog.Logger) *keeper {
	ctx, cancel := context.WithCancel(context.Background())
	k := &keeper{
		d: d, reconnect: r, log: log,
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		changed: make(chan struct{}),
	}
	go k.run()
	return k
}

// get returns the current connection, waiting for one until ctx ends. It
// fails with an error wrapping mediation.ErrUnavailable (saying why the
// broker cannot be reached) when ctx's deadline passes, ctx.Err() when ctx is
// canceled, and mediation.ErrClosed once the keeper is closed.
func (k *keeper) get(ctx context.Context) (*amqp.Conn, error) {
	for {
		k.mu.Lock()
		conn, changed, lastErr := k.conn, k.changed, k.lastErr
		k.mu.Unlock()
		if conn != nil && conn.Err() == nil {
			return conn, nil
		}
		select {
		case <-changed:
		case <-k.ctx.Done():
			return nil, mediation.ErrClosed
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, ctx.Err()
			}
			if lastErr == nil {
				lastErr = errors.New("still connecting")
			}
			return nil, unavailable("not connected to "+k.d.addr, lastErr)
		}
	}
}

// err returns why the keeper is disconnected, or nil while it is connected.
func (k *keeper) err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn != nil && k.conn.Err() == nil {
		return nil
	}
	return k.lastErr
}

// drop closes conn, if it is still the current connection, so that the
// keeper redials: for users that found it unusable (a session that cannot
// be opened in time on a connection that looks alive).
func (k *keeper) drop(conn *amqp.Conn) {
	k.mu.Lock()
	cur := k.conn
	k.mu.Unlock()
	if cur == conn {
		_ = conn.Close()
	}
}

// close closes the connection and stops redialing, waiting until ctx ends
// for the keeper's goroutine.
func (k *keeper) close(ctx context.Context) error {
	k.cancel()
	select {
	case <-k.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("solace: closing the connection to %s: %w", k.d.addr, ctx.Err())
	}
}

func (k *keeper) set(conn *amqp.Conn, err error) {
	k.mu.Lock()
	k.conn = conn
	if err != nil {
		k.lastErr = err
	}
	close(k.changed)
	k.changed = make(chan struct{})
	k.mu.Unlock()
}

func (k *keeper) run() {
	defer close(k.done)
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !sleep(k.ctx, k.reconnect.delay(attempt-1)) {
			return
		}
		conn, err := k.d.dial(k.ctx)
		if err != nil {
			if k.ctx.Err() != nil {
				return
			}
			k.set(nil, err)
			k.log.Warn("solace: cannot connect, retrying", "addr", k.d.addr, "attempt", attempt+1, "error", err)
			continue
		}
		if attempt > 0 {
			k.log.Info("solace: connected", "addr", k.d.addr, "attempts", attempt+1)
		}
		k.set(conn, nil)
		select {
		case <-conn.Done():
			err := fmt.Errorf("connection lost: %w", conn.Err())
			k.set(nil, err)
			k.log.Warn("solace: connection lost, reconnecting", "addr", k.d.addr, "error", err)
			attempt = 0 // the next attempt waits reconnect.initialDelay
		case <-k.ctx.Done():
			k.set(nil, mediation.ErrClosed)
			_ = conn.Close()
			return
		}
	}
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

// unavailable wraps a broker failure so that entrypoints answer 503.
func unavailable(what string, cause error) error {
	if cause == nil {
		return fmt.Errorf("solace: %s: %w", what, mediation.ErrUnavailable)
	}
	return fmt.Errorf("solace: %s: %w: %w", what, mediation.ErrUnavailable, cause)
}

// isRefusal reports a broker's answer that a retry would meet again: the
// address does not exist, access is refused, the message is too large.
func isRefusal(err error) bool {
	var aerr *amqp.Error
	if !errors.As(err, &aerr) {
		return false
	}
	switch aerr.Condition {
	case amqp.ErrCondNotFound, amqp.ErrCondUnauthorizedAccess, amqp.ErrCondNotAllowed,
		amqp.ErrCondInvalidField, amqp.ErrCondNotImplemented, amqp.ErrCondMessageSizeExceeded,
		amqp.ErrCondPreconditionFailed, amqp.ErrCondDecodeError:
		return true
	}
	return false
}
