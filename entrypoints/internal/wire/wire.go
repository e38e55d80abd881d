// Package wire holds what the HTTP message entrypoints (sse, http-get,
// http-post, websocket) share: how mediation errors become problem+json
// answers, where a client's cursor comes from, and Accept negotiation.
package wire

import (
	"context"
	"errors"
	"net/http"

	"github.com/sluicegw/sluice/mediation"
)

// RetryAfter is the Retry-After value, in seconds, sent with a 503 when the
// broker is unavailable: long enough for a reconnect, short enough for a
// person waiting.
const RetryAfter = "5"

// WriteError answers err, returned by Exchange.Subscribe, Exchange.Publish or
// Stream.Next, as an application/problem+json response. op says what failed
// ("subscribe" or "publish") for the titles. It writes nothing when the
// client is gone (context.Canceled): nobody would read it.
func WriteError(w http.ResponseWriter, op string, err error) {
	status, title, header := Classify(op, err)
	if status == 0 {
		return
	}
	mediation.WriteProblem(w, status, title, err.Error(), header)
}

// Classify maps err to the HTTP status, problem title and extra headers of
// the answer; status 0 means the client went away and there is nothing to
// answer.
func Classify(op string, err error) (status int, title string, header http.Header) {
	var rej *mediation.Rejection
	switch {
	case errors.As(err, &rej):
		if rej.Status < 100 || rej.Status > 599 { // a policy bug must not panic net/http
			return http.StatusInternalServerError, rej.Title, rej.Header
		}
		return rej.Status, rej.Title, rej.Header
	case errors.Is(err, mediation.ErrBadCursor):
		return http.StatusBadRequest,
			"Invalid cursor: resume with an SSE id or a nextCursor this API returned, or omit it to start afresh", nil
	case errors.Is(err, mediation.ErrUnavailable):
		return http.StatusServiceUnavailable, "Broker unavailable, retry later",
			http.Header{"Retry-After": {RetryAfter}}
	case errors.Is(err, mediation.ErrDraining), errors.Is(err, mediation.ErrClosed):
		return http.StatusServiceUnavailable, "Gateway shutting down, retry on another instance",
			http.Header{"Retry-After": {"1"}}
	case errors.Is(err, mediation.ErrUnsupported):
		return http.StatusNotImplemented, "This API cannot " + op + ": its endpoint does not support it", nil
	case errors.Is(err, mediation.ErrSlowConsumer):
		return http.StatusServiceUnavailable, "Client too slow, reconnect with your last cursor",
			http.Header{"Retry-After": {"1"}}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "Broker did not answer in time, retry later", nil
	case errors.Is(err, context.Canceled):
		return 0, "", nil
	default:
		return http.StatusBadGateway, "Broker failed to " + op + ", retry later", nil
	}
}

// QueryCursor returns the ?cursor= parameter of r, "" when absent.
func QueryCursor(r *http.Request) string { return r.URL.Query().Get("cursor") }

// IsWebSocketUpgrade reports whether r asks for a WebSocket (Upgrade:
// websocket, matched case-insensitively as a token).
func IsWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Upgrade", "websocket")
}
