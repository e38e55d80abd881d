package mediation

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
)

// Exchange is one client interaction with an API, handed to the entrypoint
// that serves it: publish messages, open a stream, know when to stop.
type Exchange struct {
	api     *API
	binding *binding

	// EntrypointType is the type of the entrypoint serving the exchange.
	EntrypointType string
	// QoS is the entrypoint's configured guarantee.
	QoS QoS
	// RelativePath is the request path below the listener path.
	RelativePath string
	// Request is the client's request, after the request phase.
	Request *http.Request
	// Attributes carry values between policies of one exchange.
	Attributes map[string]any
	Logger     *slog.Logger
}

// APIID returns the id of the API the exchange belongs to.
func (x *Exchange) APIID() string { return x.api.id }

// Draining is closed when the gateway or the API shuts down: entrypoints end
// the exchange cleanly and return.
func (x *Exchange) Draining() <-chan struct{} { return x.api.draining }

// Hold keeps the exchange open after the entrypoint's Serve returned, for
// an entrypoint that hands the rest of it to something else (an event loop
// relaying a backend's response): Drain waits for it until Release. Call
// it only from Serve, and Release exactly once.
func (x *Exchange) Hold() { x.api.active.Add(1) } // Serve's own count is held: no drain can be done

// Release ends what Hold began.
func (x *Exchange) Release() { x.api.active.Done() }

// Group returns every endpoint of the API's first group (shared slice).
func (x *Exchange) Group() []Endpoint { return x.api.group }

// CanReplay reports whether the API's endpoint can resume from a cursor.
func (x *Exchange) CanReplay() bool { return x.api.caps.Replay }

// Metrics returns the metrics of the exchange's entrypoint.
func (x *Exchange) Metrics() EntrypointMetrics { return x.binding.metrics }

// Publish runs the publish phase on msg and sends what it yields to the
// endpoint, returning once the broker confirmed it. A message dropped by a
// policy returns nil: it was handled as configured.
func (x *Exchange) Publish(ctx context.Context, msg *Message) error {
	ep := x.api.endpoint
	if ep == nil || !x.api.caps.Publish {
		return fmt.Errorf("publish: %w", ErrUnsupported)
	}
	msg, err := x.runMessagePolicies(ctx, msg, OpPublish)
	if err != nil || msg == nil {
		return err
	}
	if err := ep.Publish(ctx, msg); err != nil {
		x.binding.metrics.Errors.Inc()
		return err
	}
	x.binding.metrics.MessagesIn.Inc()
	return nil
}

// runMessagePolicies applies the publish or subscribe steps of every matching
// flow in order; nil means dropped.
func (x *Exchange) runMessagePolicies(ctx context.Context, msg *Message, op Operation) (*Message, error) {
	flows := x.api.flows
	for i := range flows {
		f := &flows[i]
		steps := f.Publish
		if op == OpSubscribe {
			steps = f.Subscribe
		}
		if len(steps) == 0 || !f.matches(x, x.Request, op) {
			continue
		}
		for _, p := range steps {
			mp, ok := p.(MessagePolicy)
			if !ok {
				continue
			}
			var err error
			if msg, err = mp.OnMessage(ctx, x, msg); err != nil || msg == nil {
				return nil, err
			}
		}
	}
	return msg, nil
}

// StreamRequest says where a client's stream starts.
type StreamRequest struct {
	// Cursor is a token from an earlier message or page; "" starts where the
	// endpoint's autoOffsetReset says.
	Cursor string
	// Group joins a consumer group instead of reading from the client's own
	// position (webhook subscriptions, competing consumers).
	Group string
	// CursorOnDemand leaves Message.Cursor empty: the entrypoint writes each
	// message's cursor with Stream.AppendCursor right after taking it, with
	// no string allocated per message (SSE does).
	CursorOnDemand bool
}

// Subscribe opens the client's stream. Clients that start live (no cursor,
// endpoint default latest, QoS none or auto, no group) share one broker
// subscription per API; all others read from their own position. A bad
// cursor returns an error wrapping ErrBadCursor.
func (x *Exchange) Subscribe(ctx context.Context, req StreamRequest) (*Stream, error) {
	a := x.api
	if a.endpoint == nil || !a.caps.Subscribe {
		return nil, fmt.Errorf("subscribe: %w", ErrUnsupported)
	}
	sreq := SubscribeRequest{Start: a.caps.DefaultStart, Group: req.Group, QoS: x.QoS}
	if req.Cursor != "" {
		if !a.caps.Replay {
			return nil, fmt.Errorf("%w: this API's endpoint cannot resume from a cursor", ErrBadCursor)
		}
		c, err := ParseCursor(req.Cursor)
		if err != nil {
			return nil, err
		}
		sreq.Start, sreq.Cursor = StartCursor, c
	}
	if sreq.Start == StartLatest && req.Group == "" && x.QoS.Shareable() {
		s, err := a.joinHub(ctx, x)
		if s != nil {
			s.onDemand = req.CursorOnDemand
		}
		return s, err
	}
	sub, err := a.endpoint.Subscribe(ctx, sreq)
	if err != nil {
		return nil, err
	}
	s := newOwnStream(x, sub)
	s.onDemand = req.CursorOnDemand
	return s, nil
}
