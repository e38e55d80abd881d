package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicegw/sluice/endpoints/conformance"
	"github.com/sluicegw/sluice/endpoints/kafka"
	"github.com/sluicegw/sluice/mediation"
)

// The fault cases need a broker on the network: the kafka endpoint over
// kfake, broken on purpose here in ways the fault cases must catch, or
// disguised as a lossy broker. (endpoints/kafka/conformance_test.go is the
// kafka harness itself.)

// kafkaBug breaks a kafka harness.
type kafkaBug int

const (
	// healthy is the harness done right.
	healthy kafkaBug = iota
	// unwrapUnavailable hides ErrUnavailable in publish errors.
	unwrapUnavailable
	// aroundTheProxy puts a plain proxy in front of a broker that
	// advertises its own address, so that faults miss the client.
	aroundTheProxy
)

func kafkaHarness(bug kafkaBug) func(t *testing.T) conformance.Harness {
	return func(t *testing.T) conformance.Harness {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		h := conformance.Harness{
			BrokerAddr: c.ListenAddrs()[0],
			New: func(t testing.TB, addr, channel string) mediation.Endpoint {
				e := newKafka(t, addr, channel)
				if bug == unwrapUnavailable {
					return plainErrors{e}
				}
				return e
			},
		}
		if bug != aroundTheProxy {
			h.FaultyBroker = func(t testing.TB) (string, *conformance.Proxy) {
				var p *conformance.Proxy
				var real string
				c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, addr string) (net.Listener, error) {
					ln, err := net.Listen(network, addr)
					if err != nil {
						return nil, err
					}
					real = ln.Addr().String()
					p = conformance.NewProxy(t, real)
					return proxied{ln, p}, nil
				}))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				return real, p
			}
		}
		return h
	}
}

// proxied advertises the proxy's address instead of the listener's.
type proxied struct {
	net.Listener
	p *conformance.Proxy
}

func (l proxied) Addr() net.Addr {
	a, _ := net.ResolveTCPAddr("tcp", l.p.Addr())
	return a
}

func newKafka(t testing.TB, addr, topic string) *kafka.Endpoint {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	cfg := kafka.DefaultConfig()
	cfg.BootstrapServers = []string{addr}
	cfg.Consumer.Topics = []string{topic}
	cfg.Producer.Topic = topic
	cfg.Producer.DeliveryTimeout = kafka.Duration(2 * time.Second)
	e, err := kafka.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// plainErrors is an endpoint whose publish errors lose their kind.
type plainErrors struct{ *kafka.Endpoint }

func (p plainErrors) Publish(ctx context.Context, m *mediation.Message) error {
	if err := p.Endpoint.Publish(ctx, m); err != nil {
		if errors.Is(err, mediation.ErrUnavailable) {
			return fmt.Errorf("publish failed: %v", err)
		}
		return err
	}
	return nil
}

// lossy hides what lets the kafka endpoint lose nothing, so that the suite
// takes the path of brokers that can neither replay nor join a group (MQTT
// without a session, NATS core).
type lossy struct{ *kafka.Endpoint }

func (l lossy) Capabilities() mediation.Capabilities {
	c := l.Endpoint.Capabilities()
	c.Replay, c.QoS, c.DefaultStart = false, []mediation.QoS{mediation.QoSNone, mediation.QoSAuto}, mediation.StartLatest
	return c
}

// The path for lossy brokers works: a subscription that recovers from a cut
// passes.
func TestLossyConnectorConforms(t *testing.T) {
	h := kafkaHarness(healthy)(t)
	newEndpoint := h.New
	h.New = func(t testing.TB, addr, channel string) mediation.Endpoint {
		return lossy{newEndpoint(t, addr, channel).(*kafka.Endpoint)}
	}
	conformance.Run(t, h,
		conformance.Skip(conformance.RoundTrip, "covered by endpoints/kafka"),
		conformance.Skip(conformance.Ordering, "covered by endpoints/kafka"),
		conformance.Skip(conformance.PublishUnavailable, "covered by endpoints/kafka"),
	)
}
