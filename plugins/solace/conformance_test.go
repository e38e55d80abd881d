package solace

import (
	"encoding/json"
	"slices"
	"testing"

	amqp "github.com/Azure/go-amqp"

	"github.com/sluicegw/sluice/endpoints/conformance"
	"github.com/sluicegw/sluice/mediation"
)

// TestConformanceQueue runs the connector conformance suite against the
// machine's RabbitMQ over AMQP 1.0: each test publishes to and consumes a
// durable queue of its own (/queue/<channel>), so that at-least-once and
// reconnection without loss are checked.
func TestConformanceQueue(t *testing.T) {
	requireBroker(t)
	conformance.Run(t, conformance.Harness{
		BrokerAddr: sharedBroker,
		New: func(t testing.TB, brokerAddr, channel string) mediation.Endpoint {
			deleteQueueAtEnd(t, channel)
			cfg := rabbitConfig(brokerAddr)
			cfg.Consumer.Queue = channel
			cfg.Producer.Address = "/queue/" + channel
			return newConformanceEndpoint(t, cfg)
		},
		Produce: func(t testing.TB, _, channel string, msgs ...*mediation.Message) {
			produceRaw(t, "/queue/"+channel, msgs...)
		},
	})
}

// TestConformanceTopics runs the suite with Solace topics mapped to
// RabbitMQ's amq.topic: topic subscriptions are at most once, so the suite
// skips the group case and accepts losses across a cut connection.
func TestConformanceTopics(t *testing.T) {
	requireBroker(t)
	conformance.Run(t, conformance.Harness{
		BrokerAddr: sharedBroker,
		New: func(t testing.TB, brokerAddr, channel string) mediation.Endpoint {
			cfg := rabbitConfig(brokerAddr)
			cfg.Consumer.Topics = []string{"sluice/" + channel + "/>"}
			cfg.Producer.Topic = "sluice/" + channel + "/events"
			return newConformanceEndpoint(t, cfg)
		},
		Produce: func(t testing.TB, _, channel string, msgs ...*mediation.Message) {
			produceRaw(t, "/topic/sluice."+channel+".raw", msgs...)
		},
	})
}

func newConformanceEndpoint(t testing.TB, cfg *Config) mediation.Endpoint {
	t.Helper()
	e, err := New(cfg, Options{Logger: quietLogger(), Name: "sluice-conformance"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// produceRaw sends msgs with a plain AMQP 1.0 client: header names exactly
// as given, as application properties (multi-valued ones after the
// gateway's convention), the key as group-id.
func produceRaw(t testing.TB, address string, msgs ...*mediation.Message) {
	t.Helper()
	r := newRaw(t)
	defer r.conn.Close()
	out := make([]*amqp.Message, 0, len(msgs))
	for _, m := range msgs {
		am := amqp.NewMessage(m.Content)
		am.Header = &amqp.MessageHeader{Durable: true}
		if m.Key != nil {
			k := string(m.Key)
			am.Properties = &amqp.MessageProperties{GroupID: &k}
		}
		var multi []string
		for name, values := range m.Headers {
			if am.ApplicationProperties == nil {
				am.ApplicationProperties = map[string]any{}
			}
			if len(values) == 1 {
				am.ApplicationProperties[name] = values[0]
				continue
			}
			b, _ := json.Marshal(values)
			am.ApplicationProperties[name] = string(b)
			multi = append(multi, name)
		}
		if len(multi) > 0 {
			slices.Sort(multi)
			b, _ := json.Marshal(multi)
			am.ApplicationProperties[multiValuedProperty] = string(b)
		}
		out = append(out, am)
	}
	r.send(address, out...)
}
