package webhook

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluicegw/sluice/entrypoints/webhook/delivery"
	"github.com/sluicegw/sluice/mediation"
)

// End says why a Runner stopped on its own. A zero End means it was stopped:
// its context ended or the API drained.
type End struct {
	// Status is StatusFailed or StatusGone.
	Status string
	// Err is the failure that ended delivery.
	Err error
}

// Terminal subscription statuses a Runner ends with; the gateway stores them.
const (
	// StatusFailed: a message could not be delivered and there is no
	// dead-letter queue. Nothing from it on was committed; resuming the
	// subscription delivers it again.
	StatusFailed = "failed"
	// StatusGone: the callback answered 410 Gone; the subscription is
	// disabled.
	StatusGone = "gone"
)

// Stats are a Runner's counts since it started.
type Stats struct {
	// Delivered counts messages the callback accepted (2xx).
	Delivered int64
	// Failed counts failed delivery attempts, retried or not.
	Failed int64
	// DeadLettered counts messages sent to the dead-letter queue.
	DeadLettered int64
	// Retrying is the number of messages waiting for a retry now.
	Retrying int
	// LastError is the most recent failure, "" if none.
	LastError string
	// LastErrorAt and LastDeliveryAt are zero until the first such event.
	LastErrorAt    time.Time
	LastDeliveryAt time.Time
}

// Options configure a Runner.
type Options struct {
	// Subscription is what to deliver to; its Retry defaults are applied.
	Subscription Subscription
	// Exchange is the runner's exchange of the API (mediation.API.Attach).
	// Its subscribe-phase flows apply to every message.
	Exchange *mediation.Exchange
	// Client performs the deliveries; it may be shared by runners.
	Client *delivery.Client
	// DLQ receives messages the callback refused or that exhausted their
	// retries; nil means the subscription fails on them instead.
	DLQ mediation.Endpoint
	// Metrics count outcomes; nil counts nothing.
	Metrics *Metrics
	Logger  *slog.Logger // default slog.Default()
	// OnSubscribed, when set, is called each time the runner's position on
	// the endpoint is open: from the first time on, messages the broker
	// takes reach the subscription, even on brokers that cannot replay.
	OnSubscribed func()
}

// Metrics are the counters a Runner updates, per API.
type Metrics struct {
	Delivered    mediation.Counter // 2xx
	Retried      mediation.Counter // attempts that will be retried
	DeadLettered mediation.Counter // messages sent to the DLQ
	Failed       mediation.Counter // subscriptions that stopped as failed or gone
}

// Runner delivers one subscription's messages until it is stopped or fails.
//
// Delivery rules: a message is committed after a 2xx. 5xx, 408, 429 and
// network errors are retried with exponential back-off and jitter (a 429 or
// 503 Retry-After is honoured, capped at Retry.MaxDelay) until
// Retry.MaxAttempts; other 4xx, a redirect, or exhausted retries send the
// message to the DLQ (then commit it) or, without a DLQ, end the runner
// with StatusFailed and nothing past the last delivered message committed.
// A 410 Gone ends it with StatusGone. Messages are delivered one at a time
// in source order unless MaxConcurrentDeliveries is above 1; then messages
// of one key stay in order and keyless messages spread over the workers.
type Runner struct {
	sub     Subscription
	x       *mediation.Exchange
	client  *delivery.Client
	dlq     mediation.Endpoint
	m       Metrics
	log     *slog.Logger
	backoff delivery.Backoff
	onSub   func()
	// subHeaders are the subscription's headers with canonical names.
	subHeaders map[string]string

	mu    sync.Mutex
	stats Stats
}

// NewRunner returns a runner; nothing happens until Run.
func NewRunner(o Options) *Runner {
	sub := o.Subscription
	sub.Retry = sub.Retry.WithDefaults()
	r := &Runner{
		sub: sub, x: o.Exchange, client: o.Client, dlq: o.DLQ, onSub: o.OnSubscribed,
		log:     cmp.Or(o.Logger, slog.Default()).With("subscription", sub.ID),
		backoff: delivery.Backoff{Initial: sub.Retry.InitialDelay, Max: sub.Retry.MaxDelay, Multiplier: 2},
	}
	r.subHeaders = make(map[string]string, len(sub.Headers))
	for k, v := range sub.Headers {
		r.subHeaders[http.CanonicalHeaderKey(k)] = v
	}
	nop := nopCounter{}
	r.m = Metrics{Delivered: nop, Retried: nop, DeadLettered: nop, Failed: nop}
	if o.Metrics != nil {
		r.m = *o.Metrics
	}
	return r
}

// Stats returns the counts so far.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// errStopped ends delivery without a verdict: the context ended or the API
// drains; the message in hand is not committed and comes again later.
var errStopped = errors.New("webhook runner stopped")

// endError carries an End out of the delivery path.
type endError struct{ end End }

func (e *endError) Error() string { return e.end.Status + ": " + e.end.Err.Error() }

// Run delivers until ctx ends, the API drains (a zero End), or the
// subscription fails or is gone. It opens the subscription's durable
// position on the API's endpoint, reopening it with back-off when the
// broker fails, and closes it (committing what was delivered) before it
// returns.
func (r *Runner) Run(ctx context.Context) End {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.x.Draining():
			cancel()
		case <-ctx.Done():
		}
	}()
	reopen := delivery.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}
	for failures := 0; ; {
		stream, err := r.x.Subscribe(ctx, mediation.StreamRequest{Group: r.sub.ID})
		if err == nil {
			if r.onSub != nil {
				r.onSub()
			}
			err = r.consume(ctx, stream)
			_ = stream.Close() // commits what was acknowledged
			failures = 0
		}
		var ee *endError
		switch {
		case errors.As(err, &ee):
			r.m.Failed.Inc()
			return ee.end
		case ctx.Err() != nil, errors.Is(err, errStopped), errors.Is(err, mediation.ErrDraining):
			return End{}
		}
		failures++
		r.noteError(fmt.Errorf("reading the endpoint: %w", err))
		r.log.Warn("webhook subscription interrupted; reopening", "err", err)
		if !sleep(ctx, reopen.Delay(failures, nil)) {
			return End{}
		}
	}
}

// consume delivers the stream's messages until an error or an End.
func (r *Runner) consume(ctx context.Context, s *mediation.Stream) error {
	if r.sub.MaxConcurrentDeliveries <= 1 {
		for {
			m, err := s.Next(ctx)
			if err != nil {
				return err
			}
			if err := r.handle(ctx, m); err != nil {
				return err
			}
		}
	}
	return r.consumeConcurrently(ctx, s, r.sub.MaxConcurrentDeliveries)
}

// consumeConcurrently spreads messages over n lanes, one worker each: a
// key's messages always take the same lane, so they stay in order. The
// stream's window bounds what is read ahead; the lanes hold a few each.
func (r *Runner) consumeConcurrently(ctx context.Context, s *mediation.Stream, n int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lanes := make([]chan *mediation.Message, n)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan *mediation.Message, 4)
		wg.Go(func() {
			for m := range lanes[i] {
				if err := r.handle(ctx, m); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	var err error
	for next := 0; ; next++ {
		var m *mediation.Message
		if m, err = s.Next(ctx); err != nil {
			break
		}
		lane := next % n
		if len(m.Key) > 0 {
			h := fnv.New32a()
			_, _ = h.Write(m.Key)
			lane = int(h.Sum32() % uint32(n))
		}
		select {
		case lanes[lane] <- m:
			continue
		case <-ctx.Done():
		}
		break
	}
	for _, l := range lanes {
		close(l)
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // a worker's End or stop
	}
	return err
}

// handle delivers one message with its retries, then acks it, dead-letters
// it, or returns an *endError or errStopped without acking it.
func (r *Runner) handle(ctx context.Context, m *mediation.Message) error {
	req := delivery.Request{
		URL: r.sub.CallbackURL, Body: m.Content, ContentType: m.Headers.Get("content-type"),
		Headers: r.headersFor(m), Secret: r.sub.Secret, MessageID: r.webhookID(m),
	}
	for attempt := 1; ; attempt++ {
		// An attempt under way is let finish (the client's timeout bounds
		// it): cutting it would only turn a delivery into a duplicate.
		out := r.client.Deliver(context.WithoutCancel(ctx), req)
		switch out.Kind {
		case delivery.Delivered:
			m.Ack()
			r.noteDelivered(attempt > 1)
			r.m.Delivered.Inc()
			return nil
		}
		stopRetrying := 0
		if attempt > 1 {
			stopRetrying = -1
		}
		switch {
		case out.Kind == delivery.Gone:
			r.noteAttempt(out.Err, stopRetrying)
			return &endError{End{Status: StatusGone, Err: out.Err}}
		case out.Kind == delivery.Reject:
			r.noteAttempt(out.Err, stopRetrying)
			return r.deadLetter(ctx, m, out.Err)
		case attempt >= r.sub.Retry.MaxAttempts:
			r.noteAttempt(out.Err, stopRetrying)
			return r.deadLetter(ctx, m, fmt.Errorf("gave up after %d attempts: %w", attempt, out.Err))
		}
		startRetrying := 0
		if attempt == 1 {
			startRetrying = 1
		}
		r.noteAttempt(out.Err, startRetrying)
		r.m.Retried.Inc()
		wait := r.backoff.Delay(attempt, nil)
		if out.RetryAfter > 0 {
			wait = min(out.RetryAfter, r.sub.Retry.MaxDelay)
		}
		if !sleep(ctx, wait) {
			r.retryDone()
			return errStopped
		}
	}
}

// deadLetter sends m to the DLQ and acks it, or ends the runner as failed
// when there is no DLQ. A DLQ that cannot take the message is retried: the
// message is never committed before it is somewhere.
func (r *Runner) deadLetter(ctx context.Context, m *mediation.Message, cause error) error {
	if r.dlq == nil {
		return &endError{End{Status: StatusFailed, Err: cause}}
	}
	dl := m.Clone()
	dl.Headers.Set("x-sluice-dlq-reason", truncate(cause.Error(), 1024))
	dl.Headers.Set("x-sluice-subscription", r.sub.ID)
	if id := m.Identity(); id != "" {
		dl.Headers.Set("x-sluice-source", id)
	}
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.dlq.Publish(pctx, dl)
		cancel()
		if err == nil {
			m.Ack()
			r.mu.Lock()
			r.stats.DeadLettered++
			r.mu.Unlock()
			r.m.DeadLettered.Inc()
			return nil
		}
		r.noteError(fmt.Errorf("dead-letter queue refused the message (%v) after: %w", err, cause))
		if !sleep(ctx, r.backoff.Delay(attempt, nil)) {
			return errStopped
		}
	}
}

// headersFor returns the headers of one delivery: the message's (those
// that are valid HTTP fields and not set by the gateway), then the
// subscription's, which win. Names are canonical, so that a subscription
// header replaces a message header of the same name whatever its case.
func (r *Runner) headersFor(m *mediation.Message) map[string]string {
	h := make(map[string]string, len(m.Headers)+len(r.sub.Headers))
	for k, vs := range m.Headers {
		if k == "content-type" || len(vs) == 0 {
			continue
		}
		v := vs[0]
		if len(vs) > 1 {
			v = strings.Join(vs, ", ")
		}
		if delivery.ValidateHeader(k, v) == nil {
			h[http.CanonicalHeaderKey(k)] = v
		}
	}
	for k, v := range r.subHeaders {
		h[k] = v
	}
	return h
}

// webhookID is the message's webhook-id: derived from the subscription and
// the message's identity, so that it is the same on every retry and after
// a gateway restart, and receivers can deduplicate. A message without an
// identity (core NATS, MQTT) gets a random one, stable across its retries.
func (r *Runner) webhookID(m *mediation.Message) string {
	id := m.Identity()
	if id == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return "msg_" + base64.RawURLEncoding.EncodeToString(b)
	}
	sum := sha256.Sum256([]byte(r.sub.ID + "\x00" + id))
	return "msg_" + base64.RawURLEncoding.EncodeToString(sum[:16])
}

func (r *Runner) noteDelivered(wasRetrying bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Delivered++
	r.stats.LastDeliveryAt = time.Now()
	if wasRetrying {
		r.stats.Retrying--
	}
}

// noteAttempt records a failed delivery attempt; retrying is +1 when the
// message starts retrying, -1 when a retrying message stops, else 0.
func (r *Runner) noteAttempt(err error, retrying int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Failed++
	r.stats.Retrying += retrying
	r.stats.LastError, r.stats.LastErrorAt = err.Error(), time.Now()
}

// noteError records a failure that is not a delivery attempt (the broker,
// the DLQ).
func (r *Runner) noteError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.LastError, r.stats.LastErrorAt = err.Error(), time.Now()
}

func (r *Runner) retryDone() {
	r.mu.Lock()
	r.stats.Retrying--
	r.mu.Unlock()
}

// sleep waits d or until ctx ends; false when ctx ended.
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

type nopCounter struct{}

func (nopCounter) Inc() {}
