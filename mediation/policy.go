package mediation

import (
	"context"
	"net/http"
)

// Phase names when a policy step runs.
type Phase string

const (
	PhaseRequest   Phase = "request"   // an HTTP request, before the entrypoint sees it
	PhaseResponse  Phase = "response"  // the HTTP response headers, before they are written
	PhasePublish   Phase = "publish"   // each client→broker message
	PhaseSubscribe Phase = "subscribe" // each broker→client message, per client
)

// Policy is one configured step. A policy implements one or more of
// RequestPolicy, ResponsePolicy and MessagePolicy; the engine calls the one
// that fits the phase the step is configured in.
type Policy interface{}

// RequestPolicy acts on an incoming HTTP request. Returning a *Rejection
// answers the client with its status; other errors answer 500.
type RequestPolicy interface {
	OnRequest(ctx context.Context, x *Exchange, r *http.Request) error
}

// ResponsePolicy acts on the response headers of an HTTP exchange.
type ResponsePolicy interface {
	OnResponse(ctx context.Context, x *Exchange, h http.Header) error
}

// MessagePolicy acts on a message in the publish or subscribe phase. It
// returns the message to pass on (the same one, or a changed Clone), or nil to
// drop it: a dropped message is acknowledged, since dropping it was the
// policy's decision. An error fails the message (publish: the request fails;
// subscribe: the message is nacked and the stream ends).
type MessagePolicy interface {
	OnMessage(ctx context.Context, x *Exchange, msg *Message) (*Message, error)
}

// Rejection is an error a policy returns to answer the client itself.
type Rejection struct {
	Status int
	Title  string
	Detail string
	Header http.Header // extra response headers (Retry-After, WWW-Authenticate, ...)
}

func (r *Rejection) Error() string {
	if r.Detail != "" {
		return r.Title + ": " + r.Detail
	}
	return r.Title
}

// NonBlocking is implemented by security checks and request policies that
// never wait on I/O (a lookup in memory, a header rewrite), so that an
// event loop may run them inline; see API.NonBlocking.
type NonBlocking interface{ NonBlocking() bool }

// NonBlockingEntrypoint is implemented by entrypoints that can serve a
// request from an event loop without blocking, given the API's first
// endpoint group.
type NonBlockingEntrypoint interface {
	NonBlockingFor(group []Endpoint) bool
}

func nonBlocking(v any) bool {
	nb, ok := v.(NonBlocking)
	return ok && nb.NonBlocking()
}

// NonBlocking reports whether the API's whole request phase may run on an
// event loop: every plan's check and every request policy says it never
// blocks, no flow has response or message policies, and every entrypoint
// serves without blocking.
func (a *API) NonBlocking() bool {
	for _, p := range a.plans {
		if !nonBlocking(p.Security) {
			return false
		}
	}
	for i := range a.flows {
		f := &a.flows[i]
		if len(f.Response) > 0 || len(f.Publish) > 0 || len(f.Subscribe) > 0 {
			return false
		}
		for _, p := range f.Request {
			if !nonBlocking(p) {
				return false
			}
		}
	}
	for _, b := range a.entrypoints {
		e, ok := b.Entrypoint.(NonBlockingEntrypoint)
		if !ok || !e.NonBlockingFor(a.group) {
			return false
		}
	}
	return len(a.entrypoints) > 0
}
