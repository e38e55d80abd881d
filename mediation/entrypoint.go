package mediation

import "net/http"

// Entrypoint is a client-facing protocol adapter (sse, http-get, http-post,
// websocket, ...). One value serves every request the API routes to it.
type Entrypoint interface {
	// Accepts reports whether the request is for this entrypoint: the wire
	// contract's selection (Upgrade: websocket → websocket, GET with Accept:
	// text/event-stream → sse, ...). The API asks its entrypoints in order
	// of their Rank and serves the first that accepts.
	Accepts(r *http.Request) bool

	// Serve handles one exchange after the request phase ran. It turns the
	// request into x.Publish calls or an x.Subscribe stream, acks each
	// message once it counts as delivered on its protocol, and returns when
	// the exchange is over. When x.Draining() closes it ends the exchange
	// cleanly (SSE goaway, WebSocket 1001) and returns.
	Serve(w http.ResponseWriter, r *http.Request, x *Exchange)
}

// Ranked orders entrypoints for selection; lower ranks are asked first. An
// entrypoint without it ranks after the built-ins.
type Ranked interface{ Rank() int }

// Ranks of the built-in entrypoints, in the order of the wire contract.
const (
	RankWebSocket = 10
	RankSSE       = 20
	RankHTTPGet   = 30
	RankHTTPPost  = 40
	RankDefault   = 100
)

// Operation is what an exchange does with the broker.
type Operation uint8

const (
	OpPublish   Operation = 1 << iota // client → broker
	OpSubscribe                       // broker → client
)

// Operator is implemented by entrypoints to tell the engine and the
// configuration which operations they perform, so that an http-post
// entrypoint on a subscribe-only endpoint is refused at load time.
type Operator interface{ Operations() Operation }
