// Package solace is the solace endpoint, a plugin: it publishes to and
// consumes from Solace PubSub+ over AMQP 1.0, the open protocol Solace
// brokers speak natively, with github.com/Azure/go-amqp (Solace's own Go
// API needs a native library). Importing the package registers endpoint
// type "solace"; plugins/standard does.
//
// # Connections
//
// An endpoint keeps one connection for publishing and one for consuming,
// each redialed with exponential back-off (reconnect.initialDelay doubling
// up to reconnect.maxDelay, with jitter) when it is lost, refused, or silent
// past idleTimeout. The Message VPN (vpn) is sent as the hostname of the
// AMQP open frame; credentials go with SASL PLAIN (ANONYMOUS without a
// username); amqps:// URLs use TLS, verifying the broker against the URL's
// host (tls.serverName), never the VPN. Nothing fails because the broker is
// down when the gateway starts; publishes and new subscriptions fail with
// mediation.ErrUnavailable (HTTP 503) until it is back.
//
// # Addresses
//
// consumer.topics are Solace topic subscriptions ('*' one level or a
// prefix, '>' one or more trailing levels), consumer.queue a durable
// queue, producer.topic a topic without wildcards. With addressing: solace
// (default) they become topic://<topic> and queue://<name>; with addressing:
// rabbitmq they become the addresses of RabbitMQ 3.x's AMQP 1.0 plugin,
// /topic/<routing key> on amq.topic (levels joined with '.', '>' written
// "*.#") and /queue/<name>. consumer.address and producer.address are passed
// as they are. See TopicAddress and QueueAddress.
//
// # Publishing
//
// Every publish goes through one sender link. With producer.deliveryMode
// persistent (default) the message is durable and sent unsettled, and
// Publish returns once the broker accepted it; a rejection is an error, a
// release, a lost connection or no outcome within publishTimeout fail it
// with mediation.ErrUnavailable. With direct, messages are not durable and
// sent pre-settled: Publish returns once the message is written. Headers
// travel as application properties (a multi-valued header as a JSON array
// of strings, its name listed in the sluice-multi-valued property),
// content-type and content-encoding as the properties of those names, the
// message ID as message-id (generated when empty), the key as group-id, the
// timestamp as creation-time.
//
// # Subscribing
//
// A subscription is a session with a receiver link per source, each granted
// consumer.credit messages of link credit, topped up as messages are
// settled: that is the flow control, and it bounds what a subscription
// holds. Message.Ack accepts a message; Nack releases it for redelivery,
// or rejects it when the reason is a *mediation.Rejection (poison: a policy
// refused the message itself). Ending the session (Close, a lost
// connection) returns what was not settled to the broker. When the
// connection is lost, a subscription attaches its links again on the new
// one; Next does not report the loss. Topic subscriptions keep nothing while
// they are away, so they offer at most once and refuse a consumer group;
// queue subscriptions compete for the queue's messages and get every one at
// least once.
//
// Each message carries the data sections as Content (other bodies rendered
// as text), headers from the application properties (names lower-cased,
// other types rendered as text) plus content-type and content-encoding,
// Metadata address, redelivered and subject, the creation-time (or the time
// of receipt), the group-id as Key, and as ID the message-id or, without
// one, its number in the subscription. AMQP cannot replay: there are no
// cursors.
package solace
