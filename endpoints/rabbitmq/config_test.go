package rabbitmq

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
	"github.com/sluicegw/sluice/plugins/plugintest"
)

// decode decodes YAML the way the configuration loader does: strictly, into
// a value with the defaults already set.
// decode decodes src as the gateway decodes this plugin's configuration.
func decode(t testing.TB, src string) (*Config, error) {
	t.Helper()
	return plugintest.Decode(t, DefaultConfig, src)
}

func TestDecodeConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc    string
		yaml    string
		check   func(*Config) string // "" when the decoded value is right
		wantErr string
	}{
		{
			desc: "the DESIGN.md keys, defaults kept",
			yaml: `
url: amqp://guest:guest@127.0.0.1:5672/
consumer: {exchange: orders, exchangeType: topic, routingKey: "orders.#", queue: orders-q}
producer: {exchange: orders, routingKey: orders.created, persistent: true}
`,
			check: func(c *Config) string {
				switch {
				case c.URL != "amqp://guest:guest@127.0.0.1:5672/":
					return "url"
				case c.Consumer != Consumer{Exchange: "orders", ExchangeType: "topic", RoutingKey: "orders.#", Queue: "orders-q", Prefetch: 256}:
					return "consumer"
				case c.Producer != Producer{Exchange: "orders", RoutingKey: "orders.created", Persistent: true}:
					return "producer"
				case !c.Declare || c.PublishTimeout != Duration(10*time.Second) || c.ConnectTimeout != Duration(10*time.Second):
					return "top-level defaults lost"
				case c.Reconnect != Reconnect{InitialDelay: Duration(500 * time.Millisecond), MaxDelay: Duration(30 * time.Second)}:
					return "reconnect defaults lost"
				}
				return ""
			},
		},
		{
			desc: "defaults when only url and an exchange are given",
			yaml: "url: amqps://u:p@mq.example.com/prod\nconsumer: {exchange: e}\n",
			check: func(c *Config) string {
				if c.Consumer.ExchangeType != ExchangeTopic || c.Consumer.RoutingKey != "#" || c.Consumer.Prefetch != 256 || !c.Producer.Persistent || c.Producer.Mandatory {
					return "defaults"
				}
				return ""
			},
		},
		{
			desc: "every knob",
			yaml: `
url: amqp://127.0.0.1
declare: false
publishTimeout: 2500ms
connectTimeout: 3s
reconnect: {initialDelay: 100ms, maxDelay: 5s}
consumer: {exchange: e, exchangeType: fanout, prefetch: 10}
producer: {exchange: e2, exchangeType: direct, routingKey: k, persistent: false, mandatory: true}
`,
			check: func(c *Config) string {
				switch {
				case c.Declare || c.PublishTimeout != Duration(2500*time.Millisecond) || c.ConnectTimeout != Duration(3*time.Second):
					return "top level"
				case c.Reconnect != Reconnect{InitialDelay: Duration(100 * time.Millisecond), MaxDelay: Duration(5 * time.Second)}:
					return "reconnect"
				case c.Consumer.ExchangeType != ExchangeFanout || c.Consumer.Prefetch != 10:
					return "consumer"
				case c.Producer.Persistent || !c.Producer.Mandatory || c.producerExchangeType() != ExchangeDirect:
					return "producer"
				}
				return ""
			},
		},
		{desc: "unknown keys are refused", yaml: "url: amqp://h\nproducer: {exchange: e, priority: 3}\n", wantErr: "priority"},
		{desc: "a bare number is not a duration", yaml: "url: amqp://h\nproducer: {exchange: e}\npublishTimeout: 10\n", wantErr: "duration"},
		{desc: "a duration must parse", yaml: "url: amqp://h\nproducer: {exchange: e}\nreconnect: {maxDelay: later}\n", wantErr: "duration"},
		{desc: "prefetch is a number", yaml: "url: amqp://h\nconsumer: {exchange: e, prefetch: many}\n", wantErr: "prefetch"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			plugintest.CheckDecode(t, DefaultConfig, tc.yaml, tc.wantErr, tc.check)
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const base = "url: amqp://guest:guest@127.0.0.1:5672/\n"
	long := strings.Repeat("x", 256)
	for _, tc := range []struct {
		desc   string
		yaml   string
		fields []string // nil: valid
	}{
		{desc: "producer only", yaml: base + "producer: {exchange: e}\n"},
		{desc: "default exchange with a routing key", yaml: base + "producer: {routingKey: my-queue}\n"},
		{desc: "consumer exchange only", yaml: base + "consumer: {exchange: e}\n"},
		{desc: "consumer queue only", yaml: base + "consumer: {queue: q}\n"},
		{desc: "amqps with a vhost and TLS files", yaml: "url: amqps://u:p@h:5671/v?cacertfile=/ca.pem&server_name_indication=mq\nconsumer: {queue: q}\n"},
		{desc: "an existing amq. queue may be consumed when not declaring", yaml: base + "declare: false\nconsumer: {queue: amq.q}\n"},
		{desc: "no url", yaml: "producer: {exchange: e}\n", fields: []string{"url"}},
		{desc: "not an AMQP url", yaml: "url: http://h:5672/\nproducer: {exchange: e}\n", fields: []string{"url"}},
		{desc: "an url with blanks", yaml: "url: 'amqp://h /'\nproducer: {exchange: e}\n", fields: []string{"url"}},
		{desc: "nothing to do", yaml: base, fields: []string{""}},
		{desc: "unknown exchange types", yaml: base + "consumer: {exchange: e, exchangeType: x-delayed}\nproducer: {exchange: e, exchangeType: Topic}\n",
			fields: []string{"consumer.exchangeType", "producer.exchangeType"}},
		{desc: "names over 255 bytes", yaml: base + "consumer: {exchange: " + long + ", routingKey: " + long + ", queue: " + long + "}\nproducer: {exchange: " + long + ", routingKey: " + long + "}\n",
			fields: []string{"consumer.exchange", "consumer.routingKey", "consumer.queue", "producer.exchange", "producer.routingKey"}},
		{desc: "control characters", yaml: base + "consumer: {exchange: \"a\\nb\"}\nproducer: {routingKey: \"k\\u0000\"}\n",
			fields: []string{"consumer.exchange", "producer.routingKey"}},
		{desc: "a reserved queue name to declare", yaml: base + "consumer: {queue: amq.mine}\n", fields: []string{"consumer.queue"}},
		{desc: "prefetch out of range", yaml: base + "consumer: {exchange: e, prefetch: 0}\n", fields: []string{"consumer.prefetch"}},
		{desc: "prefetch over 65535", yaml: base + "consumer: {exchange: e, prefetch: 65536}\n", fields: []string{"consumer.prefetch"}},
		{desc: "timeouts must be positive", yaml: base + "producer: {exchange: e}\npublishTimeout: 0s\nconnectTimeout: -1s\n",
			fields: []string{"publishTimeout", "connectTimeout"}},
		{desc: "reconnect delays", yaml: base + "producer: {exchange: e}\nreconnect: {initialDelay: 0s, maxDelay: -1s}\n",
			fields: []string{"reconnect.initialDelay", "reconnect.maxDelay"}},
		{desc: "max delay under the initial delay", yaml: base + "producer: {exchange: e}\nreconnect: {initialDelay: 2s, maxDelay: 1s}\n",
			fields: []string{"reconnect.maxDelay"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			plugintest.CheckValidate(t, DefaultConfig, tc.yaml, tc.fields)
		})
	}
}

// The password must never appear in an error message.
func TestValidateHidesPassword(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"amqp://u:s3cret@h:99999999/", "amqp://u:s3cret@h/%zz", "ftp://u:s3cret@h/"} {
		cfg := DefaultConfig()
		cfg.URL = url
		cfg.Consumer.Queue = "q"
		err := cfg.Validate()
		if err == nil {
			t.Fatalf("%s: valid, want an error", url)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc               string
		yaml               string
		publish, subscribe bool
	}{
		{desc: "exchange both ways", yaml: "consumer: {exchange: e}\nproducer: {exchange: e}\n", publish: true, subscribe: true},
		{desc: "default exchange publishing", yaml: "producer: {routingKey: q}\n", publish: true},
		{desc: "queue consuming", yaml: "consumer: {queue: q}\n", subscribe: true},
		{desc: "a routing key alone does not subscribe", yaml: "consumer: {routingKey: a.b}\nproducer: {exchange: e}\n", publish: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg, err := decode(t, "url: amqp://h\n"+tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			caps := cfg.Capabilities()
			if caps.Publish != tc.publish || caps.Subscribe != tc.subscribe {
				t.Fatalf("publish=%v subscribe=%v, want %v %v", caps.Publish, caps.Subscribe, tc.publish, tc.subscribe)
			}
			if caps.Replay || caps.DefaultStart != mediation.StartLatest || !slices.Equal(caps.QoS, mediation.AllQoS) {
				t.Fatalf("caps = %+v", caps)
			}
		})
	}
	p, _ := plugins.Default.Endpoint("rabbitmq")
	if caps := p.Capabilities("not a config"); caps.Publish || caps.Subscribe {
		t.Fatalf("capabilities of a foreign value = %+v", caps)
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	p, ok := plugins.Default.Endpoint("rabbitmq")
	if !ok {
		t.Fatal("rabbitmq is not registered")
	}
	if _, ok := p.Config().(*Config); !ok {
		t.Fatalf("Config() = %T", p.Config())
	}
	if _, err := p.New(plugins.Context{}, "wrong"); err == nil {
		t.Fatal("New accepted a foreign configuration")
	}
	if _, err := p.New(plugins.Context{}, DefaultConfig()); err == nil {
		t.Fatal("New accepted a configuration that does not validate")
	}
}

func TestReconnectDelay(t *testing.T) {
	t.Parallel()
	r := Reconnect{InitialDelay: Duration(100 * time.Millisecond), MaxDelay: Duration(time.Second)}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{0, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {3, 800 * time.Millisecond}, {4, time.Second}, {1000, time.Second}} {
		for range 20 {
			got := r.delay(tc.n)
			if lo, hi := tc.want*8/10, tc.want*12/10; got < lo || got > hi {
				t.Fatalf("delay(%d) = %v, want %v ±20%%", tc.n, got, tc.want)
			}
		}
	}
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add("url: amqp://guest:guest@127.0.0.1:5672/\nconsumer: {exchange: e, queue: q, prefetch: 3}\nproducer: {routingKey: k}\n")
	f.Add("url: amqps://h?heartbeat=5\nreconnect: {initialDelay: 1ms, maxDelay: 1h}\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := decode(t, src)
		if err != nil {
			return
		}
		err = cfg.Validate()
		if err == nil {
			// A valid configuration has something to do and sane limits.
			caps := cfg.Capabilities()
			if !caps.Publish && !caps.Subscribe {
				t.Fatalf("valid but does nothing: %+v", cfg)
			}
			if cfg.Consumer.Prefetch < 1 || cfg.Consumer.Prefetch > maxPrefetch || cfg.Reconnect.MaxDelay < cfg.Reconnect.InitialDelay {
				t.Fatalf("valid with bad limits: %+v", cfg)
			}
			return
		}
		// Every problem names its field, for file:line:col messages.
		var n int
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			n = len(j.Unwrap())
		}
		if got := len(plugintest.FieldsOf(err)); got != n {
			t.Fatalf("%d of %d problems are field errors: %v", got, n, err)
		}
	})
}

func FuzzDuration(f *testing.F) {
	for _, s := range []string{"10s", "250ms", "-1h", "10", "1e9s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return
		}
		b, _ := d.MarshalText()
		var again Duration
		if err := again.UnmarshalText(b); err != nil || again != d {
			t.Fatalf("%q -> %v -> %q -> %v (%v)", s, d, b, again, err)
		}
	})
}
