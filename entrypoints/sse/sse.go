// Package sse is the `sse` entrypoint: a message API's stream served as
// Server-Sent Events, for browsers' EventSource and any HTTP client.
//
// A GET with Accept: text/event-stream opens the client's stream; every
// message is written as
//
//	id: <cursor>
//	event: message
//	data: <content, one data: line per content line>
//
// so that a reconnecting EventSource resumes from Last-Event-ID without
// losing or repeating messages. A client may also resume from ?cursor=. When
// both are present Last-Event-ID wins: it is what a browser sends on an
// automatic reconnect, and it is newer than the ?cursor= of the URL it
// first opened. A source that cannot replay has no cursors; its message id
// is the id, and a Last-Event-ID sent back to it starts the stream live.
//
// Messages are encoded into a batch buffer and written and flushed when the
// stream is idle (or the batch is full); a message counts as delivered, and
// is acked, once flushed. The buffer comes from a pool for the length of a
// batch, so an idle stream holds no buffer at all: a gateway keeps many
// thousands of mostly idle streams open. An idle stream gets a heartbeat comment (":") every
// heartbeatInterval. On gateway shutdown the client receives
// "event: goaway" and the stream ends.
package sse

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sluicegw/sluice/entrypoints/internal/wire"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type:       "sse",
		Listener:   "http",
		Operations: mediation.OpSubscribe,
		QoS:        mediation.AllQoS,
		Config:     func() any { c := DefaultConfig(); return &c },
		New: func(_ plugins.Context, cfg any) (mediation.Entrypoint, error) {
			return New(plugins.ConfigOr(cfg, DefaultConfig))
		},
	})
}

// Config configures the sse entrypoint.
type Config struct {
	// HeartbeatInterval is how long a stream may stay silent before a
	// heartbeat comment (":") is written, so that proxies and load
	// balancers keep it open and clients notice a dead connection. 0
	// disables heartbeats; otherwise at least 100ms. Default 15s.
	HeartbeatInterval time.Duration `yaml:"heartbeatInterval"`
	// HeadersAsComment writes every message header as a comment line
	// ":header: <name>=<value>" before the event. Default false.
	HeadersAsComment bool `yaml:"headersAsComment"`
	// MetadataAsComment writes every metadata entry as a comment line
	// ":metadata: <key>=<value>" before the event. Default false.
	MetadataAsComment bool `yaml:"metadataAsComment"`
	// Retry, when set, is sent once at the start of the stream as
	// "retry: <milliseconds>": how long EventSource waits before it
	// reconnects. Default unset (the browser's default, about 3s).
	Retry time.Duration `yaml:"retry"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config { return Config{HeartbeatInterval: 15 * time.Second} }

// minHeartbeat keeps a misconfigured interval from turning into a busy loop.
const minHeartbeat = 100 * time.Millisecond

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.HeartbeatInterval < 0 || (c.HeartbeatInterval > 0 && c.HeartbeatInterval < minHeartbeat) {
		return plugins.Errorf("heartbeatInterval", "must be 0 (no heartbeat) or at least %s, got %s", minHeartbeat, c.HeartbeatInterval)
	}
	if c.Retry < 0 {
		return plugins.Errorf("retry", "must not be negative, got %s", c.Retry)
	}
	return nil
}

const (
	// maxBatch bounds the messages written between two flushes, so that a
	// busy stream still flushes (and acks) regularly, well within the
	// stream's window.
	maxBatch = 1024
	// batchBytes flushes a batch once its buffer holds this much: a
	// catching-up stream writes in 64 KB, well under maxBatch messages.
	batchBytes = 64 << 10
	// poolMax keeps buffers grown by a large message out of the pool.
	poolMax = 128 << 10
	// writeTimeout bounds one flush: a client that stopped reading is
	// disconnected instead of holding its stream and window forever.
	writeTimeout = 30 * time.Second
)

// Entrypoint is the sse entrypoint. One value serves every request of an API.
type Entrypoint struct {
	cfg Config
}

// New returns an sse entrypoint for cfg, or the configuration's problem.
func New(cfg Config) (*Entrypoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Entrypoint{cfg: cfg}, nil
}

// Accepts takes a GET whose Accept header names text/event-stream.
func (e *Entrypoint) Accepts(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		wire.Explicit(r.Header.Values("Accept"), "text/event-stream") &&
		!wire.IsWebSocketUpgrade(r)
}

// Rank places sse after websocket and before http-get.
func (e *Entrypoint) Rank() int { return mediation.RankSSE }

// Operations is subscribe only.
func (e *Entrypoint) Operations() mediation.Operation { return mediation.OpSubscribe }

// Serve streams the client's messages until the client leaves, the source
// fails or the gateway drains.
func (e *Entrypoint) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	ctx := r.Context()
	s, err := e.subscribe(ctx, r, x)
	if err != nil {
		wire.WriteError(w, "subscribe", err)
		return
	}
	defer s.Close()

	rc := http.NewResponseController(w)
	// A stream outlives any server-wide WriteTimeout; each flush sets its own.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if r.ProtoMajor == 1 {
		// No chunked framing: net/http then sends the body as it is and
		// closes the connection when the stream ends, which a stream does
		// anyway. Chunking costs three writes per flush (size line, data,
		// trailing CRLF) and the client's parsing of every chunk.
		h.Set("Transfer-Encoding", "identity")
	}
	w.WriteHeader(http.StatusOK)

	sw := &streamWriter{cfg: &e.cfg, x: x, s: s, w: w, rc: rc}
	if e.cfg.Retry > 0 {
		b := strconv.AppendInt(append(sw.batch(), "retry: "...), e.cfg.Retry.Milliseconds(), 10)
		*sw.buf = append(b, "\n\n"...)
	}
	// Flush the headers now, so that the client knows the stream is open
	// (EventSource fires onopen) before the first message.
	if err := sw.flush(); err != nil || rc.Flush() != nil {
		return
	}
	sw.run(ctx)
}

// subscribe opens the stream at the client's position: Last-Event-ID, else
// ?cursor=, else where the API starts clients without one.
func (e *Entrypoint) subscribe(ctx context.Context, r *http.Request, x *mediation.Exchange) (*mediation.Stream, error) {
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		// A source that cannot replay has no cursors: its ids are message
		// ids, and the browser sends the last one back when it reconnects.
		// Such a client resumes live, as it would anyway; against a source
		// that can replay, a bad Last-Event-ID is a 400.
		if !x.CanReplay() {
			return x.Subscribe(ctx, mediation.StreamRequest{CursorOnDemand: true})
		}
		return x.Subscribe(ctx, mediation.StreamRequest{Cursor: last, CursorOnDemand: true})
	}
	return x.Subscribe(ctx, mediation.StreamRequest{Cursor: wire.QueryCursor(r), CursorOnDemand: true})
}

// streamWriter writes one client's stream.
type streamWriter struct {
	cfg     *Config
	x       *mediation.Exchange
	s       *mediation.Stream
	w       http.ResponseWriter
	rc      *http.ResponseController
	buf     *[]byte              // the batch being encoded; nil between batches
	pending []*mediation.Message // encoded since the last flush, acked by it
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, batchBytes+4<<10); return &b }}

// batch returns the batch buffer, taking one from the pool if needed.
func (sw *streamWriter) batch() []byte {
	if sw.buf == nil {
		sw.buf = bufPool.Get().(*[]byte)
	}
	return *sw.buf
}

// release returns the batch buffer to the pool.
func (sw *streamWriter) release() {
	if sw.buf == nil {
		return
	}
	if cap(*sw.buf) <= poolMax {
		*sw.buf = (*sw.buf)[:0]
		bufPool.Put(sw.buf)
	}
	sw.buf = nil
}

func (sw *streamWriter) run(ctx context.Context) {
	for {
		m, err := sw.s.TryNext(ctx)
		if m == nil && err == nil {
			// Idle: deliver what was written, then wait.
			if err := sw.flush(); err != nil {
				sw.abort(err)
				return
			}
			if sw.draining() {
				sw.goaway()
				return
			}
			m, err = sw.wait(ctx)
			if m == nil && err == nil {
				*sw.buf = append(sw.batch(), heartbeat...)
				if err := sw.flush(); err != nil {
					return
				}
				continue
			}
		}
		if err != nil {
			sw.end(err)
			return
		}
		sw.write(m)
		if len(sw.pending) >= maxBatch || len(*sw.buf) >= batchBytes {
			if err := sw.flush(); err != nil {
				sw.abort(err)
				return
			}
			if sw.draining() {
				sw.goaway()
				return
			}
		}
	}
}

// wait blocks for the next message; (nil, nil) means the heartbeat interval
// passed without one.
func (sw *streamWriter) wait(ctx context.Context) (*mediation.Message, error) {
	hb := sw.cfg.HeartbeatInterval
	if hb <= 0 {
		return sw.s.Next(ctx)
	}
	return sw.s.NextWithin(ctx, hb)
}

func (sw *streamWriter) draining() bool {
	select {
	case <-sw.x.Draining():
		return true
	default:
		return false
	}
}

// write encodes m into the batch; it is acked by the flush that sends it.
func (sw *streamWriter) write(m *mediation.Message) {
	b := sw.batch()
	if sw.cfg.HeadersAsComment {
		for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
			for _, v := range m.Headers[k] {
				b = AppendComment(b, "header: "+k+"="+v)
			}
		}
	}
	if sw.cfg.MetadataAsComment {
		md := m.AllMetadata()
		for _, k := range slices.Sorted(maps.Keys(md)) {
			b = AppendComment(b, "metadata: "+k+"="+md[k])
		}
	}
	// The cursor is written straight from the stream (CursorOnDemand): no
	// token string per message. Sources without cursors send their ids.
	if n := len(b); sw.x.CanReplay() {
		b = sw.s.AppendCursor(append(b, "id: "...))
		if len(b) == n+len("id: ") {
			b = b[:n]
		} else {
			b = append(b, '\n')
		}
		*sw.buf = appendData(append(b, "event: message\n"...), m.Content)
	} else {
		*sw.buf = AppendEvent(b, m.Identity(), "message", m.Content)
	}
	sw.pending = append(sw.pending, m)
}

// flush sends the batch to the client and acks the messages in it.
func (sw *streamWriter) flush() error {
	if sw.buf == nil || len(*sw.buf) == 0 {
		sw.release()
		return nil // nothing encoded, so nothing pending either
	}
	// Every flush arms its own deadline (the stream writes nothing else),
	// so one left over from the last flush never fails an idle stream.
	_ = sw.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := sw.w.Write(*sw.buf)
	sw.release()
	if err == nil {
		err = sw.rc.Flush()
	}
	if err != nil {
		return err
	}
	mediation.AckAll(sw.pending)
	clear(sw.pending)
	sw.pending = sw.pending[:0]
	return nil
}

// abort nacks what was written but not flushed: the client never got it.
func (sw *streamWriter) abort(err error) {
	for _, m := range sw.pending {
		m.Nack(err)
	}
	sw.pending = nil
	sw.release()
}

// goaway tells the client the gateway is shutting down; it reconnects (to
// another instance) from its last id.
func (sw *streamWriter) goaway() {
	*sw.buf = AppendEvent(sw.batch(), "", "goaway", []byte("{}"))
	if err := sw.flush(); err != nil {
		sw.abort(err)
	}
}

// end finishes the stream after Next failed: what was written is still
// delivered, then the stream closes and the client reconnects from its last
// id.
func (sw *streamWriter) end(err error) {
	if errors.Is(err, mediation.ErrDraining) {
		sw.goaway()
		return
	}
	if ferr := sw.flush(); ferr != nil {
		sw.abort(ferr)
		return
	}
	if !errors.Is(err, context.Canceled) && !errors.Is(err, mediation.ErrClosed) {
		sw.x.Metrics().Errors.Inc()
		sw.x.Logger.Warn("sse stream ended", "err", err)
	}
}

// Interface guards.
var (
	_ mediation.Entrypoint = (*Entrypoint)(nil)
	_ mediation.Ranked     = (*Entrypoint)(nil)
	_ mediation.Operator   = (*Entrypoint)(nil)
	_ plugins.Validator    = (*Config)(nil)
)
