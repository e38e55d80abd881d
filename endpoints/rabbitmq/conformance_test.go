package rabbitmq

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/endpoints/conformance"
	"github.com/sluicegw/sluice/mediation"
)

// TestConformance runs the connector conformance suite against the
// machine's RabbitMQ: each test on an exchange of its own (the suite's
// channel), which subscriptions bind their queues to and publishes go to.
func TestConformance(t *testing.T) {
	requireBroker(t)
	conformance.Run(t, conformance.Harness{
		BrokerAddr: sharedBroker,
		New:        newConformanceEndpoint,
		Produce:    produceRaw,
	},
		conformance.Skip(conformance.Keys, "AMQP messages have no key: the routing key is fixed by producer.routingKey"),
	)
}

// newConformanceEndpoint declares channel as a topic exchange, deleted at
// the end of the test with the queue of the suite's group, and returns an
// endpoint that publishes to it and consumes from it.
func newConformanceEndpoint(t testing.TB, brokerAddr, channel string) mediation.Endpoint {
	t.Helper()
	r := newRaw(t)
	r.exchange(channel, ExchangeTopic)
	_ = r.conn.Close() // now: the suite checks that no goroutine outlives the endpoint
	deleteAtEnd(t, "", groupQueuePrefix+channel+"-group")
	cfg := testConfig("amqp://guest:guest@"+brokerAddr+"/", channel)
	cfg.PublishTimeout = Duration(5 * time.Second)
	cfg.ConnectTimeout = Duration(5 * time.Second)
	e, err := New(cfg, Options{Logger: quietLogger(), Name: "sluice conformance"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// produceRaw publishes msgs to channel with a plain client, header names
// exactly as given, multi-valued headers as arrays.
func produceRaw(t testing.TB, _ string, channel string, msgs ...*mediation.Message) {
	t.Helper()
	r := newRaw(t)
	defer r.conn.Close()
	for _, m := range msgs {
		p := amqp.Publishing{Body: m.Content}
		for name, values := range m.Headers {
			if p.Headers == nil {
				p.Headers = amqp.Table{}
			}
			arr := make([]any, len(values))
			for i, v := range values {
				arr[i] = v
			}
			p.Headers[name] = arr
		}
		r.publish(channel, "raw", p)
	}
}
