// Package devbrokers runs the message brokers that `sluice dev` needs inside
// the gateway process: a Kafka-protocol cluster (franz-go's kfake), an MQTT 5
// broker (mochi-mqtt) and a NATS server with JetStream (nats-server).
//
// Every broker listens on a free loopback port chosen by the kernel, so
// `sluice dev` and tests never collide with brokers already running on the
// machine. Nothing is persisted beyond the process: Kafka and MQTT keep their
// data in memory and JetStream's store lives in a temporary directory that
// Close removes.
//
// The brokers are a development convenience, not production brokers: they
// accept any client without authentication and their own logs are demoted to
// debug level so that they do not drown the gateway's.
package devbrokers
