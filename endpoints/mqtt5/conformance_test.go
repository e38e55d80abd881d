package mqtt5

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sluicegw/sluice/endpoints/conformance"
	"github.com/sluicegw/sluice/mediation"
)

// TestConformance runs the connector conformance suite against the
// machine's Mosquitto. The endpoint has a persistent session and a stable
// client id per channel, so it offers at-least-once and the group and
// dropped-connection cases check that nothing is lost.
func TestConformance(t *testing.T) {
	addr := needBroker(t)
	run := randomHex() // channels repeat across runs; client ids must not
	conformance.Run(t, conformance.Harness{
		BrokerAddr: addr,
		New: func(t testing.TB, brokerAddr, channel string) mediation.Endpoint {
			cfg := DefaultConfig()
			cfg.ServerURL = "mqtt://" + brokerAddr
			cfg.ClientID = "sluice-conformance-" + run + "-" + channel
			cfg.SessionExpiry = Duration(time.Minute)
			cfg.MaxReconnectDelay = Duration(time.Second)
			cfg.Consumer.Topic = conformanceTopic(run, channel)
			cfg.Producer.Topic = cfg.Consumer.Topic
			e, err := New(cfg, quietLogger())
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return e
		},
		Produce: func(t testing.TB, brokerAddr, channel string, msgs ...*mediation.Message) {
			raw := dialRaw(t, brokerAddr)
			for _, m := range msgs {
				props := &paho.PublishProperties{}
				for name, values := range m.Headers {
					for _, v := range values {
						props.User = append(props.User, paho.UserProperty{Key: name, Value: v})
					}
				}
				raw.publish(t, &paho.Publish{Topic: conformanceTopic(run, channel), QoS: 1, Payload: m.Content, Properties: props})
			}
		},
	},
		conformance.Skip(conformance.Keys, "MQTT messages have no key"),
	)
}

func conformanceTopic(run, channel string) string { return "sluice-conformance/" + run + "/" + channel }
