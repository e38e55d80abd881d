package kafka_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicegw/sluice/endpoints/conformance"
	"github.com/sluicegw/sluice/endpoints/kafka"
	"github.com/sluicegw/sluice/mediation"
)

// TestConformance runs the connector conformance suite against kfake: one
// cluster shared by the tests that need no fault (each on a topic of its
// own), and a cluster per fault test that advertises a proxy.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		BrokerAddr:   newKfake(t, nil).ListenAddrs()[0],
		New:          newConformanceEndpoint,
		Produce:      produceRaw,
		FaultyBroker: faultyKfake,
	})
}

// newKfake starts a one-broker cluster, listening with listen when it is
// not nil.
func newKfake(t testing.TB, listen func(network, address string) (net.Listener, error)) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if listen != nil {
		opts = append(opts, kfake.ListenFn(listen))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// faultyKfake starts a cluster that clients reach only through a proxy: the
// broker advertises the proxy's address in its metadata, so that a client
// bootstrapped at the proxy does not go around it.
func faultyKfake(t testing.TB) (string, *conformance.Proxy) {
	var p *conformance.Proxy
	var real string
	newKfake(t, func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		real = ln.Addr().String()
		p = conformance.NewProxy(t, real)
		return advertised{ln, p}, nil
	})
	return real, p
}

// advertised is a listener whose Addr, which kfake advertises, is the
// proxy's.
type advertised struct {
	net.Listener
	p *conformance.Proxy
}

func (a advertised) Addr() net.Addr {
	addr, err := net.ResolveTCPAddr("tcp", a.p.Addr())
	if err != nil {
		return a.Listener.Addr()
	}
	return addr
}

// newConformanceEndpoint creates channel as a one-partition topic (so that
// ordering is total) and returns an endpoint that produces to it and
// consumes it.
func newConformanceEndpoint(t testing.TB, brokerAddr, channel string) mediation.Endpoint {
	t.Helper()
	createTopic(t, brokerAddr, channel)
	cfg := kafka.DefaultConfig()
	cfg.BootstrapServers = []string{brokerAddr}
	cfg.Consumer.Topics = []string{channel}
	cfg.Producer.Topic = channel
	cfg.Consumer.CommitInterval = kafka.Duration(100 * time.Millisecond)
	e, err := kafka.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	return e
}

func createTopic(t testing.TB, brokerAddr, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// produceRaw writes msgs to partition 0 of channel with a plain client,
// header names exactly as given.
func produceRaw(t testing.TB, brokerAddr, channel string, msgs ...*mediation.Message) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, len(msgs))
	for _, m := range msgs {
		r := &kgo.Record{Topic: channel, Partition: 0, Key: m.Key, Value: m.Content}
		for name, values := range m.Headers {
			for _, v := range values {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: name, Value: []byte(v)})
			}
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", channel, err)
	}
}
