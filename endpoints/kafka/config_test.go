package kafka

import (
	"slices"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/config"
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
			desc: "the DESIGN.md example, defaults kept",
			yaml: `
bootstrapServers: ["127.0.0.1:9092"]
consumer: {topics: [orders], autoOffsetReset: earliest}
producer: {topic: orders}
`,
			check: func(c *Config) string {
				switch {
				case !slices.Equal(c.BootstrapServers, []string{"127.0.0.1:9092"}):
					return "bootstrapServers"
				case !slices.Equal(c.Consumer.Topics, []string{"orders"}) || c.Consumer.AutoOffsetReset != OffsetEarliest:
					return "consumer"
				case c.Producer.Topic != "orders":
					return "producer.topic"
				case c.Producer.KeyHeader != "kafka-key" || c.Producer.DeliveryTimeout != Duration(10*time.Second) || c.Producer.Compression != "none":
					return "producer defaults lost when producer was given"
				case c.Consumer.GroupID != "sluice" || c.Security.Protocol != ProtocolPlaintext || c.ClientID != "sluice":
					return "other defaults lost"
				}
				return ""
			},
		},
		{
			desc: "durations are Go durations",
			yaml: `
bootstrapServers: [k:9092]
producer: {topic: t, deliveryTimeout: 2500ms, linger: 5ms}
requestTimeout: 1m
consumer: {commitInterval: 3s}
`,
			check: func(c *Config) string {
				if c.Producer.DeliveryTimeout != Duration(2500*time.Millisecond) || c.Producer.Linger != Duration(5*time.Millisecond) ||
					c.RequestTimeout != Duration(time.Minute) || c.Consumer.CommitInterval != Duration(3*time.Second) {
					return "durations"
				}
				return ""
			},
		},
		{
			desc: "security block",
			yaml: `
bootstrapServers: [k:9093]
consumer: {topicPattern: "orders-.*", groupId: gw}
security:
  protocol: SASL_SSL
  sasl: {mechanism: SCRAM-SHA-512, username: u, password: p}
  tls: {caFile: /etc/ca.pem, insecureSkipVerify: true}
`,
			check: func(c *Config) string {
				s := c.Security
				if s.Protocol != ProtocolSASLSSL || s.SASL != (SASL{MechanismScramSHA512, "u", "p"}) || s.TLS.CAFile != "/etc/ca.pem" || !s.TLS.InsecureSkipVerify {
					return "security"
				}
				return ""
			},
		},
		{desc: "unknown keys are refused", yaml: "bootstrapServers: [k]\nproducer: {topic: t, acks: all}\n", wantErr: "acks"},
		{desc: "a bare number is not a duration", yaml: "bootstrapServers: [k]\nproducer: {topic: t, deliveryTimeout: 10}\n", wantErr: "duration"},
		{desc: "a duration must parse", yaml: "bootstrapServers: [k]\nproducer: {topic: t, deliveryTimeout: soon}\n", wantErr: "duration"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			plugintest.CheckDecode(t, DefaultConfig, tc.yaml, tc.wantErr, tc.check)
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const base = "bootstrapServers: [k:9092]\nproducer: {topic: t}\n"
	for _, tc := range []struct {
		desc   string
		yaml   string
		fields []string // nil: valid
	}{
		{desc: "producer only is valid", yaml: base},
		{desc: "consumer only is valid", yaml: "bootstrapServers: [k]\nconsumer: {topics: [a, b.c_d-e]}\n"},
		{desc: "SASL over TLS is valid", yaml: base + "security: {protocol: SASL_SSL, sasl: {mechanism: PLAIN, username: u, password: p}, tls: {caFile: ca.pem}}\n"},
		{desc: "no broker", yaml: "producer: {topic: t}\n", fields: []string{"bootstrapServers"}},
		{desc: "a broker address that is not host:port", yaml: "bootstrapServers: ['k:99999', 'http://k:9092', '']\nproducer: {topic: t}\n",
			fields: []string{"bootstrapServers", "bootstrapServers", "bootstrapServers"}},
		{desc: "nothing to publish or subscribe", yaml: "bootstrapServers: [k]\n", fields: []string{""}},
		{desc: "illegal topic names", yaml: "bootstrapServers: [k]\nconsumer: {topics: ['a b', '..', a, a]}\nproducer: {topic: 'x/y'}\n",
			fields: []string{"consumer.topics", "consumer.topics", "consumer.topics", "producer.topic"}},
		{desc: "topics and a pattern", yaml: base + "consumer: {topics: [a], topicPattern: 'a.*'}\n", fields: []string{"consumer.topicPattern"}},
		{desc: "a pattern that does not compile", yaml: base + "consumer: {topicPattern: '('}\n", fields: []string{"consumer.topicPattern"}},
		{desc: "an unknown autoOffsetReset", yaml: base + "consumer: {autoOffsetReset: newest}\n", fields: []string{"consumer.autoOffsetReset"}},
		{desc: "an empty groupId", yaml: base + "consumer: {groupId: ''}\n", fields: []string{"consumer.groupId"}},
		{desc: "no fetch bytes", yaml: base + "consumer: {fetchMaxBytes: 0}\n", fields: []string{"consumer.fetchMaxBytes"}},
		{desc: "an unknown compression", yaml: "bootstrapServers: [k]\nproducer: {topic: t, compression: brotli}\n", fields: []string{"producer.compression"}},
		{desc: "a delivery timeout franz-go refuses", yaml: "bootstrapServers: [k]\nproducer: {topic: t, deliveryTimeout: 500ms}\n", fields: []string{"producer.deliveryTimeout"}},
		{desc: "a linger over a minute", yaml: "bootstrapServers: [k]\nproducer: {topic: t, linger: 2m}\n", fields: []string{"producer.linger"}},
		{desc: "a key header with a space", yaml: "bootstrapServers: [k]\nproducer: {topic: t, keyHeader: 'a b'}\n", fields: []string{"producer.keyHeader"}},
		{desc: "an unknown protocol", yaml: base + "security: {protocol: TLS}\n", fields: []string{"security.protocol"}},
		{desc: "SASL without a mechanism", yaml: base + "security: {protocol: SASL_PLAINTEXT, sasl: {username: u}}\n", fields: []string{"security.sasl.mechanism"}},
		{desc: "an unknown mechanism", yaml: base + "security: {protocol: SASL_SSL, sasl: {mechanism: GSSAPI, username: u}}\n", fields: []string{"security.sasl.mechanism"}},
		{desc: "SASL without a user", yaml: base + "security: {protocol: SASL_SSL, sasl: {mechanism: PLAIN}}\n", fields: []string{"security.sasl.username"}},
		{desc: "SASL settings with a protocol that does not use them", yaml: base + "security: {sasl: {mechanism: PLAIN, username: u}}\n", fields: []string{"security.sasl"}},
		{desc: "TLS settings with a protocol that does not use them", yaml: base + "security: {protocol: SASL_PLAINTEXT, sasl: {mechanism: PLAIN, username: u}, tls: {caFile: ca.pem}}\n", fields: []string{"security.tls"}},
		{desc: "a certificate without its key", yaml: base + "security: {protocol: SSL, tls: {certFile: c.pem}}\n", fields: []string{"security.tls"}},
		{desc: "every problem is reported", yaml: "bootstrapServers: [k]\nconsumer: {topics: [a], autoOffsetReset: x}\nproducer: {topic: t, compression: y}\n",
			fields: []string{"consumer.autoOffsetReset", "producer.compression"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			plugintest.CheckValidate(t, DefaultConfig, tc.yaml, tc.fields)
		})
	}
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		yaml string
		want mediation.Capabilities
	}{
		{"producer only", "bootstrapServers: [k]\nproducer: {topic: t}\n",
			mediation.Capabilities{Publish: true, Replay: true, QoS: mediation.AllQoS, DefaultStart: mediation.StartLatest}},
		{"consumer from the earliest", "bootstrapServers: [k]\nconsumer: {topics: [t], autoOffsetReset: earliest}\n",
			mediation.Capabilities{Subscribe: true, Replay: true, QoS: mediation.AllQoS, DefaultStart: mediation.StartEarliest}},
		{"both, pattern, latest", "bootstrapServers: [k]\nconsumer: {topicPattern: 't.*'}\nproducer: {topic: t}\n",
			mediation.Capabilities{Publish: true, Subscribe: true, Replay: true, QoS: mediation.AllQoS, DefaultStart: mediation.StartLatest}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg, err := decode(t, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Capabilities()
			if got.Publish != tc.want.Publish || got.Subscribe != tc.want.Subscribe || got.Replay != tc.want.Replay ||
				got.DefaultStart != tc.want.DefaultStart || !slices.Equal(got.QoS, tc.want.QoS) {
				t.Fatalf("Capabilities = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	p, ok := plugins.Default.Endpoint("kafka")
	if !ok {
		t.Fatal(`no "kafka" endpoint in plugins.Default`)
	}
	cfg, ok := p.Config().(*Config)
	if !ok || cfg.Consumer.AutoOffsetReset != OffsetLatest || cfg.Producer.KeyHeader != "kafka-key" {
		t.Fatalf("Config() = %#v, want a *Config with defaults", p.Config())
	}
	if caps := p.Capabilities(struct{}{}); caps.Publish || caps.Subscribe {
		t.Fatalf("capabilities of a foreign configuration = %+v, want none", caps)
	}
	if _, err := p.New(plugins.Context{}, struct{}{}); err == nil {
		t.Fatal("New accepted a foreign configuration")
	}
	if _, err := p.New(plugins.Context{}, cfg); err == nil {
		t.Fatal("New accepted a configuration that fails Validate")
	}
}

// FuzzDecodeConfig feeds arbitrary YAML through the loader's path: decoding
// and validation must never panic, and whatever validates must be usable.
func FuzzDecodeConfig(f *testing.F) {
	f.Add("bootstrapServers: [k:9092]\nconsumer: {topics: [orders], autoOffsetReset: earliest}\nproducer: {topic: orders}\n")
	f.Add("bootstrapServers: [k]\nconsumer: {topicPattern: '(a|b).*'}\nsecurity: {protocol: SASL_SSL, sasl: {mechanism: PLAIN, username: u}}\n")
	f.Add("producer: {deliveryTimeout: 1h2m3s, linger: -1s}\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg := DefaultConfig()
		if err := config.DecodeBlock("fuzz.yaml", []byte(src), cfg); err != nil {
			return
		}
		if cfg.Validate() != nil {
			return
		}
		caps := cfg.Capabilities()
		if !caps.Publish && !caps.Subscribe {
			t.Fatalf("a valid configuration that does nothing: %+v", cfg)
		}
		if cfg.Consumer.TopicPattern != "" {
			if _, err := compilePattern(cfg.Consumer.TopicPattern); err != nil {
				t.Fatalf("valid pattern does not compile: %v", err)
			}
		}
	})
}

func FuzzDuration(f *testing.F) {
	for _, s := range []string{"10s", "250ms", "1h2m", "-1s", "10", "", "1e9s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return
		}
		b, _ := d.MarshalText()
		var back Duration
		if err := back.UnmarshalText(b); err != nil || back != d {
			t.Fatalf("%q → %v → %q → %v, %v", s, d, b, back, err)
		}
	})
}
