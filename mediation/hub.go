package mediation

import (
	"context"
	"sync"
)

// hub shares one live broker subscription among the clients of an API that
// start live at QoS none or auto. Every client gets every message (its own
// subscribe-phase policies filter after the hub); a client whose window is
// full is handled by its slow-consumer policy, so one slow client never grows
// a queue.
type hub struct {
	api    *API
	sub    Subscription
	cancel context.CancelFunc

	mu      sync.Mutex
	cursor  Cursor    // positions after the last message dispatched
	clients []*Stream // copy-on-write: the dispatch loop reads a snapshot
	closed  bool
}

// joinHub adds a client stream to the API's hub, opening the shared broker
// subscription on the first join.
func (a *API) joinHub(ctx context.Context, x *Exchange) (*Stream, error) {
	a.hubMu.Lock()
	defer a.hubMu.Unlock()
	h := a.hub
	if h == nil {
		// The shared subscription outlives the client that opened it.
		sub, err := a.endpoint.Subscribe(context.WithoutCancel(ctx), SubscribeRequest{Start: StartLatest, QoS: QoSNone})
		if err != nil {
			return nil, err
		}
		hctx, cancel := context.WithCancel(context.Background())
		h = &hub{api: a, sub: sub, cancel: cancel, cursor: sub.Start().Clone()}
		a.hub = h
		go h.run(hctx)
	}
	s := newStream(x)
	s.hub = h
	s.track = a.caps.Replay
	h.mu.Lock()
	s.cursor = h.cursor.Clone()
	h.clients = append(h.clients[:len(h.clients):len(h.clients)], s)
	h.mu.Unlock()
	return s, nil
}

func (h *hub) run(ctx context.Context) {
	for {
		m, err := h.sub.Next(ctx)
		if err != nil {
			h.close(err)
			return
		}
		m.Ack() // live fan-out commits nothing
		h.mu.Lock()
		if m.Position.Stream != "" {
			h.cursor.Advance(m.Position)
		}
		clients := h.clients
		h.mu.Unlock()
		for _, s := range clients {
			h.offer(s, m)
		}
	}
}

func (h *hub) offer(s *Stream, m *Message) {
	select {
	case <-s.failed: // disconnected or closed: nothing after the gap
		return
	default:
	}
	if s.queue.queued.Load() < s.window {
		s.queue.push(m)
		return
	}
	switch s.x.binding.SlowConsumer {
	case SlowConsumerBlock:
		for s.queue.queued.Load() >= s.window {
			select {
			case <-s.room:
			case <-s.failed:
				return
			}
		}
	case SlowConsumerDropOldest:
		// The oldest message the client has not picked up yet goes; when it
		// picked everything up, the queue holds at most one over the window.
		if s.queue.dropOldest() {
			s.x.binding.metrics.Dropped.Inc()
		}
	default:
		s.x.binding.metrics.Dropped.Inc()
		s.fail(ErrSlowConsumer)
		return
	}
	s.queue.push(m)
}

// leave removes s; the last client to leave closes the broker subscription.
func (h *hub) leave(s *Stream) {
	a := h.api
	a.hubMu.Lock()
	h.mu.Lock()
	clients := make([]*Stream, 0, len(h.clients))
	for _, c := range h.clients {
		if c != s {
			clients = append(clients, c)
		}
	}
	h.clients = clients
	last := len(clients) == 0 && !h.closed
	if last {
		h.closed = true
		if a.hub == h {
			a.hub = nil
		}
	}
	h.mu.Unlock()
	a.hubMu.Unlock()
	if last {
		h.cancel()
		_ = h.sub.Close()
	}
}

// close fails every client with err and detaches the hub from its API, so the
// next client opens a fresh subscription.
func (h *hub) close(err error) {
	a := h.api
	a.hubMu.Lock()
	if a.hub == h {
		a.hub = nil
	}
	a.hubMu.Unlock()
	h.mu.Lock()
	clients := h.clients
	wasClosed := h.closed
	h.closed = true
	h.mu.Unlock()
	for _, s := range clients {
		s.fail(err)
	}
	if !wasClosed {
		h.cancel()
		_ = h.sub.Close()
	}
}
