// Package websocket is the `websocket` entrypoint: one WebSocket connection
// both receives the API's messages and publishes the client's.
//
// Subscribe side: every message of the client's stream is sent as one
// frame, text when its content is valid UTF-8 (messageType auto), and is
// acked once the frame was written. ?cursor= resumes. When the API's
// endpoint cannot subscribe the connection is publish-only.
//
// Publish side: every text or binary frame the client sends is published as
// one message. When the API's endpoint cannot publish, or a publish fails,
// the connection is closed: 1008 when publishing is not allowed, 1011 on a
// failure.
//
// The connection closes with 1000 when the client ends it, 1011 on an
// error, 1001 (going away) when the gateway drains, and 1009 for a frame
// over maxMessageSize.
//
// Origins: browsers do not send CORS preflights for WebSockets, and the
// listener's CORS settings are not applied to them. By default any Origin
// is accepted: Sluice authenticates clients with API keys or JWTs (never
// ambient cookies), so a cross-site page cannot borrow a user's
// credentials. Set originPatterns to restrict browsers to known origins.
package websocket

import (
	"context"
	"errors"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	ws "github.com/coder/websocket"

	"github.com/sluicegw/sluice/entrypoints/internal/wire"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type:       "websocket",
		Listener:   "http",
		Operations: mediation.OpPublish | mediation.OpSubscribe,
		QoS:        mediation.AllQoS,
		Config:     func() any { c := DefaultConfig(); return &c },
		New: func(_ plugins.Context, cfg any) (mediation.Entrypoint, error) {
			return New(plugins.ConfigOr(cfg, DefaultConfig))
		},
	})
}

// Message types for Config.MessageType.
const (
	TypeAuto   = "auto"
	TypeText   = "text"
	TypeBinary = "binary"
)

// Config configures the websocket entrypoint.
type Config struct {
	// MessageType is the frame type of the messages sent to the client:
	// auto (text when the content is valid UTF-8, else binary), text (always;
	// invalid UTF-8 is replaced by U+FFFD, since browsers drop a connection
	// on a text frame that is not UTF-8) or binary. Default auto.
	MessageType string `yaml:"messageType"`
	// MaxMessageSize is the largest frame accepted from the client, in
	// bytes; a larger one closes the connection with 1009. Default 1 MiB.
	MaxMessageSize int64 `yaml:"maxMessageSize"`
	// PingInterval is how often the client is pinged; a client that does
	// not answer within the interval is disconnected. 0 disables pings.
	// Default 30s.
	PingInterval time.Duration `yaml:"pingInterval"`
	// OriginPatterns, when set, restricts the Origin of browser clients to
	// these host patterns (path.Match syntax, e.g. "*.example.com"; with
	// "://" they match scheme://host). The request's own host is always
	// allowed. Empty allows any origin.
	OriginPatterns []string `yaml:"originPatterns"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config {
	return Config{MessageType: TypeAuto, MaxMessageSize: 1 << 20, PingInterval: 30 * time.Second}
}

const (
	maxMessageSize = 64 << 20 // bounds the memory one frame may hold
	minPing        = 100 * time.Millisecond
	// writeTimeout bounds one frame write: a client that stopped reading is
	// disconnected instead of holding its stream and window forever.
	writeTimeout = 30 * time.Second
)

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch c.MessageType {
	case TypeAuto, TypeText, TypeBinary:
	default:
		return plugins.Errorf("messageType", "must be auto, text or binary, got %q", c.MessageType)
	}
	if c.MaxMessageSize < 1 || c.MaxMessageSize > maxMessageSize {
		return plugins.Errorf("maxMessageSize", "must be between 1 and %d bytes, got %d", maxMessageSize, c.MaxMessageSize)
	}
	if c.PingInterval < 0 || (c.PingInterval > 0 && c.PingInterval < minPing) {
		return plugins.Errorf("pingInterval", "must be 0 (no pings) or at least %s, got %s", minPing, c.PingInterval)
	}
	for i, p := range c.OriginPatterns {
		if _, err := path.Match(p, ""); err != nil {
			return plugins.Errorf("originPatterns["+strconv.Itoa(i)+"]", "bad pattern %q: %v", p, err)
		}
	}
	return nil
}

// Entrypoint is the websocket entrypoint. One value serves every connection
// of an API.
type Entrypoint struct {
	cfg    Config
	accept ws.AcceptOptions
}

// New returns a websocket entrypoint for cfg, or the configuration's
// problem.
func New(cfg Config) (*Entrypoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Entrypoint{cfg: cfg}
	if len(cfg.OriginPatterns) > 0 {
		e.accept.OriginPatterns = cfg.OriginPatterns
	} else {
		// Any origin, on purpose: see the package documentation. Clients
		// authenticate with keys or tokens, not cookies, so a cross-site
		// page gains nothing it could not do from its own server.
		e.accept.InsecureSkipVerify = true
	}
	return e, nil
}

// Accepts takes requests that ask to upgrade to a WebSocket.
func (e *Entrypoint) Accepts(r *http.Request) bool {
	return r.Method == http.MethodGet && wire.IsWebSocketUpgrade(r)
}

// Rank places websocket first: an upgrade request is never anything else.
func (e *Entrypoint) Rank() int { return mediation.RankWebSocket }

// Operations are publish and subscribe.
func (e *Entrypoint) Operations() mediation.Operation {
	return mediation.OpPublish | mediation.OpSubscribe
}

// Serve upgrades the connection and runs it until either side ends it.
func (e *Entrypoint) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	// Subscribe before upgrading, so that a bad cursor or an unavailable
	// broker is an HTTP answer the client can read.
	s, err := x.Subscribe(r.Context(), mediation.StreamRequest{Cursor: wire.QueryCursor(r)})
	if err != nil && !errors.Is(err, mediation.ErrUnsupported) {
		wire.WriteError(w, "subscribe", err)
		return
	}
	if s != nil {
		defer s.Close()
	}
	conn, err := ws.Accept(w, r, &e.accept)
	if err != nil {
		return // Accept answered the client (400, 403, 426)
	}
	conn.SetReadLimit(e.cfg.MaxMessageSize)
	c := &session{cfg: &e.cfg, x: x, conn: conn, stream: s}
	c.run(r.Context())
}

// closeStatus is how a session ends.
type closeStatus struct {
	code   ws.StatusCode
	reason string
}

// session is one WebSocket connection.
type session struct {
	cfg    *Config
	x      *mediation.Exchange
	conn   *ws.Conn
	stream *mediation.Stream // nil when the endpoint cannot subscribe
}

// run starts the reader (publish side, and the control frames pings need),
// the writer (subscribe side) and the pinger, and ends the connection with
// the status of whichever finishes first.
func (c *session) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	ended := make(chan closeStatus, 3)
	var wg sync.WaitGroup
	wg.Go(func() { ended <- c.read(ctx) })
	if c.stream != nil {
		wg.Go(func() { ended <- c.write(ctx) })
	}
	if c.cfg.PingInterval > 0 {
		wg.Go(func() { ended <- c.ping(ctx) })
	}

	var st closeStatus
	select {
	case st = <-ended:
	case <-c.x.Draining():
		st = closeStatus{ws.StatusGoingAway, "gateway shutting down"}
	}
	// Close before cancel: a cancelled context makes the library drop the
	// connection without the close handshake.
	if st.code == ws.StatusNoStatusRcvd {
		_ = c.conn.CloseNow()
	} else {
		_ = c.conn.Close(st.code, truncateReason(st.reason))
	}
	cancel()
	wg.Wait()
}

// read publishes every frame the client sends.
func (c *session) read(ctx context.Context) closeStatus {
	for {
		_, data, err := c.conn.Read(ctx)
		if err != nil {
			switch code := ws.CloseStatus(err); {
			case code == ws.StatusNormalClosure || code == ws.StatusGoingAway:
				return closeStatus{ws.StatusNormalClosure, ""}
			case errors.Is(err, context.Canceled):
				return closeStatus{ws.StatusNormalClosure, ""}
			default:
				// Too large a frame, a protocol error or a dropped
				// connection: the library already closed it as it should.
				return closeStatus{ws.StatusNoStatusRcvd, ""}
			}
		}
		if err := c.x.Publish(ctx, mediation.NewMessage(data)); err != nil {
			return publishFailed(err)
		}
	}
}

func publishFailed(err error) closeStatus {
	var rej *mediation.Rejection
	switch {
	case errors.As(err, &rej):
		return closeStatus{ws.StatusPolicyViolation, rej.Title}
	case errors.Is(err, mediation.ErrUnsupported):
		return closeStatus{ws.StatusPolicyViolation, "this API does not accept messages"}
	case errors.Is(err, context.Canceled):
		return closeStatus{ws.StatusNormalClosure, ""}
	default:
		_, title, _ := wire.Classify("publish", err)
		return closeStatus{ws.StatusInternalError, title}
	}
}

// write sends the stream's messages, each acked once its frame was written.
func (c *session) write(ctx context.Context) closeStatus {
	for {
		m, err := c.stream.Next(ctx)
		if err != nil {
			switch {
			case errors.Is(err, mediation.ErrDraining):
				return closeStatus{ws.StatusGoingAway, "gateway shutting down"}
			case errors.Is(err, context.Canceled), errors.Is(err, mediation.ErrClosed):
				return closeStatus{ws.StatusNormalClosure, ""}
			default:
				c.x.Metrics().Errors.Inc()
				c.x.Logger.Warn("websocket stream ended", "err", err)
				_, title, _ := wire.Classify("subscribe", err)
				return closeStatus{ws.StatusInternalError, title}
			}
		}
		typ, data := c.frame(m.Content)
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		err = c.conn.Write(wctx, typ, data)
		cancel()
		if err != nil {
			m.Nack(err)
			return closeStatus{ws.StatusNoStatusRcvd, ""} // the connection is gone
		}
		m.Ack()
	}
}

// frame picks the frame type of a message's content.
func (c *session) frame(content []byte) (ws.MessageType, []byte) {
	switch c.cfg.MessageType {
	case TypeBinary:
		return ws.MessageBinary, content
	case TypeText:
		if !utf8.Valid(content) {
			return ws.MessageText, []byte(strings.ToValidUTF8(string(content), "\uFFFD"))
		}
		return ws.MessageText, content
	default:
		if utf8.Valid(content) {
			return ws.MessageText, content
		}
		return ws.MessageBinary, content
	}
}

// ping checks that the client still answers.
func (c *session) ping(ctx context.Context) closeStatus {
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return closeStatus{ws.StatusNormalClosure, ""}
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.cfg.PingInterval)
		err := c.conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return closeStatus{ws.StatusNormalClosure, ""}
			}
			return closeStatus{ws.StatusNoStatusRcvd, ""} // unresponsive: drop it
		}
	}
}

// truncateReason keeps a close reason within the 123 bytes a close frame
// allows, on a UTF-8 boundary.
func truncateReason(s string) string {
	const limit = 123
	if len(s) <= limit {
		return s
	}
	s = s[:limit]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Interface guards.
var (
	_ mediation.Entrypoint = (*Entrypoint)(nil)
	_ mediation.Ranked     = (*Entrypoint)(nil)
	_ mediation.Operator   = (*Entrypoint)(nil)
	_ plugins.Validator    = (*Config)(nil)
)
