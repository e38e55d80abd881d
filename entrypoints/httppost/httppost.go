// Package httppost is the `http-post` entrypoint: the body of a POST is one
// message published to the API's endpoint.
//
// The answer is 202 Accepted, with no body, once the broker confirmed the
// message at the entrypoint's QoS. A body over maxContentLength is refused
// with 413 (checked on Content-Length first, then while reading, for chunked
// bodies); a broker that cannot be reached gives 503 with Retry-After.
//
// The request's Content-Type always becomes the message header
// "content-type". With requestHeadersToMessage the other request headers
// are copied too, except those that describe the connection rather than the
// message (hop-by-hop headers, Host, Content-Length) and the client's
// credentials (Authorization, Proxy-Authorization, Cookie, X-Api-Key), which
// would otherwise reach every consumer of the topic.
package httppost

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/entrypoints/internal/wire"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type:       "http-post",
		Listener:   "http",
		Operations: mediation.OpPublish,
		QoS:        mediation.AllQoS,
		Config:     func() any { c := DefaultConfig(); return &c },
		New: func(_ plugins.Context, cfg any) (mediation.Entrypoint, error) {
			return New(plugins.ConfigOr(cfg, DefaultConfig))
		},
	})
}

// Config configures the http-post entrypoint.
type Config struct {
	// RequestHeadersToMessage copies the request headers into the message
	// headers (see the package documentation for those left out). Default
	// false: only content-type is kept.
	RequestHeadersToMessage bool `yaml:"requestHeadersToMessage"`
	// MaxContentLength is the largest body accepted, in bytes; a larger one
	// is answered 413. At most 64 MiB. Default 1 MiB.
	MaxContentLength int64 `yaml:"maxContentLength"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config { return Config{MaxContentLength: 1 << 20} }

// maxContentLength bounds the memory one request may hold.
const maxContentLength = 64 << 20

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxContentLength < 1 || c.MaxContentLength > maxContentLength {
		return plugins.Errorf("maxContentLength", "must be between 1 and %d bytes, got %d", maxContentLength, c.MaxContentLength)
	}
	return nil
}

// Entrypoint is the http-post entrypoint. One value serves every request of
// an API.
type Entrypoint struct {
	cfg Config
}

// New returns an http-post entrypoint for cfg, or the configuration's
// problem.
func New(cfg Config) (*Entrypoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Entrypoint{cfg: cfg}, nil
}

// Accepts takes every POST.
func (e *Entrypoint) Accepts(r *http.Request) bool { return r.Method == http.MethodPost }

// Rank places http-post last among the built-ins.
func (e *Entrypoint) Rank() int { return mediation.RankHTTPPost }

// Operations is publish only.
func (e *Entrypoint) Operations() mediation.Operation { return mediation.OpPublish }

// Serve publishes the body and answers 202 once the broker confirmed it.
func (e *Entrypoint) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	limit := e.cfg.MaxContentLength
	if r.ContentLength > limit {
		tooLarge(w, limit)
		return
	}
	// Content-Length, when sent, sizes the buffer at once (plus the room
	// ReadFrom wants to see EOF without growing); -1 (chunked) grows as read.
	buf := bytes.NewBuffer(make([]byte, 0, max(0, min(r.ContentLength, limit))+bytes.MinRead))
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge(w, limit)
			return
		}
		if r.Context().Err() == nil {
			mediation.WriteProblem(w, http.StatusBadRequest, "Could not read the request body", err.Error(), nil)
		}
		return
	}

	msg := mediation.NewMessage(buf.Bytes())
	msg.Headers = mediation.Headers{}
	if e.cfg.RequestHeadersToMessage {
		copyHeaders(msg.Headers, r.Header)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		msg.Headers.Set("content-type", ct)
	}
	if err := x.Publish(r.Context(), msg); err != nil {
		wire.WriteError(w, "publish", err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func tooLarge(w http.ResponseWriter, limit int64) {
	mediation.WriteProblem(w, http.StatusRequestEntityTooLarge, "Message too large: send at most "+strconv.FormatInt(limit, 10)+" bytes",
		"the body is larger than this API's maxContentLength", nil)
}

// notCopied are the headers that describe the connection or carry the
// client's credentials rather than the message (lower case).
var notCopied = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true, "trailer": true,
	"transfer-encoding": true, "upgrade": true, "host": true, "content-length": true,
	"authorization": true, "proxy-authorization": true, "proxy-authenticate": true, "cookie": true, "x-api-key": true,
}

// copyHeaders copies the request headers into message headers, leaving out
// notCopied and the headers the Connection header names as hop-by-hop.
func copyHeaders(dst mediation.Headers, h http.Header) {
	var hop map[string]bool
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				if hop == nil {
					hop = map[string]bool{}
				}
				hop[name] = true
			}
		}
	}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if notCopied[lk] || hop[lk] {
			continue
		}
		for _, v := range vs {
			dst.Add(lk, v)
		}
	}
}

// Interface guards.
var (
	_ mediation.Entrypoint = (*Entrypoint)(nil)
	_ mediation.Ranked     = (*Entrypoint)(nil)
	_ mediation.Operator   = (*Entrypoint)(nil)
	_ plugins.Validator    = (*Config)(nil)
)
