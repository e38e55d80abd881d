package nats

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/endpoints/conformance"
	"github.com/sluicegw/sluice/mediation"
)

// TestConformanceCore runs the connector conformance suite on core NATS
// subjects of the machine's server: no replay and no at-least-once, so the
// suite skips the cursor and group cases and accepts losses across a cut
// connection.
func TestConformanceCore(t *testing.T) {
	url := localNATS(t)
	conformance.Run(t, conformance.Harness{
		BrokerAddr: sharedServer,
		New: func(t testing.TB, brokerAddr, channel string) mediation.Endpoint {
			return newConformanceEndpoint(t, faultConfig(coreConfig("nats://"+brokerAddr, channel)))
		},
		Produce: func(t testing.TB, _, channel string, msgs ...*mediation.Message) {
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			for _, m := range msgs {
				if err := nc.PublishMsg(rawMsg(channel, m)); err != nil {
					t.Fatal(err)
				}
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		},
	},
		conformance.Skip(conformance.Keys, "NATS messages have no key"),
	)
}

// TestConformanceJetStream runs the suite on a JetStream stream per
// channel: replay, cursors and durable groups included.
func TestConformanceJetStream(t *testing.T) {
	url := localNATS(t)
	conformance.Run(t, conformance.Harness{
		BrokerAddr: sharedServer,
		New: func(t testing.TB, brokerAddr, channel string) mediation.Endpoint {
			newStreamOnce(t, url, channel)
			cfg := faultConfig(jsConfig("nats://"+brokerAddr, channel))
			cfg.Consumer.AckWait = Duration(2 * time.Second) // what was on the wire when a group closed comes back soon
			return newConformanceEndpoint(t, cfg)
		},
		Produce: func(t testing.TB, _, channel string, msgs ...*mediation.Message) {
			withJS(t, url, func(js jetstream.JetStream) {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				for _, m := range msgs {
					if _, err := js.PublishMsg(ctx, rawMsg(channel+".in", m)); err != nil {
						t.Fatal(err)
					}
				}
			})
		},
	},
		conformance.Skip(conformance.Keys, "NATS messages have no key"),
	)
}

// newStreamOnce creates the stream of a channel unless a previous New of
// the same test did.
func newStreamOnce(t testing.TB, url, name string) {
	t.Helper()
	exists := false
	withJS(t, url, func(js jetstream.JetStream) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_, err := js.Stream(ctx, name)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatal(err)
		}
		exists = err == nil
	})
	if !exists {
		newStream(t, url, name)
	}
}

func newConformanceEndpoint(t testing.TB, cfg *Config) mediation.Endpoint {
	t.Helper()
	e, err := New(cfg, quietLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// rawMsg is m as another NATS producer would send it.
func rawMsg(subject string, m *mediation.Message) *nats.Msg {
	out := &nats.Msg{Subject: subject, Data: m.Content}
	if len(m.Headers) > 0 {
		out.Header = nats.Header{}
		for k, vs := range m.Headers {
			out.Header[k] = append([]string(nil), vs...)
		}
	}
	return out
}
