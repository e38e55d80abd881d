package devbrokers

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestKafkaProduceConsume(t *testing.T) {
	t.Parallel()
	b := start(t, Options{Topics: map[string]int32{"orders": 1}})

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rec := &kgo.Record{Topic: "orders", Key: []byte("k1"), Value: []byte(`{"id":1}`)}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	got := consume(t, b.KafkaAddr(), "orders", 1)[0]
	if string(got.Key) != "k1" || string(got.Value) != `{"id":1}` || got.Offset != 0 {
		t.Fatalf("consumed key=%q value=%q offset=%d, want k1 {\"id\":1} 0", got.Key, got.Value, got.Offset)
	}
}

// topicMetadata asks the cluster about topic, allowing auto-creation as a
// producer would, and returns its partition count and error.
func topicMetadata(t *testing.T, addr, topic string) (int, error) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(resp.Topics) != 1 {
		t.Fatalf("metadata: %d topics, want 1", len(resp.Topics))
	}
	return len(resp.Topics[0].Partitions), kerr.ErrorForCode(resp.Topics[0].ErrorCode)
}

func TestKafkaTopics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		opts       Options
		topic      string
		partitions int
		err        error
	}{
		{desc: "seeded topic keeps its partition count", opts: Options{Topics: map[string]int32{"orders": 3}}, topic: "orders", partitions: 3},
		{desc: "seeded topic without a count gets the default", opts: Options{Topics: map[string]int32{"orders": 0}, DefaultPartitions: 2}, topic: "orders", partitions: 2},
		{desc: "unknown topic is refused without auto-creation", opts: Options{}, topic: "new", err: kerr.UnknownTopicOrPartition},
		{desc: "unknown topic is created with auto-creation", opts: Options{AllowAutoTopicCreation: true}, topic: "new", partitions: 1},
		{desc: "auto-created topic gets the default count", opts: Options{AllowAutoTopicCreation: true, DefaultPartitions: 4}, topic: "new", partitions: 4},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := start(t, tc.opts)
			n, err := topicMetadata(t, b.KafkaAddr(), tc.topic)
			if !errors.Is(err, tc.err) {
				t.Fatalf("metadata error %v, want %v", err, tc.err)
			}
			if tc.err == nil && n != tc.partitions {
				t.Fatalf("%d partitions, want %d", n, tc.partitions)
			}
		})
	}
}

func TestStartRejectsEmptyTopicName(t *testing.T) {
	t.Parallel()
	b, err := Start(context.Background(), Options{Topics: map[string]int32{"": 1}})
	if err == nil {
		b.Close()
		t.Fatal("Start accepted an empty topic name")
	}
}

func TestStartWithDoneContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b, err := Start(ctx, Options{})
	if !errors.Is(err, context.Canceled) {
		if b != nil {
			b.Close()
		}
		t.Fatalf("Start with a canceled context: %v, want context.Canceled", err)
	}
}

func TestMQTTPublishSubscribe(t *testing.T) {
	t.Parallel()
	b := start(t, Options{})
	u, err := url.Parse(b.MQTTURL())
	if err != nil || u.Scheme != "mqtt" {
		t.Fatalf("MQTTURL %q: scheme %q, err %v", b.MQTTURL(), u.Scheme, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	received := make(chan *paho.Publish, 1)
	sub := mqttConnect(ctx, t, u.Host, "sub", paho.ClientConfig{
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case received <- pr.Packet:
			default:
			}
			return true, nil
		}},
	})
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{
		Subscriptions: []paho.SubscribeOptions{{Topic: "devices/+/telemetry", QoS: 1}},
	}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	pub := mqttConnect(ctx, t, u.Host, "pub", paho.ClientConfig{})
	if _, err := pub.Publish(ctx, &paho.Publish{
		Topic:      "devices/d1/telemetry",
		QoS:        1,
		Payload:    []byte(`{"temp":21.5}`),
		Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "source", Value: "test"}}},
	}); err != nil {
		t.Fatalf("publish: %v", err)
	}

	select {
	case p := <-received:
		if p.Topic != "devices/d1/telemetry" || string(p.Payload) != `{"temp":21.5}` {
			t.Fatalf("received %q %q", p.Topic, p.Payload)
		}
		if got := p.Properties.User.Get("source"); got != "test" {
			t.Fatalf("MQTT 5 user property source=%q, want test", got)
		}
	case <-ctx.Done():
		t.Fatal("no message received")
	}
}

// mqttConnect opens an MQTT 5 session to addr and disconnects it at the
// test's end.
func mqttConnect(ctx context.Context, t *testing.T, addr, id string, cfg paho.ClientConfig) *paho.Client {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial mqtt: %v", err)
	}
	cfg.Conn, cfg.ClientID = conn, id
	c := paho.NewClient(cfg)
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30})
	if err != nil {
		conn.Close()
		t.Fatalf("connect mqtt: %v", err)
	}
	if ack.ReasonCode != 0 {
		t.Fatalf("connack reason %d", ack.ReasonCode)
	}
	t.Cleanup(func() {
		_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
		<-c.Done()
	})
	return c
}

func TestMQTTCloseDisconnectsClients(t *testing.T) {
	t.Parallel()
	b, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	addr := hostPort(t, b.MQTTURL())

	reasons := make(chan byte, 1)
	c := mqttConnect(ctx, t, addr, "connected", paho.ClientConfig{
		OnServerDisconnect: func(d *paho.Disconnect) { reasons <- d.ReasonCode },
		OnClientError:      func(error) {},
	})
	// A client that connected but never sent CONNECT must not hold up Close.
	raw, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Close hung with a client in its handshake")
	}

	select {
	case code := <-reasons:
		if code != 0x8B {
			t.Errorf("DISCONNECT reason 0x%X, want 0x8B (server shutting down)", code)
		}
	case <-ctx.Done():
		t.Error("connected client got no DISCONNECT")
	}
	<-c.Done()
	raw.SetReadDeadline(time.Now().Add(waitTimeout))
	if n, err := raw.Read(make([]byte, 1)); err == nil {
		t.Errorf("handshaking connection still open after Close (read %d bytes)", n)
	}
}

func TestNATSPublishSubscribe(t *testing.T) {
	t.Parallel()
	b := start(t, Options{})
	nc, err := nats.Connect(b.NATSURL(), nats.Timeout(waitTimeout))
	if err != nil {
		t.Fatalf("connect %s: %v", b.NATSURL(), err)
	}
	defer nc.Close()

	sub, err := nc.SubscribeSync("orders.created")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("orders.created", []byte("o-1")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(waitTimeout)
	if err != nil {
		t.Fatalf("core subscribe: %v", err)
	}
	if string(msg.Data) != "o-1" {
		t.Fatalf("core subscribe got %q, want o-1", msg.Data)
	}
}

func TestNATSJetStream(t *testing.T) {
	t.Parallel()
	b := start(t, Options{})
	nc, err := nats.Connect(b.NATSURL(), nats.Timeout(waitTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	for _, body := range []string{"a", "b"} {
		if _, err := js.Publish(ctx, "orders.new", []byte(body)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	// A consumer that starts after the publishes still reads them: the
	// stream stored them.
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(waitTimeout))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("stream replayed %q, want [a b]", got)
	}
}

func TestFreeLoopbackPorts(t *testing.T) {
	t.Parallel()
	// Two instances at once must not collide, and neither may take the
	// well-known ports that real brokers on the machine use.
	a, b := start(t, Options{}), start(t, Options{})
	seen := map[string]bool{}
	for _, br := range []*Brokers{a, b} {
		for _, addr := range []string{br.KafkaAddr(), hostPort(t, br.MQTTURL()), hostPort(t, br.NATSURL())} {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Fatalf("address %q: %v", addr, err)
			}
			if host != "127.0.0.1" {
				t.Errorf("address %q is not loopback", addr)
			}
			if port == "9092" || port == "1883" || port == "4222" {
				t.Errorf("address %q uses a well-known port", addr)
			}
			if seen[addr] {
				t.Errorf("address %q used twice", addr)
			}
			seen[addr] = true
		}
	}
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return u.Host
}

func TestCloseReleasesPortsAndStore(t *testing.T) {
	t.Parallel()
	b, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{b.KafkaAddr(), hostPort(t, b.MQTTURL()), hostPort(t, b.NATSURL())}
	for _, addr := range addrs {
		c, err := net.DialTimeout("tcp", addr, waitTimeout)
		if err != nil {
			t.Fatalf("before Close, dial %s: %v", addr, err)
		}
		c.Close()
	}
	dir := b.natsDir
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("JetStream store dir: %v", err)
	}

	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("after Close, %s still accepts connections", addr)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("JetStream store dir %s still there: %v", dir, err)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	t.Run("broker logs arrive at debug, tagged", func(t *testing.T) {
		t.Parallel()
		h := newCapture(slog.LevelDebug)
		b := start(t, Options{Logger: slog.New(h)})
		// A client that connects and leaves makes every broker log.
		for _, addr := range []string{b.KafkaAddr(), hostPort(t, b.MQTTURL()), hostPort(t, b.NATSURL())} {
			if c, err := net.DialTimeout("tcp", addr, waitTimeout); err == nil {
				c.Close()
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		brokers := map[string]int{}
		for _, r := range h.snapshot() {
			if r.Level != slog.LevelDebug {
				t.Errorf("log %q at %s, want DEBUG", r.Message, r.Level)
			}
			brokers[attr(r, "broker")]++
		}
		for _, name := range []string{"mqtt", "nats"} {
			if brokers[name] == 0 {
				t.Errorf("no log line tagged broker=%s (got %v)", name, brokers)
			}
		}
	})
	t.Run("quiet at info", func(t *testing.T) {
		t.Parallel()
		h := newCapture(slog.LevelInfo)
		b := start(t, Options{Logger: slog.New(h)})
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		for _, r := range h.snapshot() {
			t.Errorf("unexpected log at info level: %s %q", r.Level, r.Message)
		}
	})
}
