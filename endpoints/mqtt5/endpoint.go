package mqtt5

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/sluicegw/sluice/mediation"
)

// Endpoint is an MQTT 5 connector. One shared connection publishes; every
// subscription has a connection (and MQTT client id) of its own, so that
// its acknowledgements, flow control and session are its own.
type Endpoint struct {
	cfg      Config
	log      *slog.Logger
	caps     mediation.Capabilities
	server   *url.URL
	tls      *tls.Config // nil unless the scheme uses TLS
	clientID string      // configured or generated

	pub *publisher // nil without producer.topic

	mu     sync.Mutex
	seq    uint64                  // numbers subscriptions without a group
	groups map[string]map[int]bool // group → slots of open subscriptions
	closed atomic.Bool

	dropped atomic.Uint64 // QoS 0 messages dropped by full subscriptions
}

// New returns an endpoint for cfg, which must pass Validate. It reads the
// TLS files and, when the endpoint publishes, starts connecting in the
// background; it does not wait for the broker.
func New(cfg *Config, logger *slog.Logger) (*Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	e := &Endpoint{cfg: *cfg, log: logger, caps: cfg.Capabilities(), groups: map[string]map[int]bool{}}
	e.server, _ = parseServerURL(cfg.ServerURL) // checked by Validate
	if isTLSScheme(e.server.Scheme) {
		t, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		e.tls = t
	}
	e.clientID = cfg.ClientID
	if e.clientID == "" {
		e.clientID = "sluice-" + randomID()
	}
	if cfg.Producer.Topic != "" {
		p, err := e.newPublisher()
		if err != nil {
			return nil, err
		}
		e.pub = p
	}
	return e, nil
}

// Capabilities says what the endpoint can do; see Config.Capabilities.
func (e *Endpoint) Capabilities() mediation.Capabilities { return e.caps }

// ClientID is the MQTT client id of the publishing connection, the prefix
// of every subscription's.
func (e *Endpoint) ClientID() string { return e.clientID }

// Dropped counts the QoS 0 messages that subscriptions of this endpoint
// dropped because their buffer was full.
func (e *Endpoint) Dropped() uint64 { return e.dropped.Load() }

// Close disconnects the publishing connection, waiting for it until ctx
// ends. Subscriptions must be closed first; they own their connections.
func (e *Endpoint) Close(ctx context.Context) error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	if e.pub == nil {
		return nil
	}
	if err := e.pub.cm.Disconnect(ctx); err != nil {
		return fmt.Errorf("mqtt5: disconnect: %w", err)
	}
	return nil
}

// connection describes one autopaho connection the endpoint opens.
type connection struct {
	clientID string
	link     *link
	// cleanStart discards a session the broker still holds for clientID
	// when the first connection is made (later reconnects resume it).
	cleanStart bool
	// sessionExpiry is the session expiry interval in seconds.
	sessionExpiry uint32
	// receiveMaximum, when not 0, is sent in CONNECT.
	receiveMaximum uint16
	// endSession sends a session expiry of 0 with the final DISCONNECT, so
	// that the broker drops the session at once.
	endSession bool
	paho       paho.ClientConfig
	up         func(*autopaho.ConnectionManager, *paho.Connack)
}

// clientConfig is the autopaho configuration of c.
func (e *Endpoint) clientConfig(c connection) autopaho.ClientConfig {
	debug, errs := pahoLoggers(e.log)
	c.paho.ClientID = c.clientID
	c.paho.OnServerDisconnect = func(d *paho.Disconnect) { c.link.serverDisconnect(c.clientID, d) }
	// paho's own timeout for a response; the callers bound theirs by ctx.
	c.paho.PacketTimeout = max(time.Duration(e.cfg.PublishTimeout), time.Duration(e.cfg.ConnectTimeout))
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{e.server},
		TlsCfg:                        e.tls,
		KeepAlive:                     uint16(seconds(e.cfg.KeepAlive)),
		CleanStartOnInitialConnection: c.cleanStart,
		SessionExpiryInterval:         c.sessionExpiry,
		ReconnectBackoff:              backoff(time.Duration(e.cfg.MaxReconnectDelay)),
		ConnectTimeout:                time.Duration(e.cfg.ConnectTimeout),
		ConnectUsername:               e.cfg.Username,
		ConnectPassword:               []byte(e.cfg.Password),
		OnConnectionUp: func(cm *autopaho.ConnectionManager, ack *paho.Connack) {
			c.link.connected()
			if c.up != nil {
				c.up(cm, ack)
			}
		},
		OnConnectionDown: func() bool { c.link.lost(); return true },
		OnConnectError:   c.link.connectFailed,
		Debug:            debug,
		Errors:           errs,
		PahoDebug:        debug,
		PahoErrors:       errs,
		ClientConfig:     c.paho,
	}
	if coalesces(e.server) {
		cfg.AttemptConnection = dialCoalescing
	}
	if rm := c.receiveMaximum; rm != 0 {
		cfg.ConnectPacketBuilder = func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			cp.Properties.ReceiveMaximum = &rm
			return cp, nil
		}
	}
	if c.endSession && c.sessionExpiry != 0 {
		cfg.DisconnectPacketBuilder = func() *paho.Disconnect {
			var zero uint32
			return &paho.Disconnect{Properties: &paho.DisconnectProperties{SessionExpiryInterval: &zero}}
		}
	}
	return cfg
}

// backoff waits before reconnection attempt n: nothing before the first,
// then 100ms doubling up to maxDelay, with jitter so that many
// subscriptions do not reconnect in lockstep after a broker restart.
func backoff(maxDelay time.Duration) autopaho.Backoff {
	return func(attempt int) time.Duration {
		if attempt <= 0 {
			return 0
		}
		d := maxDelay
		if attempt < 20 {
			d = min(100*time.Millisecond<<(attempt-1), maxDelay)
		}
		return d/2 + rand.N(d/2+1)
	}
}

// subscriptionClientID names the client of a new subscription and returns
// the function that frees the name when the subscription closes. Group
// subscriptions get a stable name, "<clientId>-g-<group>", so that a
// persistent session is found again after a restart; a second concurrent
// subscription of the same group adds ".<n>".
func (e *Endpoint) subscriptionClientID(group string) (string, func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if group == "" {
		e.seq++
		return e.clientID + "-s-" + strconv.FormatUint(e.seq, 10), func() {}
	}
	slots := e.groups[group]
	if slots == nil {
		slots = map[int]bool{}
		e.groups[group] = slots
	}
	n := 1
	for slots[n] {
		n++
	}
	slots[n] = true
	id := e.clientID + "-g-" + groupClientSuffix(group)
	if n > 1 {
		id += "." + strconv.Itoa(n)
	}
	return id, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(slots, n)
		if len(slots) == 0 {
			delete(e.groups, group)
		}
	}
}

// tlsConfig reads the TLS files, so that a missing file is reported when
// the endpoint is created rather than on the first connection.
func tlsConfig(t TLS) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // an explicit, documented opt-in for tests
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt5: tls.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt5: tls.caFile: %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt5: tls.certFile: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func randomID() string {
	var b [6]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// unavailable wraps a broker failure so that entrypoints answer 503.
func unavailable(what string, err error) error {
	if err == nil {
		return fmt.Errorf("mqtt5: %s: %w", what, mediation.ErrUnavailable)
	}
	return fmt.Errorf("mqtt5: %s: %w: %w", what, mediation.ErrUnavailable, err)
}

// Interface guards.
var _ mediation.Endpoint = (*Endpoint)(nil)
