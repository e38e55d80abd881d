// Package kafka is the kafka endpoint: it publishes messages to a Kafka topic
// and subscribes to topics, with franz-go.
//
// A publish is one idempotent record to producer.topic, confirmed by every
// in-sync replica, or an error wrapping mediation.ErrUnavailable within
// producer.deliveryTimeout.
//
// A subscription without a group reads from its own position: it resolves,
// when it opens, the exact next offset of every partition of the consumed
// topics (from a cursor, earliest, latest or a time) and reports it as
// Start, then fetches those partitions directly. Nothing is committed; a
// client resumes with the cursor of the last message it got. Partitions and
// pattern-matching topics created after it opened are not read by it.
//
// A subscription with a group joins the Kafka consumer group
// "<consumer.groupId>.<group>" and commits, per partition, the position
// below which every message it yielded was acknowledged.
//
// Each message carries the record value as Content, the key as Key and
// Metadata["key"], headers (lower-cased names), Metadata topic, partition and
// offset, the record timestamp, its Position, and the ID
// "topic/partition/offset".
package kafka
