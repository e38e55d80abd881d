// Package httpget is the `http-get` entrypoint: a message API read page by
// page with plain GET requests.
//
// A GET collects the messages that arrive within messagesLimitDuration, up
// to messagesLimitCount (?limit= lowers it), answers them as one page and
// closes its subscription. The page carries a nextCursor (also when it is
// empty); the next GET with ?cursor=<nextCursor> continues exactly after the
// last item, so pages never overlap or skip. A message counts as delivered,
// and is acked, once the page that includes it was written.
//
// The page is JSON unless the client prefers XML or plain text:
//
//	application/json (default)
//	  {"items":[{"id":"…","content":"…","headers":{…},"metadata":{…}}],
//	   "pagination":{"nextCursor":"…","limit":500}}
//	application/xml
//	  <response><items><item><id>…</id><content>…</content>
//	    <headers><header name="…">…</header></headers>
//	    <metadata><entry key="…">…</entry></metadata></item></items>
//	  <pagination><nextCursor>…</nextCursor><limit>500</limit></pagination></response>
//	text/plain, one "name: value" line each, for people:
//	  items:
//	  item:
//	  id: …
//	  content: …
//	  pagination:
//	  nextCursor: …
//	  limit: 500
//
// An item's id is its cursor (the message id when the source cannot
// replay). Content that is not valid UTF-8 (or, in XML, holds characters XML
// cannot carry) is base64-encoded and marked: "encoding":"base64" in JSON,
// encoding="base64" on the XML element, "content (base64): " in text.
// headers and metadata are present only when headersInPayload and
// metadataInPayload are set.
package httpget

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicegw/sluice/entrypoints/internal/wire"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type:       "http-get",
		Listener:   "http",
		Operations: mediation.OpSubscribe,
		QoS:        mediation.AllQoS,
		Config:     func() any { c := DefaultConfig(); return &c },
		New: func(_ plugins.Context, cfg any) (mediation.Entrypoint, error) {
			return New(plugins.ConfigOr(cfg, DefaultConfig))
		},
	})
}

// Config configures the http-get entrypoint.
type Config struct {
	// MessagesLimitCount is the most messages one GET returns; ?limit= can
	// lower it. At most 10000. A page's messages stay unacknowledged until
	// it is written, so the entrypoint's window must be at least this large
	// (see Entrypoint.MinWindow). Default 500.
	MessagesLimitCount int `yaml:"messagesLimitCount"`
	// MessagesLimitDuration is how long a GET waits for messages before it
	// answers with what it has, possibly nothing. Default 5s.
	MessagesLimitDuration time.Duration `yaml:"messagesLimitDuration"`
	// HeadersInPayload adds each message's headers to its item. Default false.
	HeadersInPayload bool `yaml:"headersInPayload"`
	// MetadataInPayload adds each message's metadata (topic, partition,
	// offset, ...) to its item. Default false.
	MetadataInPayload bool `yaml:"metadataInPayload"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config {
	return Config{MessagesLimitCount: 500, MessagesLimitDuration: 5 * time.Second}
}

// maxLimitCount bounds the memory one page may hold.
const maxLimitCount = 10000

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MessagesLimitCount < 1 || c.MessagesLimitCount > maxLimitCount {
		return plugins.Errorf("messagesLimitCount", "must be between 1 and %d, got %d", maxLimitCount, c.MessagesLimitCount)
	}
	if c.MessagesLimitDuration <= 0 {
		return plugins.Errorf("messagesLimitDuration", "must be positive, got %s", c.MessagesLimitDuration)
	}
	return nil
}

// Entrypoint is the http-get entrypoint. One value serves every request of
// an API.
type Entrypoint struct {
	cfg Config
}

// New returns an http-get entrypoint for cfg, or the configuration's problem.
func New(cfg Config) (*Entrypoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Entrypoint{cfg: cfg}, nil
}

// Accepts takes a GET that is neither an SSE request nor a WebSocket
// upgrade and accepts one of the page formats; the API answers 406 to a GET
// that accepts none.
func (e *Entrypoint) Accepts(r *http.Request) bool {
	return r.Method == http.MethodGet && !wire.IsWebSocketUpgrade(r) && negotiate(r) != nil
}

// Rank places http-get after sse, which takes GETs that ask for events.
func (e *Entrypoint) Rank() int { return mediation.RankHTTPGet }

// MinWindow is the smallest stream window that lets a page fill up: every
// message of a page stays unacknowledged until the page is written, so a
// window below messagesLimitCount caps pages at the window (after waiting
// the whole messagesLimitDuration for messages the window holds back). The
// gateway raises the binding's window to at least this.
func (e *Entrypoint) MinWindow() int { return e.cfg.MessagesLimitCount }

// Operations is subscribe only.
func (e *Entrypoint) Operations() mediation.Operation { return mediation.OpSubscribe }

// Serve answers one page.
func (e *Entrypoint) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	limit := e.cfg.MessagesLimitCount
	q := r.URL.Query()
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 {
			mediation.WriteProblem(w, http.StatusBadRequest, "Invalid limit: ?limit= must be a whole number of at least 1",
				"limit="+q.Get("limit"), nil)
			return
		}
		limit = min(n, limit)
	}
	format := negotiate(r)

	ctx := r.Context()
	s, err := x.Subscribe(ctx, mediation.StreamRequest{Cursor: q.Get("cursor")})
	if err != nil {
		wire.WriteError(w, "subscribe", err)
		return
	}
	defer s.Close() // after the acks below: Close does not wait for them

	items, err := e.collect(ctx, s, limit)
	switch {
	case err == nil:
	case ctx.Err() != nil: // the client left; nothing was delivered
		nackAll(items, err)
		return
	case len(items) == 0:
		wire.WriteError(w, "subscribe", err)
		return
	default:
		// The source failed after some messages: they are still a valid
		// page, and the next GET resumes after them.
		x.Metrics().Errors.Inc()
		x.Logger.Warn("http-get page cut short", "err", err, "items", len(items))
	}

	body := render(format, page{items: items, nextCursor: s.Cursor(), limit: limit, cfg: &e.cfg})
	h := w.Header()
	h.Set("Content-Type", format.contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err != nil {
		nackAll(items, err)
		return
	}
	for _, m := range items {
		m.Ack()
	}
}

// collect reads up to limit messages for at most MessagesLimitDuration. It
// returns nil when the page is complete (count reached, time up or the
// gateway draining), else the error that stopped it.
func (e *Entrypoint) collect(ctx context.Context, s *mediation.Stream, limit int) ([]*mediation.Message, error) {
	wctx, cancel := context.WithTimeout(ctx, e.cfg.MessagesLimitDuration)
	defer cancel()
	items := make([]*mediation.Message, 0, min(limit, 64))
	for len(items) < limit {
		m, err := s.Next(wctx)
		if err != nil {
			if errors.Is(err, mediation.ErrDraining) ||
				(errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil) {
				return items, nil
			}
			return items, err
		}
		items = append(items, m)
	}
	return items, nil
}

func nackAll(items []*mediation.Message, err error) {
	for _, m := range items {
		m.Nack(err)
	}
}

// Interface guards.
var (
	_ mediation.Entrypoint = (*Entrypoint)(nil)
	_ mediation.Ranked     = (*Entrypoint)(nil)
	_ mediation.Operator   = (*Entrypoint)(nil)
	_ plugins.Validator    = (*Config)(nil)
)
