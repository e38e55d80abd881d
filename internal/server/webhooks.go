package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluicegw/sluice/entrypoints/webhook"
	"github.com/sluicegw/sluice/entrypoints/webhook/delivery"
	"github.com/sluicegw/sluice/internal/admin"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/mediation"
)

// hooks runs one webhook.Runner per active subscription of a deployed API
// with a webhook entrypoint, and keeps the subscriptions' status in the
// store. A subscription's runner follows its API through redeployments:
// when the API it runs on drains because a new version replaced it, the
// runner reattaches to the new one on the same durable position.
type hooks struct {
	s     *Server
	guard delivery.Guard
	// flushEvery is how often delivery counts are written to the store;
	// each write is a durable transaction, so not one per delivery.
	flushEvery time.Duration

	mu      sync.Mutex
	running map[string]*hookRun
	closing bool
	wg      sync.WaitGroup // run loops
	stop    chan struct{}  // ends the flush loop
}

// hookRun is one subscription's run loop.
type hookRun struct {
	sub    store.Subscription
	cancel context.CancelFunc
	done   chan struct{}
	// subscribed is closed once the runner's position on the endpoint is
	// open for the first time.
	subscribed     chan struct{}
	subscribedOnce sync.Once

	mu      sync.Mutex // serialises flushes; guards runner and flushed
	runner  *webhook.Runner
	flushed webhook.Stats // the runner's counts already in the store
}

func newHooks(s *Server) *hooks {
	return &hooks{
		s: s, guard: delivery.Guard{AllowPrivate: s.cfg.Server.Webhooks.AllowPrivateNetworks},
		flushEvery: time.Second, running: map[string]*hookRun{}, stop: make(chan struct{}),
	}
}

// startAll starts the runners of every stored active subscription and the
// status flush loop.
func (h *hooks) startAll(ctx context.Context) {
	go h.flushLoop()
	subs, err := h.s.store.ListSubscriptions(ctx, "")
	if err != nil {
		h.s.log.Error("listing webhook subscriptions", "err", err)
		return
	}
	for _, sub := range subs {
		h.start(sub)
	}
}

// startAPI starts the runners of an API's active subscriptions that are not
// running, after the API was deployed.
func (h *hooks) startAPI(ctx context.Context, apiID string) {
	subs, err := h.s.store.ListSubscriptions(ctx, apiID)
	if err != nil {
		h.s.log.Error("listing webhook subscriptions", "api", apiID, "err", err)
		return
	}
	for _, sub := range subs {
		h.start(sub)
	}
}

// start runs sub unless it is not active, already runs, its API has no
// webhook entrypoint, or the gateway shuts down. The channel returned is
// closed once the subscription's position on the endpoint is open; it is
// nil when nothing was started.
func (h *hooks) start(sub store.Subscription) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing || sub.Status != store.StatusActive || h.running[sub.ID] != nil || h.s.hookOf(sub.APIID) == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	hr := &hookRun{sub: sub, cancel: cancel, done: make(chan struct{}), subscribed: make(chan struct{})}
	h.running[sub.ID] = hr
	h.wg.Go(func() { h.run(ctx, hr) })
	return hr.subscribed
}

// stopSub stops the runner of id, if any, and waits for it: the delivery
// under way finishes (within the request timeout), nothing new starts.
func (h *hooks) stopSub(id string) {
	h.mu.Lock()
	hr := h.running[id]
	h.mu.Unlock()
	if hr != nil {
		hr.cancel()
		<-hr.done
	}
}

// run attaches the subscription to the current version of its API and
// delivers until it is stopped, fails, or its API is gone.
func (h *hooks) run(ctx context.Context, hr *hookRun) {
	defer close(hr.done)
	id, apiID := hr.sub.ID, hr.sub.APIID
	log := h.s.log.With("api", apiID, "subscription", id)
	for {
		b := h.s.builtAPI(apiID)
		var end webhook.End
		attached := false
		if b != nil && b.hook != nil {
			if x, done, err := b.api.Attach("webhook"); err == nil {
				attached = true
				end = h.runOn(ctx, hr, b, x, done)
			}
		}
		if end.Status != "" {
			log.Warn("webhook subscription stopped", "status", end.Status, "err", end.Err)
			h.setStatus(id, end)
		}
		h.mu.Lock()
		again := end.Status == "" && ctx.Err() == nil && !h.closing && h.s.hookOf(apiID) != nil
		if !again {
			delete(h.running, id)
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		if !attached {
			// The API is being replaced: its successor takes a moment.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// runOn runs the subscription on one version of its API until it ends.
func (h *hooks) runOn(ctx context.Context, hr *hookRun, b *builtAPI, x *mediation.Exchange, done func()) webhook.End {
	defer done()
	cfg := b.hook.entry.Config()
	retry := webhookSub(hr.sub).Retry.WithDefaults()
	client := delivery.NewClient(delivery.Options{
		Guard: h.guard, Timeout: cfg.RequestTimeout, Backoff: delivery.Backoff{Max: retry.MaxDelay},
		MaxConnsPerHost: max(1, hr.sub.MaxConcurrentDeliveries),
	})
	defer client.Close()
	x.Attributes["subscription.id"] = hr.sub.ID
	r := webhook.NewRunner(webhook.Options{
		Subscription: webhookSub(hr.sub), Exchange: x, Client: client, DLQ: b.hook.dlq,
		Metrics: h.s.metrics.Webhook(b.cfg.ID), Logger: h.s.log.With("api", b.cfg.ID),
		OnSubscribed: func() { hr.subscribedOnce.Do(func() { close(hr.subscribed) }) },
	})
	hr.mu.Lock()
	hr.runner, hr.flushed = r, webhook.Stats{}
	hr.mu.Unlock()
	end := r.Run(ctx)
	h.flush(hr) // before done: the store outlives every exchange
	return end
}

// webhookSub is the runner's view of a stored subscription.
func webhookSub(s store.Subscription) webhook.Subscription {
	return webhook.Subscription{
		ID: s.ID, CallbackURL: s.CallbackURL, Headers: s.Headers, Secret: s.Secret,
		Retry:                   webhook.Retry{MaxAttempts: s.Retry.MaxAttempts, InitialDelay: s.Retry.InitialDelay, MaxDelay: s.Retry.MaxDelay},
		MaxConcurrentDeliveries: s.MaxConcurrentDeliveries,
	}
}

// flush adds what the subscription's runner counted since the last flush
// to its stored status.
func (h *hooks) flush(hr *hookRun) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	if hr.runner == nil {
		return
	}
	cur := hr.runner.Stats()
	prev := hr.flushed
	if cur == prev {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := h.s.store.UpdateStatus(ctx, hr.sub.ID, func(s *store.Subscription) error {
		s.Delivered += cur.Delivered - prev.Delivered
		s.Failed += cur.Failed - prev.Failed
		s.DeadLettered += cur.DeadLettered - prev.DeadLettered
		s.Retrying = cur.Retrying
		if cur.LastErrorAt.After(prev.LastErrorAt) {
			s.LastError, s.LastErrorAt = cur.LastError, cur.LastErrorAt.UTC()
		}
		if cur.LastDeliveryAt.After(prev.LastDeliveryAt) {
			s.LastDeliveryAt = cur.LastDeliveryAt.UTC()
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.s.log.Warn("saving webhook subscription status", "subscription", hr.sub.ID, "err", err)
		return
	}
	hr.flushed = cur
}

func (h *hooks) flushLoop() {
	t := time.NewTicker(h.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		runs := make([]*hookRun, 0, len(h.running))
		for _, hr := range h.running {
			runs = append(runs, hr)
		}
		h.mu.Unlock()
		for _, hr := range runs {
			h.flush(hr)
		}
	}
}

// flushID flushes the subscription's counts if it runs, so that a status
// read right after is current.
func (h *hooks) flushID(id string) {
	h.mu.Lock()
	hr := h.running[id]
	h.mu.Unlock()
	if hr != nil {
		h.flush(hr)
	}
}

// setStatus stores the terminal status a runner ended with.
func (h *hooks) setStatus(id string, end webhook.End) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status := store.StatusFailed
	if end.Status == webhook.StatusGone {
		status = store.StatusGone
	}
	err := h.s.store.UpdateStatus(ctx, id, func(s *store.Subscription) error {
		s.Status = status
		if end.Err != nil {
			s.LastError, s.LastErrorAt = end.Err.Error(), time.Now().UTC()
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.s.log.Error("saving webhook subscription status", "subscription", id, "status", end.Status, "err", err)
	}
}

// shutdown stops starting runners; the APIs' drain stops the running ones.
func (h *hooks) shutdown() {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
}

// wait waits for every run loop and stops the flush loop.
func (h *hooks) wait() {
	h.wg.Wait()
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
}

// newID returns a random identifier with a prefix.
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// errBadSubscription wraps what the subscriber got wrong.
func errBadSubscription(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{admin.ErrBadRequest}, args...)...)
}
