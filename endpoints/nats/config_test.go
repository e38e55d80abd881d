package nats

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/mediation"
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
servers: ["nats://127.0.0.1:4222"]
consumer: {subject: orders.created, stream: ORDERS, durable: gw, autoOffsetReset: earliest}
producer: {subject: orders.created}
`,
			check: func(c *Config) string {
				switch {
				case !slices.Equal(c.Servers, []string{"nats://127.0.0.1:4222"}):
					return "servers"
				case c.Consumer != Consumer{Subject: "orders.created", Stream: "ORDERS", Durable: "gw", AutoOffsetReset: OffsetEarliest,
					AckWait: Duration(30 * time.Second), BufferMessages: 512, BufferBytes: 8 << 20}:
					return "consumer"
				case c.Producer != Producer{Subject: "orders.created"}:
					return "producer"
				case c.PublishTimeout != Duration(10*time.Second) || c.ConnectTimeout != Duration(5*time.Second) ||
					c.RequestTimeout != Duration(10*time.Second) || c.ReconnectWait != Duration(2*time.Second):
					return "timeout defaults"
				}
				return ""
			},
		},
		{
			desc: "core NATS with a queue group and credentials",
			yaml: `
servers: [nats://a:4222, "tls://b:4443", c:4222]
consumer: {subject: "telemetry.*.>", queueGroup: gateways, bufferMessages: 64, bufferBytes: 65536}
credentials: {user: gw, password: s3cret}
publishTimeout: 2500ms
connectTimeout: 1s
reconnectWait: 250ms
`,
			check: func(c *Config) string {
				switch {
				case c.JetStream():
					return "mode"
				case c.Consumer.Subject != "telemetry.*.>" || c.Consumer.QueueGroup != "gateways" || c.Consumer.BufferMessages != 64 || c.Consumer.BufferBytes != 65536:
					return "consumer"
				case c.Credentials != Credentials{User: "gw", Password: "s3cret"}:
					return "credentials"
				case c.PublishTimeout != Duration(2500*time.Millisecond) || c.ConnectTimeout != Duration(time.Second) || c.ReconnectWait != Duration(250*time.Millisecond):
					return "durations"
				}
				return ""
			},
		},
		{desc: "unknown keys are refused", yaml: "servers: [a]\nproducer: {subject: s, acks: all}\n", wantErr: "acks"},
		{desc: "a deliverPolicy is not a key (autoOffsetReset is)", yaml: "servers: [a]\nconsumer: {stream: S, deliverPolicy: all}\n", wantErr: "deliverPolicy"},
		{desc: "a bare number is not a duration", yaml: "servers: [a]\nproducer: {subject: s}\npublishTimeout: 10\n", wantErr: "duration"},
		{desc: "a duration must parse", yaml: "servers: [a]\nproducer: {subject: s}\nconnectTimeout: soon\n", wantErr: "duration"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			plugintest.CheckDecode(t, DefaultConfig, tc.yaml, tc.wantErr, tc.check)
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const base = "servers: [nats://127.0.0.1:4222]\n"
	for _, tc := range []struct {
		desc   string
		yaml   string
		fields []string // nil: valid
		want   string   // a part of the message, when it matters
	}{
		{desc: "producer only is valid", yaml: base + "producer: {subject: orders.in}\n"},
		{desc: "core consumer only is valid", yaml: base + "consumer: {subject: 'orders.*'}\n"},
		{desc: "a whole stream without a subject is valid", yaml: base + "consumer: {stream: ORDERS, durable: gw, autoOffsetReset: earliest}\n"},
		{desc: "token alone is valid", yaml: base + "producer: {subject: s}\ncredentials: {token: t}\n"},
		{desc: "a creds file alone is valid", yaml: base + "producer: {subject: s}\ncredentials: {credsFile: /etc/gw.creds}\n"},
		{desc: "no server", yaml: "producer: {subject: s}\n", fields: []string{"servers"}},
		{desc: "servers that are not NATS URLs", yaml: "servers: ['http://a:80', '', 'nats://', 'a b', 'a,b']\nproducer: {subject: s}\n",
			fields: []string{"servers", "servers", "servers", "servers", "servers"}},
		{desc: "nothing to do", yaml: base, fields: []string{""}},
		{desc: "a producer subject with a wildcard", yaml: base + "producer: {subject: 'orders.*'}\n", fields: []string{"producer.subject"}, want: "wildcards"},
		{desc: "malformed subjects", yaml: base + "consumer: {subject: 'a..b'}\nproducer: {subject: '.a'}\n",
			fields: []string{"consumer.subject", "producer.subject"}},
		{desc: "'>' not last", yaml: base + "consumer: {subject: 'a.>.b'}\n", fields: []string{"consumer.subject"}},
		{desc: "a wildcard inside a token", yaml: base + "consumer: {subject: 'a.b*'}\n", fields: []string{"consumer.subject"}},
		{desc: "a subject with a space", yaml: base + "consumer: {subject: 'a b'}\n", fields: []string{"consumer.subject"}},
		{desc: "stream names JetStream refuses", yaml: base + "consumer: {stream: 'a.b'}\nproducer: {subject: s, stream: 'x y'}\n",
			fields: []string{"consumer.stream", "producer.stream"}},
		{desc: "a durable without a stream", yaml: base + "consumer: {subject: s, durable: gw}\n", fields: []string{"consumer.durable"}, want: "consumer.stream"},
		{desc: "a durable name JetStream refuses", yaml: base + "consumer: {stream: S, durable: 'g.w'}\n", fields: []string{"consumer.durable"}},
		{desc: "a queue group with a stream", yaml: base + "consumer: {stream: S, queueGroup: q}\n", fields: []string{"consumer.queueGroup"}},
		{desc: "earliest on core NATS", yaml: base + "consumer: {subject: s, autoOffsetReset: earliest}\n", fields: []string{"consumer.autoOffsetReset"}, want: "core NATS keeps no messages"},
		{desc: "an unknown autoOffsetReset", yaml: base + "consumer: {stream: S, autoOffsetReset: oldest}\n", fields: []string{"consumer.autoOffsetReset"}},
		{desc: "bounds of the buffers and ackWait", yaml: base + "consumer: {stream: S, bufferMessages: 0, bufferBytes: 10, ackWait: 10ms}\n",
			fields: []string{"consumer.ackWait", "consumer.bufferMessages", "consumer.bufferBytes"}},
		{desc: "timeouts must be positive", yaml: base + "producer: {subject: s}\npublishTimeout: 0s\nconnectTimeout: -1s\nrequestTimeout: 0s\nreconnectWait: 0s\n",
			fields: []string{"publishTimeout", "connectTimeout", "requestTimeout", "reconnectWait"}},
		{desc: "two kinds of credentials", yaml: base + "producer: {subject: s}\ncredentials: {user: u, password: p, token: t}\n", fields: []string{"credentials"}},
		{desc: "a password without a user", yaml: base + "producer: {subject: s}\ncredentials: {password: p}\n", fields: []string{"credentials.user"}},
		{desc: "a user without a password", yaml: base + "producer: {subject: s}\ncredentials: {user: u}\n", fields: []string{"credentials.password"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg, err := decode(t, tc.yaml)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			err = cfg.Validate()
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", cfg)
			}
			got := plugintest.FieldsOf(err)
			slices.Sort(got)
			want := slices.Clone(tc.fields)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("problems with %q, want %q: %v", got, want, err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// Core NATS cannot redeliver, so at-least-once is not offered and the
// configuration loader refuses it; JetStream offers every level and replay.
func TestCapabilities(t *testing.T) {
	t.Parallel()
	core := coreConfig("nats://x:4222", "s").Capabilities()
	if core.Replay || core.Supports(mediation.QoSAtLeastOnce) || !core.Supports(mediation.QoSAtMostOnce) || !core.Supports(mediation.QoSNone) ||
		!core.Publish || !core.Subscribe || core.DefaultStart != mediation.StartLatest {
		t.Errorf("core NATS capabilities %+v", core)
	}
	js := jsConfig("nats://x:4222", "S")
	if c := js.Capabilities(); !c.Replay || !c.Supports(mediation.QoSAtLeastOnce) || c.DefaultStart != mediation.StartLatest || !c.Subscribe {
		t.Errorf("JetStream capabilities %+v", c)
	}
	js.Consumer.AutoOffsetReset = OffsetEarliest
	if c := js.Capabilities(); c.DefaultStart != mediation.StartEarliest {
		t.Errorf("JetStream with earliest starts at %v", c.DefaultStart)
	}
	pubOnly := DefaultConfig()
	pubOnly.Producer.Subject = "s"
	if c := pubOnly.Capabilities(); c.Subscribe || !c.Publish {
		t.Errorf("publish-only capabilities %+v", c)
	}
}

func TestDurableName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100)
	for _, tc := range []struct {
		desc, prefix, group, want string
	}{
		{desc: "the group names the consumer", group: "sub-42", want: "sub-42"},
		{desc: "the prefix goes first", prefix: "gw", group: "sub-42", want: "gw_sub-42"},
	} {
		if got := durableName(tc.prefix, tc.group); got != tc.want {
			t.Errorf("%s: durableName(%q, %q) = %q, want %q", tc.desc, tc.prefix, tc.group, got, tc.want)
		}
	}
	// Groups that differ only in characters JetStream refuses stay apart.
	a, b := durableName("", "a.b"), durableName("", "a b")
	if a == b || checkName(a) != nil || checkName(b) != nil {
		t.Errorf("durableName of a.b and a b: %q, %q", a, b)
	}
	if n := durableName("gw", long); len(n) > maxDurableName || !utf8.ValidString(n) || n == durableName("gw", long+"x") {
		t.Errorf("durableName of a long group = %q", n)
	}
}

// FuzzDurableName checks that any group yields a name JetStream accepts,
// within bounds, and that different groups get different names.
func FuzzDurableName(f *testing.F) {
	f.Add("gw", "sub-1", "sub-2")
	f.Add("", "a.b", "a_b")
	f.Add("", strings.Repeat("x", 200), strings.Repeat("x", 201))
	f.Fuzz(func(t *testing.T, prefix, g1, g2 string) {
		if checkName(prefix) != nil {
			prefix = ""
		}
		if g1 == "" || g2 == "" {
			return
		}
		n1, n2 := durableName(prefix, g1), durableName(prefix, g2)
		for _, n := range []string{n1, n2} {
			if err := checkName(n); err != nil || len(n) > maxDurableName || !utf8.ValidString(n) {
				t.Fatalf("durableName(%q, ...) = %q: %v", prefix, n, err)
			}
		}
		if g1 != g2 && n1 == n2 {
			t.Fatalf("groups %q and %q share the consumer %q", g1, g2, n1)
		}
	})
}

// FuzzDecodeConfig decodes and validates arbitrary YAML: it may fail, but
// never panics, and a valid configuration has a usable mode.
func FuzzDecodeConfig(f *testing.F) {
	f.Add("servers: [nats://127.0.0.1:4222]\nconsumer: {subject: a.b, stream: S}\nproducer: {subject: a.b}\n")
	f.Add("servers: [a]\nconsumer: {subject: 'a.*.>', queueGroup: q}\ncredentials: {token: t}\n")
	f.Add("servers: []\npublishTimeout: 1h\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg := DefaultConfig()
		if err := config.DecodeBlock("fuzz.yaml", []byte(src), cfg); err != nil {
			return
		}
		if cfg.Validate() != nil {
			return
		}
		c := cfg.Capabilities()
		if !c.Publish && !c.Subscribe {
			t.Fatalf("valid configuration that does nothing: %+v", cfg)
		}
		if c.Supports(mediation.QoSAtLeastOnce) != c.Replay {
			t.Fatalf("capabilities %+v: at-least-once without replay or the reverse", c)
		}
		if c.Subscribe && !cfg.JetStream() && checkSubject(cfg.Consumer.Subject, true) != nil {
			t.Fatalf("core subscription on an invalid subject %q", cfg.Consumer.Subject)
		}
	})
}

// FuzzDuration parses any text: a duration or an error, never a panic, and
// what parses renders back to the same value.
func FuzzDuration(f *testing.F) {
	f.Add("10s")
	f.Add("-1.5h")
	f.Add("99999999999999999999h")
	f.Fuzz(func(t *testing.T, s string) {
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return
		}
		var back Duration
		text, _ := d.MarshalText()
		if err := back.UnmarshalText(text); err != nil || back != d {
			t.Fatalf("%q parsed as %v, which renders as %q and parses as %v (%v)", s, d, text, back, err)
		}
	})
}

// FuzzCheckSubject checks the subject rules against their definition.
func FuzzCheckSubject(f *testing.F) {
	f.Add("a.b.c", true)
	f.Add("a.*.>", true)
	f.Add("a..b", false)
	f.Add("a.>.b", true)
	f.Fuzz(func(t *testing.T, s string, wildcards bool) {
		err := checkSubject(s, wildcards)
		tokens := strings.Split(s, ".")
		valid := s != "" && utf8.ValidString(s) && !strings.ContainsFunc(s, isSpaceOrControl)
		for i, tok := range tokens {
			switch {
			case tok == "":
				valid = false
			case tok == "*" || tok == ">":
				valid = valid && wildcards && (tok == "*" || i == len(tokens)-1)
			case strings.ContainsAny(tok, "*>"):
				valid = false
			}
		}
		if (err == nil) != valid {
			t.Fatalf("checkSubject(%q, %v) = %v, want valid=%v", s, wildcards, err, valid)
		}
	})
}
