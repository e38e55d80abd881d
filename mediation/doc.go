// Package mediation is the protocol-neutral core of Sluice: the Message that
// flows between clients and brokers, the Cursor that lets a client resume, the
// QoS levels, the contracts that entrypoints, endpoints and policies implement,
// and the engine that wires them together for one API (flows, fan-out,
// acknowledgements and backpressure).
//
// The message path, client side first:
//
//	entrypoint ──Exchange.Publish──▶ publish policies ──▶ Endpoint.Publish (returns once the broker confirmed)
//	entrypoint ◀──Stream.Next────── subscribe policies ◀── window ◀── Subscription (own) or Hub (shared, fan-out)
//
// Acknowledgement follows the Benthos/Redpanda Connect model: every message
// read from a Subscription carries an ack handle, and a source position is
// committed only when the message was delivered (Message.Ack) or deliberately
// dropped by a policy. A Stream holds at most its window of unacknowledged
// messages, so a slow client stops the reads instead of growing a queue.
//
// mediation imports no entrypoint, endpoint, policy or plugin package; they
// import it.
package mediation
