package mediation

import "errors"

// Errors that cross the mediation boundary. Entrypoints map them to wire
// responses (for HTTP: 503, 400, 413, ...); connectors wrap them with %w so
// that errors.Is finds them.
var (
	// ErrUnavailable means the broker or backend cannot be reached now; the
	// client may retry later (HTTP 503 with Retry-After).
	ErrUnavailable = errors.New("broker unavailable")
	// ErrBadCursor means a cursor could not be decoded or does not belong to
	// this API (HTTP 400). The gateway never silently restarts from zero.
	ErrBadCursor = errors.New("malformed cursor")
	// ErrNotDelivered is the default reason of a Nack.
	ErrNotDelivered = errors.New("message not delivered")
	// ErrSlowConsumer ends a stream whose client could not keep up under the
	// disconnect slow-consumer policy.
	ErrSlowConsumer = errors.New("client too slow: disconnected by the slow-consumer policy")
	// ErrClosed is returned by a Stream or Subscription after Close, and when
	// the gateway is shutting down.
	ErrClosed = errors.New("stream closed")
	// ErrUnsupported means the endpoint cannot do what was asked (publish on a
	// subscribe-only endpoint, a cursor on a broker that cannot replay).
	ErrUnsupported = errors.New("not supported by this endpoint")
)
