package mediation

import (
	"context"
	"time"
)

// Endpoint is a broker-facing connector (kafka, mqtt5, mock, ...). One value
// serves every client of an API; its methods are safe for concurrent use.
type Endpoint interface {
	// Publish sends msg and returns once the broker confirmed it at the
	// endpoint's configured guarantee, or ctx ended. A broker that cannot be
	// reached yields an error wrapping ErrUnavailable, never a hang past ctx.
	Publish(ctx context.Context, msg *Message) error

	// Subscribe opens a subscription that yields messages from the requested
	// start until it is closed. It returns ErrBadCursor for a cursor that
	// does not fit the endpoint and ErrUnsupported for what the broker cannot
	// do.
	Subscribe(ctx context.Context, req SubscribeRequest) (Subscription, error)

	// Capabilities is what the endpoint can do; it does not change.
	Capabilities() Capabilities

	// Close releases connections. Open subscriptions must be closed first.
	Close(ctx context.Context) error
}

// GroupDeleter is implemented by endpoints whose group subscriptions keep
// state on the broker — a Kafka consumer group, a durable RabbitMQ queue, a
// JetStream durable consumer — so that a consumer gone for good (a deleted
// webhook subscription) leaves nothing behind to fill up. DeleteGroup must
// be called after the group's subscriptions on this gateway were closed;
// deleting a group that does not exist is not an error.
type GroupDeleter interface {
	DeleteGroup(ctx context.Context, group string) error
}

// Capabilities let the engine and the configuration check that an
// entrypoint/endpoint pair can honour what it is asked.
type Capabilities struct {
	Publish   bool
	Subscribe bool
	// Replay means the broker can start from a cursor, earliest or a time.
	Replay bool
	// QoS lists the subscribe-side levels the endpoint honours.
	QoS []QoS
	// QoSNote says why a level is missing and what to configure instead,
	// for the error a configuration asking for it gets.
	QoSNote string
	// DefaultStart is where a client without a cursor starts (the
	// configured autoOffsetReset for replaying brokers, else StartLatest).
	DefaultStart StartKind
}

// Supports reports whether q is among c.QoS.
func (c Capabilities) Supports(q QoS) bool {
	for _, s := range c.QoS {
		if s == q {
			return true
		}
	}
	return false
}

// StartKind says where a subscription begins.
type StartKind uint8

const (
	StartLatest   StartKind = iota // only messages that arrive after subscribing
	StartEarliest                  // the oldest retained message
	StartCursor                    // right after the positions of a cursor
	StartTime                      // the first message at or after a timestamp
)

// SubscribeRequest asks an endpoint for a subscription.
type SubscribeRequest struct {
	Start  StartKind
	Cursor Cursor    // when Start == StartCursor
	Time   time.Time // when Start == StartTime
	// Group, when set, joins a consumer group (Kafka group, JetStream durable,
	// ...) so that several gateways split the work and acknowledged
	// positions are committed to the broker under that name.
	Group string
	QoS   QoS
}

// Subscription yields messages in source order per partition.
//
// Next blocks until a message is available, ctx ends (returning ctx.Err()), or
// the subscription fails or is closed (returning that error; ErrClosed after
// Close). A connector reconnects by itself where it can and returns an error
// only when the subscription cannot continue.
//
// Every message yielded carries an ack handle (Message.SetAck). With a Group,
// positions are committed when every earlier message of the partition was
// acked; Close commits what was acked and releases the rest.
type Subscription interface {
	// Start is the resolved starting cursor: for every partition the next
	// offset the subscription reads. Empty for brokers that cannot replay.
	Start() Cursor
	Next(ctx context.Context) (*Message, error)
	Close() error
}
