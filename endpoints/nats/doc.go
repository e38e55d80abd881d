// Package nats is the nats endpoint: it publishes messages to a NATS subject
// and subscribes to core NATS subjects or JetStream streams, with nats.go.
//
// One connection per endpoint serves every publish and subscription. It
// reconnects forever (every reconnectWait) and buffers nothing while
// disconnected, so a publish then fails at once with an error wrapping
// mediation.ErrUnavailable (HTTP 503) instead of being sent later.
//
// A publish goes to producer.subject. With core NATS it returns after a
// round trip to the server (PING/PONG), so that the server has processed
// it; with JetStream (producer.stream or consumer.stream set) it returns
// once the stream stored it (the PubAck), and Metadata gets the stream and
// the sequence ("offset"). Headers travel as NATS headers, multi-valued,
// with the gateway's lower-case names, so that the server acts on none of
// them but nats-msg-id, sent as Nats-Msg-Id: JetStream then drops a retried
// publish it already stored.
//
// Core NATS subscriptions (no consumer.stream) read consumer.subject from
// the moment they open; core NATS keeps nothing, so they cannot resume
// from a cursor nor redeliver, and the endpoint offers QoS none, auto and
// at-most-once only. A slow subscription loses what exceeds its buffer
// (consumer.bufferMessages, consumer.bufferBytes), as core NATS does. With
// a group, or consumer.queueGroup, they join a queue group.
//
// JetStream subscriptions read consumer.stream (filtered by
// consumer.subject when set). A client's own reads resolve an exact start
// sequence (earliest: the first message; latest: one past the last; a
// cursor: its next sequence) reported by Start, then read through an
// ephemeral consumer that the reader recreates where it left off whenever
// the server restarts or the connection drops: nothing lost, nothing
// repeated. Group subscriptions (webhooks, competing consumers) read the
// durable consumer "<consumer.durable>_<group>" (or "<group>") with
// explicit acks: Message.Ack acks, Message.Nack asks for redelivery at
// once, and Close gives back what the subscription held unsettled; what was
// on the wire when it closed is redelivered after consumer.ackWait.
//
// Each message carries the data as Content, lower-cased headers, Metadata
// subject (and stream), and, from JetStream, the stored timestamp and its
// Position (stream, partition 0, sequence); its ID is the stream sequence,
// or a per-subscription counter for core NATS.
package nats
