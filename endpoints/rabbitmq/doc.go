// Package rabbitmq is the rabbitmq endpoint: it publishes messages to a
// RabbitMQ (AMQP 0-9-1) exchange and consumes queues bound to one, with
// github.com/rabbitmq/amqp091-go.
//
// # Connections
//
// An endpoint keeps one connection for publishing and one for consuming,
// each redialed with exponential back-off (reconnect.initialDelay doubling
// up to reconnect.maxDelay, with jitter) when it is lost or refused:
// amqp091-go does not reconnect by itself. Nothing fails because the broker
// is down when the gateway starts; publishes and new subscriptions fail with
// mediation.ErrUnavailable (HTTP 503) until it is back.
//
// # Publishing
//
// Publishing is possible when producer.exchange is set, or producer.routingKey
// alone: then messages go through the default exchange to the queue of that
// name. Every publish goes through one channel in confirm mode and returns
// once the broker acknowledged the message; a negative acknowledgement, a
// lost connection or no answer within publishTimeout fail it with
// mediation.ErrUnavailable, without ever waiting longer. With
// producer.mandatory, a message no queue received fails the publish too.
// Headers go in the AMQP headers table (multi-valued ones as arrays of
// strings), content-type and content-encoding in the properties of the same
// names, the message ID in message-id (generated when empty), and the
// timestamp; messages are persistent unless producer.persistent is false.
//
// # Subscribing
//
// Subscribing is possible when consumer.exchange or consumer.queue is set.
// Without consumer.queue, a subscription without a group consumes a queue of
// its own (server-named, exclusive, auto-delete) bound to consumer.exchange
// with consumer.routingKey, and one with a group consumes the durable queue
// "sluice.<group>", shared by every subscription of that group on every
// gateway: they compete for its messages. With consumer.queue, every
// subscription consumes that durable queue.
//
// Acknowledgements are manual: Message.Ack is basic.ack and Message.Nack
// returns the message to its queue (basic.nack with requeue), so an
// at-least-once entrypoint gets every message of a durable queue at least
// once. consumer.prefetch bounds the deliveries in flight per subscription.
//
// When the connection is lost, a subscription reconnects, declares its queue
// and binding again and resumes consuming; Next does not report the loss.
// Deliveries that were not acknowledged go back to their queue: a durable
// queue delivers them again (marked redelivered), but a subscription's own
// queue is deleted with its channel, so what it held and what was published
// while it was gone is lost. Use a group or consumer.queue where that
// matters.
//
// Each message carries the body as Content, headers decoded from the table
// (other AMQP types rendered as text) plus content-type and
// content-encoding, Metadata exchange, routingKey and redelivered, the AMQP
// timestamp (or the time of receipt), and as ID the AMQP message-id or,
// without one, its number in the subscription. RabbitMQ cannot replay:
// there are no cursors, and subscriptions start with what arrives after
// they opened (or what a durable queue holds).
package rabbitmq
