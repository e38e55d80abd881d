package mqtt5

import (
	"slices"
	"strings"
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
			desc: "the DESIGN.md keys, defaults kept",
			yaml: `
serverUrl: mqtt://127.0.0.1:1883
clientId: gw-1
username: u
password: p
sessionExpiry: 1h
consumer: {topic: "devices/+/telemetry", qos: 2, sharedGroup: gws}
producer: {topic: devices/in, qos: 0, retain: true, messageExpiry: 30s}
`,
			check: func(c *Config) string {
				switch {
				case c.ServerURL != "mqtt://127.0.0.1:1883" || c.ClientID != "gw-1" || c.Username != "u" || c.Password != "p":
					return "connection"
				case c.SessionExpiry != Duration(time.Hour):
					return "sessionExpiry"
				case c.Consumer != Consumer{Topic: "devices/+/telemetry", QoS: 2, SharedGroup: "gws", ReceiveMaximum: DefaultReceiveMaximum}:
					return "consumer"
				case c.Producer != Producer{Topic: "devices/in", QoS: 0, Retain: true, MessageExpiry: Duration(30 * time.Second)}:
					return "producer"
				case c.ConnectTimeout != Duration(10*time.Second) || c.PublishTimeout != Duration(10*time.Second) || c.KeepAlive != Duration(30*time.Second):
					return "timeout defaults lost"
				}
				return ""
			},
		},
		{
			desc: "qos defaults to 1 on both sides",
			yaml: "serverUrl: mqtt://b\nconsumer: {topic: a}\nproducer: {topic: b}\n",
			check: func(c *Config) string {
				if c.Consumer.QoS != 1 || c.Producer.QoS != 1 || c.Producer.Retain || c.ClientID != "" {
					return "defaults"
				}
				return ""
			},
		},
		{
			desc: "timeouts and tuning",
			yaml: "serverUrl: ws://b/mqtt\nproducer: {topic: t}\nconnectTimeout: 2s\npublishTimeout: 1500ms\nkeepAlive: 0s\nmaxReconnectDelay: 1m\nconsumer: {receiveMaximum: 10}\n",
			check: func(c *Config) string {
				if c.ConnectTimeout != Duration(2*time.Second) || c.PublishTimeout != Duration(1500*time.Millisecond) ||
					c.KeepAlive != 0 || c.MaxReconnectDelay != Duration(time.Minute) || c.Consumer.ReceiveMaximum != 10 {
					return "tuning"
				}
				return ""
			},
		},
		{
			desc: "tls block",
			yaml: "serverUrl: mqtts://b\nproducer: {topic: t}\ntls: {caFile: ca.pem, certFile: c.pem, keyFile: k.pem, insecureSkipVerify: true}\n",
			check: func(c *Config) string {
				if c.TLS != (TLS{"ca.pem", "c.pem", "k.pem", true}) {
					return "tls"
				}
				return ""
			},
		},
		{desc: "unknown keys are refused", yaml: "serverUrl: mqtt://b\nproducer: {topic: t, dup: true}\n", wantErr: "dup"},
		{desc: "a Kafka key is refused", yaml: "serverUrl: mqtt://b\nconsumer: {topics: [a]}\n", wantErr: "topics"},
		{desc: "a bare number is not a duration", yaml: "serverUrl: mqtt://b\nproducer: {topic: t}\npublishTimeout: 10\n", wantErr: "duration"},
		{desc: "qos is a number", yaml: "serverUrl: mqtt://b\nproducer: {topic: t, qos: high}\n", wantErr: "qos"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			plugintest.CheckDecode(t, DefaultConfig, tc.yaml, tc.wantErr, tc.check)
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const base = "serverUrl: mqtt://b:1883\nproducer: {topic: t}\n"
	for _, tc := range []struct {
		desc   string
		yaml   string
		fields []string // nil: valid
	}{
		{desc: "producer only is valid", yaml: base},
		{desc: "consumer only is valid", yaml: "serverUrl: mqtt://b\nconsumer: {topic: 'a/+/b/#'}\n"},
		{desc: "every scheme", yaml: "serverUrl: wss://b:8443/mqtt\nproducer: {topic: t}\ntls: {caFile: ca.pem}\n"},
		{desc: "a single # and a single + are filters", yaml: "serverUrl: tcp://b\nconsumer: {topic: '#'}\nproducer: {topic: '+x'}\n",
			fields: []string{"producer.topic"}},
		{desc: "no server", yaml: "producer: {topic: t}\n", fields: []string{"serverUrl"}},
		{desc: "an unknown scheme", yaml: "serverUrl: http://b\nproducer: {topic: t}\n", fields: []string{"serverUrl"}},
		{desc: "no scheme", yaml: "serverUrl: b:1883\nproducer: {topic: t}\n", fields: []string{"serverUrl"}},
		{desc: "credentials in the URL", yaml: "serverUrl: mqtt://u:p@b\nproducer: {topic: t}\n", fields: []string{"serverUrl"}},
		{desc: "a bad port", yaml: "serverUrl: mqtt://b:99999\nproducer: {topic: t}\n", fields: []string{"serverUrl"}},
		{desc: "a path on tcp", yaml: "serverUrl: mqtt://b/x\nproducer: {topic: t}\n", fields: []string{"serverUrl"}},
		{desc: "nothing to publish or subscribe", yaml: "serverUrl: mqtt://b\n", fields: []string{""}},
		{desc: "bad topic filters", yaml: "serverUrl: mqtt://b\nconsumer: {topic: 'a/#/b'}\n", fields: []string{"consumer.topic"}},
		{desc: "a partial-level wildcard", yaml: "serverUrl: mqtt://b\nconsumer: {topic: 'a/b+'}\n", fields: []string{"consumer.topic"}},
		{desc: "a $share filter", yaml: "serverUrl: mqtt://b\nconsumer: {topic: '$share/g/a'}\n", fields: []string{"consumer.topic"}},
		{desc: "a wildcard publish topic", yaml: "serverUrl: mqtt://b\nproducer: {topic: 'a/#'}\n", fields: []string{"producer.topic"}},
		{desc: "a $ publish topic", yaml: "serverUrl: mqtt://b\nproducer: {topic: '$SYS/x'}\n", fields: []string{"producer.topic"}},
		{desc: "qos out of range", yaml: "serverUrl: mqtt://b\nconsumer: {topic: a, qos: 3}\nproducer: {topic: b, qos: -1}\n",
			fields: []string{"consumer.qos", "producer.qos"}},
		{desc: "a shared group with a slash", yaml: "serverUrl: mqtt://b\nconsumer: {topic: a, sharedGroup: 'a/b'}\n", fields: []string{"consumer.sharedGroup"}},
		{desc: "receive maximum out of range", yaml: "serverUrl: mqtt://b\nconsumer: {topic: a, receiveMaximum: 70000}\n", fields: []string{"consumer.receiveMaximum"}},
		{desc: "fractional seconds", yaml: base + "sessionExpiry: 1500ms\nkeepAlive: 2.5s\n", fields: []string{"sessionExpiry", "keepAlive"}},
		{desc: "negative and huge intervals", yaml: "serverUrl: mqtt://b\nproducer: {topic: t, messageExpiry: -1s}\nsessionExpiry: 2000000h\n",
			fields: []string{"sessionExpiry", "producer.messageExpiry"}},
		{desc: "keepAlive over 65535s", yaml: base + "keepAlive: 20h\n", fields: []string{"keepAlive"}},
		{desc: "zero timeouts", yaml: base + "connectTimeout: 0s\npublishTimeout: -1s\nmaxReconnectDelay: 10ms\n",
			fields: []string{"connectTimeout", "publishTimeout", "maxReconnectDelay"}},
		{desc: "tls without TLS", yaml: base + "tls: {insecureSkipVerify: true}\n", fields: []string{"tls"}},
		{desc: "a certificate without its key", yaml: "serverUrl: mqtts://b\nproducer: {topic: t}\ntls: {certFile: c.pem}\n", fields: []string{"tls"}},
		{desc: "a client id with a space", yaml: base + "clientId: 'a b'\n", fields: []string{"clientId"}},
		{desc: "every problem is reported", yaml: "serverUrl: ftp://b\nconsumer: {topic: 'a#'}\nproducer: {topic: t, qos: 5}\n",
			fields: []string{"serverUrl", "consumer.topic", "producer.qos"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			plugintest.CheckValidate(t, DefaultConfig, tc.yaml, tc.fields)
		})
	}
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	live := []mediation.QoS{mediation.QoSNone, mediation.QoSAuto, mediation.QoSAtMostOnce}
	all := append(slices.Clone(live), mediation.QoSAtLeastOnce)
	for _, tc := range []struct {
		desc               string
		yaml               string
		publish, subscribe bool
		qos                []mediation.QoS
	}{
		{"producer only", "serverUrl: mqtt://b\nproducer: {topic: t}\n", true, false, live},
		{"consumer only", "serverUrl: mqtt://b\nconsumer: {topic: t}\n", false, true, live},
		{"persistent session with a stable client id", "serverUrl: mqtt://b\nclientId: gw\nsessionExpiry: 1h\nconsumer: {topic: t}\n", false, true, all},
		{"no session", "serverUrl: mqtt://b\nclientId: gw\nconsumer: {topic: t}\n", false, true, live},
		{"a random client id cannot resume", "serverUrl: mqtt://b\nsessionExpiry: 1h\nconsumer: {topic: t}\n", false, true, live},
		{"qos 0 is never acknowledged", "serverUrl: mqtt://b\nclientId: gw\nsessionExpiry: 1h\nconsumer: {topic: t, qos: 0}\nproducer: {topic: t}\n", true, true, live},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg, err := decode(t, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Capabilities()
			if got.Publish != tc.publish || got.Subscribe != tc.subscribe || got.Replay || got.DefaultStart != mediation.StartLatest || !slices.Equal(got.QoS, tc.qos) {
				t.Fatalf("Capabilities = %+v, want publish %v, subscribe %v, qos %v, no replay, start latest", got, tc.publish, tc.subscribe, tc.qos)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	p, ok := plugins.Default.Endpoint("mqtt5")
	if !ok {
		t.Fatal(`no "mqtt5" endpoint in plugins.Default`)
	}
	cfg, ok := p.Config().(*Config)
	if !ok || cfg.Consumer.QoS != 1 || cfg.PublishTimeout != Duration(10*time.Second) {
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

func TestServerURLDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, host string }{
		{"mqtt://b", "b:1883"},
		{"MQTT://b:1884", "b:1884"},
		{"mqtts://b", "b:8883"},
		{"tls://[::1]", "[::1]:8883"},
		{"ws://b/mqtt", "b"},
		{"wss://b:9001/mqtt", "b:9001"},
	} {
		u, err := parseServerURL(tc.in)
		if err != nil || u.Host != tc.host {
			t.Errorf("parseServerURL(%q) = %v, %v; want host %q", tc.in, u, err, tc.host)
		}
	}
}

func TestSubscriptionFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, shared, group, want string
	}{
		{"plain", "", "", "a/+"},
		{"configured group", "gws", "", "$share/gws/a/+"},
		{"request group", "", "orders", "$share/orders/a/+"},
		{"both, the configured one prefixes", "gws", "orders", "$share/gws.orders/a/+"},
		{"a group with characters a share name cannot hold", "", "a/b#", "$share/h" + hashName("a/b#") + "/a/+"},
	} {
		c := Consumer{Topic: "a/+", SharedGroup: tc.shared}
		if got := subscriptionFilter(&c, tc.group); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.desc, got, tc.want)
		}
	}
}

func TestSubscriptionClientIDs(t *testing.T) {
	t.Parallel()
	e := &Endpoint{clientID: "gw", groups: map[string]map[int]bool{}}
	a, _ := e.subscriptionClientID("")
	b, _ := e.subscriptionClientID("")
	g1, free1 := e.subscriptionClientID("orders")
	g2, _ := e.subscriptionClientID("orders")
	odd, _ := e.subscriptionClientID("a b/c")
	if a != "gw-s-1" || b != "gw-s-2" || g1 != "gw-g-orders" || g2 != "gw-g-orders.2" || odd != "gw-g-h"+hashName("a b/c") {
		t.Fatalf("ids %q %q %q %q %q", a, b, g1, g2, odd)
	}
	free1()
	if again, _ := e.subscriptionClientID("orders"); again != "gw-g-orders" {
		t.Fatalf("after the first group subscription closed, the next one is %q, want its stable name back", again)
	}
}

// FuzzDecodeConfig feeds arbitrary YAML through the loader's path: decoding
// and validation must never panic, and whatever validates must be usable.
func FuzzDecodeConfig(f *testing.F) {
	f.Add("serverUrl: mqtt://127.0.0.1:1883\nconsumer: {topic: 'a/+/#', qos: 2, sharedGroup: g}\nproducer: {topic: a, retain: true}\n")
	f.Add("serverUrl: wss://b/mqtt\nclientId: gw\nsessionExpiry: 1h\nconsumer: {topic: '#'}\ntls: {insecureSkipVerify: true}\n")
	f.Add("serverUrl: 'mqtt://[::1'\nproducer: {topic: '$x', messageExpiry: 1.5s}\n")
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
		u, err := parseServerURL(cfg.ServerURL)
		if err != nil || u.Host == "" {
			t.Fatalf("valid serverUrl %q does not parse: %v", cfg.ServerURL, err)
		}
		if !caps.Subscribe {
			return
		}
		for _, g := range []string{"", "g", "a/b+"} {
			f := subscriptionFilter(&cfg.Consumer, g)
			if g == "" && cfg.Consumer.SharedGroup == "" {
				if f != cfg.Consumer.Topic {
					t.Fatalf("unshared filter %q, want %q", f, cfg.Consumer.Topic)
				}
				continue
			}
			rest, ok := strings.CutPrefix(f, "$share/")
			share, topic, _ := strings.Cut(rest, "/")
			if !ok || share == "" || checkShareName(share) != nil || topic != cfg.Consumer.Topic {
				t.Fatalf("group %q: shared filter %q is not $share/<name>/%s", g, f, cfg.Consumer.Topic)
			}
		}
	})
}

// FuzzServerURL: parsing never panics, and an accepted TCP URL always has
// the port autopaho needs.
func FuzzServerURL(f *testing.F) {
	for _, s := range []string{"mqtt://b", "mqtts://b:8883", "ws://b/mqtt", "mqtt://u@b", "mqtt://b:", "mqtt://:1883", "tcp://[::1]:1", "mqtt:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseServerURL(s)
		if err != nil {
			return
		}
		if u.Hostname() == "" {
			t.Fatalf("%q accepted without a host", s)
		}
		if !isWebSocketScheme(u.Scheme) && u.Port() == "" {
			t.Fatalf("%q accepted as %q without a port", s, u.Host)
		}
	})
}

// FuzzTopicFilter: an accepted filter follows MQTT's wildcard rules.
func FuzzTopicFilter(f *testing.F) {
	for _, s := range []string{"a/+/b", "#", "a/#", "a/#/b", "a+", "+/+", "", "$share/g/a", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkFilter(s) != nil {
			return
		}
		levels := strings.Split(s, "/")
		for i, l := range levels {
			if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
				t.Fatalf("%q accepted with a misplaced #", s)
			}
			if strings.Contains(l, "+") && l != "+" {
				t.Fatalf("%q accepted with a partial-level +", s)
			}
		}
		if checkTopicName(s) == nil && strings.ContainsAny(s, "+#") {
			t.Fatalf("%q accepted as a publish topic", s)
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
