package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind classifies the outcome of one delivery attempt.
type Kind int

const (
	// Delivered: the callback answered 2xx; the message may be committed.
	Delivered Kind = iota + 1
	// Retry: a transient failure (5xx, 408, 429, network error, timeout);
	// try again after a back-off, or after Outcome.RetryAfter when set.
	Retry
	// Gone: the callback answered 410; the subscription should be disabled.
	Gone
	// Reject: the callback refused the message for good (other 4xx, a 3xx
	// since redirects are not followed, or a request that can never be
	// sent); the message goes to the dead-letter queue.
	Reject
)

func (k Kind) String() string {
	switch k {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Gone:
		return "gone"
	case Reject:
		return "reject"
	}
	return "unknown(" + strconv.Itoa(int(k)) + ")"
}

// Outcome is the result of one delivery attempt.
type Outcome struct {
	Kind Kind
	// Status is the HTTP status answered, 0 when there was no response.
	Status int
	// RetryAfter is the wait the callback asked for with Retry-After
	// (capped at the back-off's Max), 0 when it asked for none.
	RetryAfter time.Duration
	// Err describes any failure, suitable for a subscription's "last
	// error"; nil when delivered.
	Err error
}

// Request is one message to deliver.
type Request struct {
	// URL is the subscription's callback.
	URL string
	// Body is the message content, sent as is.
	Body []byte
	// ContentType is the Content-Type header; application/octet-stream
	// when empty.
	ContentType string
	// Headers are added to the request (the subscription's headers, and
	// message headers the entrypoint chooses to forward). They cannot
	// override the webhook-* signature headers, Host or framing headers.
	Headers map[string]string
	// Secret signs the request (see Sign); required.
	Secret string
	// MessageID is the webhook-id: stable across retries of one message so
	// receivers can deduplicate.
	MessageID string
}

// Options configures a Client. Zero fields take defaults.
type Options struct {
	// Guard is the SSRF guard applied to every URL and every dialed address.
	Guard Guard
	// Timeout bounds one attempt, from dialing to reading the response
	// (default 10s).
	Timeout time.Duration
	// Backoff caps the Retry-After a callback may ask for (its Max).
	Backoff Backoff
	// UserAgent is sent on every request (default "sluice-webhooks").
	UserAgent string
	// MaxConnsPerHost bounds open connections to one callback host
	// (default 32, room for maxConcurrentDeliveries).
	MaxConnsPerHost int
}

// DefaultTimeout is the per-attempt timeout when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxDrain is how much of a response body is read so the connection can be
// reused; anything longer is dropped with the connection.
const maxDrain = 64 << 10

// maxSnippet is how much of an error response body goes into Outcome.Err.
const maxSnippet = 256

// Client performs webhook delivery attempts. It never follows redirects,
// dials only addresses its Guard accepts, ignores proxy environment
// variables (a proxy would dial the callback on its behalf, unguarded),
// and is safe for concurrent use.
type Client struct {
	http    *http.Client
	guard   Guard
	backoff Backoff
	agent   string
	now     func() time.Time
}

// NewClient returns a Client; call Close when done with it.
func NewClient(opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "sluice-webhooks"
	}
	if opts.MaxConnsPerHost <= 0 {
		opts.MaxConnsPerHost = 32
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           opts.Guard.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   opts.MaxConnsPerHost,
		MaxConnsPerHost:       opts.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &Client{
		http: &http.Client{
			Transport: tr,
			Timeout:   opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		guard:   opts.Guard,
		backoff: opts.Backoff,
		agent:   opts.UserAgent,
		now:     time.Now,
	}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// reserved headers are set by the client; subscription headers may not
// replace them.
var reserved = map[string]bool{
	http.CanonicalHeaderKey(HeaderID):        true,
	http.CanonicalHeaderKey(HeaderTimestamp): true,
	http.CanonicalHeaderKey(HeaderSignature): true,
	"Host":                                   true,
	"Content-Length":                         true,
	"Transfer-Encoding":                      true,
	"Connection":                             true,
	"Upgrade":                                true,
	"Te":                                     true,
	"Trailer":                                true,
	"Keep-Alive":                             true,
	"Proxy-Connection":                       true,
}

// ValidateHeaders checks headers a subscription wants sent with each
// delivery: valid HTTP field names and values, none of the reserved ones
// (webhook-*, Host, framing and hop-by-hop headers).
func ValidateHeaders(h map[string]string) error {
	for k, v := range h {
		if err := ValidateHeader(k, v); err != nil {
			return err
		}
	}
	return nil
}

// ValidateHeader is ValidateHeaders for one header.
func ValidateHeader(name, value string) error {
	if !validFieldName(name) {
		return fmt.Errorf("header name %q is not a valid HTTP field name", name)
	}
	if reserved[http.CanonicalHeaderKey(name)] {
		return fmt.Errorf("header %q is set by the gateway and cannot be configured", name)
	}
	if !validFieldValue(value) {
		return fmt.Errorf("header %q: value contains control characters or is not UTF-8", name)
	}
	return nil
}

func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func validFieldValue(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Deliver POSTs req once and classifies the outcome. A fresh timestamp and
// signature are made for every attempt; the webhook-id stays the caller's.
func (c *Client) Deliver(ctx context.Context, req Request) Outcome {
	if err := c.guard.CheckURL(req.URL); err != nil {
		return Outcome{Kind: Reject, Err: err}
	}
	if err := ValidateHeaders(req.Headers); err != nil {
		return Outcome{Kind: Reject, Err: err}
	}
	ts := c.now()
	sig, err := Sign(req.Secret, req.MessageID, ts, req.Body)
	if err != nil {
		return Outcome{Kind: Reject, Err: fmt.Errorf("cannot sign the delivery: %w", err)}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return Outcome{Kind: Reject, Err: err}
	}
	ct := req.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	hreq.Header.Set("Content-Type", ct)
	hreq.Header.Set("User-Agent", c.agent)
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	hreq.Header[http.CanonicalHeaderKey(HeaderID)] = []string{req.MessageID}
	hreq.Header[http.CanonicalHeaderKey(HeaderTimestamp)] = []string{strconv.FormatInt(ts.Unix(), 10)}
	hreq.Header[http.CanonicalHeaderKey(HeaderSignature)] = []string{sig}

	resp, err := c.http.Do(hreq)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			// The address is forbidden: retrying cannot help.
			return Outcome{Kind: Reject, Err: err}
		}
		return Outcome{Kind: Retry, Err: err}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxDrain))
	return c.classify(resp, snippet)
}

func (c *Client) classify(resp *http.Response, body []byte) Outcome {
	o := Outcome{Status: resp.StatusCode}
	s := resp.StatusCode
	switch {
	case s >= 200 && s < 300:
		o.Kind = Delivered
		return o
	case s == http.StatusGone:
		o.Kind = Gone
	case s >= 500, s == http.StatusRequestTimeout, s == http.StatusTooManyRequests:
		o.Kind = Retry
		if d, ok := c.backoff.RetryAfter(resp, c.now()); ok {
			o.RetryAfter = d
		}
	default: // other 4xx, 3xx (redirects are not followed), 1xx leftovers
		o.Kind = Reject
	}
	msg := fmt.Sprintf("callback answered %s", resp.Status)
	if s >= 300 && s < 400 {
		if loc := resp.Header.Get("Location"); loc != "" {
			msg += fmt.Sprintf(" to %q (redirects are not followed)", truncate(loc))
		}
	}
	if t := printable(body); t != "" {
		msg += ": " + t
	}
	o.Err = errors.New(msg)
	return o
}

// printable returns the start of an error body fit for a status display.
func printable(b []byte) string {
	if len(b) > maxSnippet {
		b = b[:maxSnippet]
	}
	s := strings.ToValidUTF8(string(b), "")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

func truncate(s string) string {
	if len(s) > maxSnippet {
		return strings.ToValidUTF8(s[:maxSnippet], "") + "..."
	}
	return s
}
