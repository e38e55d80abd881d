package solace

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins/plugintest"
)

// decode decodes src as the gateway decodes this plugin's configuration.
func decode(t testing.TB, src string) (*Config, error) {
	t.Helper()
	return plugintest.Decode(t, DefaultConfig, src)
}

func TestDecodeConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		yaml  string
		check func(*Config) string // "" when the decoded value is right
	}{
		{
			desc: "the DESIGN.md keys, defaults kept",
			yaml: `
url: amqps://broker.example.com:5671
vpn: prod
username: gw
password: secret
consumer: {topics: [orders/>, "payments/*/failed"]}
producer: {topic: orders/created}
`,
			check: func(c *Config) string {
				switch {
				case c.URL != "amqps://broker.example.com:5671" || c.VPN != "prod" || c.Username != "gw" || c.Password != "secret":
					return "connection keys"
				case !slices.Equal(c.Consumer.Topics, []string{"orders/>", "payments/*/failed"}) || c.Consumer.Credit != 256:
					return "consumer"
				case c.Producer != Producer{Topic: "orders/created", DeliveryMode: DeliveryPersistent}:
					return "producer"
				case c.Addressing != AddressingSolace || c.PublishTimeout != Duration(10*time.Second) || c.IdleTimeout != Duration(30*time.Second):
					return "defaults lost"
				}
				return ""
			},
		},
		{
			desc: "every knob",
			yaml: `
url: amqp://127.0.0.1:5672
addressing: rabbitmq
tls: {caFile: ca.pem, certFile: c.pem, keyFile: k.pem, serverName: mq, insecureSkipVerify: true}
publishTimeout: 2s
connectTimeout: 3s
idleTimeout: 4s
reconnect: {initialDelay: 100ms, maxDelay: 5s}
consumer: {queue: q, credit: 10}
producer: {address: /exchange/amq.topic/k, deliveryMode: direct}
`,
			check: func(c *Config) string {
				switch {
				case c.TLS != TLS{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "mq", InsecureSkipVerify: true}:
					return "tls"
				case c.PublishTimeout != Duration(2*time.Second) || c.ConnectTimeout != Duration(3*time.Second) || c.IdleTimeout != Duration(4*time.Second):
					return "timeouts"
				case c.Consumer.Queue != "q" || c.Consumer.Credit != 10 || c.Producer.DeliveryMode != DeliveryDirect:
					return "consumer/producer"
				}
				return ""
			},
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c, err := decode(t, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if what := tc.check(c); what != "" {
				t.Fatalf("%s wrong: %+v", what, c)
			}
		})
	}
}

func TestDecodeRefusesUnknownKeys(t *testing.T) {
	t.Parallel()
	if _, err := decode(t, "url: amqp://h\nconsumer: {topic: a}\n"); err == nil {
		t.Fatal("consumer.topic (instead of topics) was accepted")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc   string
		yaml   string
		fields []string
	}{
		{desc: "nothing", yaml: "{}", fields: []string{"url", ""}},
		{desc: "not amqp", yaml: "url: http://h\nproducer: {topic: a}", fields: []string{"url"}},
		{desc: "a path", yaml: "url: amqp://h/vhost\nproducer: {topic: a}", fields: []string{"url"}},
		{desc: "bad port", yaml: "url: amqp://h:99999\nproducer: {topic: a}", fields: []string{"url"}},
		{desc: "password alone", yaml: "url: amqp://h\npassword: p\nproducer: {topic: a}", fields: []string{"password"}},
		{desc: "cert without key", yaml: "url: amqps://h\ntls: {certFile: c}\nproducer: {topic: a}", fields: []string{"tls"}},
		{desc: "two sources", yaml: "url: amqp://h\nconsumer: {queue: q, topics: [a]}", fields: []string{"consumer"}},
		{desc: "wildcard publish", yaml: "url: amqp://h\nproducer: {topic: a/>}", fields: []string{"producer.topic"}},
		{desc: "bad subscription", yaml: "url: amqp://h\nconsumer: {topics: [a, a//b]}", fields: []string{"consumer.topics[1]"}},
		{desc: "RabbitMQ cannot say it", yaml: "url: amqp://h\naddressing: rabbitmq\nconsumer: {topics: [a/b*]}", fields: []string{"consumer.topics[0]"}},
		{desc: "bad queue", yaml: "url: amqp://h\nconsumer: {queue: \"q*\"}", fields: []string{"consumer.queue"}},
		{desc: "two targets", yaml: "url: amqp://h\nproducer: {topic: a, address: b}", fields: []string{"producer"}},
		{desc: "delivery mode", yaml: "url: amqp://h\nproducer: {topic: a, deliveryMode: guaranteed}", fields: []string{"producer.deliveryMode"}},
		{desc: "addressing", yaml: "url: amqp://h\naddressing: kafka\nproducer: {address: a}", fields: []string{"addressing"}},
		{desc: "credit", yaml: "url: amqp://h\nconsumer: {queue: q, credit: 0}", fields: []string{"consumer.credit"}},
		{desc: "timeouts", yaml: "url: amqp://h\nproducer: {topic: a}\npublishTimeout: 0s\nconnectTimeout: 0s\nidleTimeout: 0s\nreconnect: {initialDelay: 2s, maxDelay: 1s}",
			fields: []string{"publishTimeout", "connectTimeout", "idleTimeout", "reconnect.maxDelay"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c, err := decode(t, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if got := plugintest.FieldsOf(c.Validate()); !slices.Equal(got, tc.fields) {
				t.Fatalf("fields with problems %q, want %q (%v)", got, tc.fields, c.Validate())
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	topics := &Config{Consumer: Consumer{Topics: []string{"a/>"}}}
	if c := topics.Capabilities(); !c.Subscribe || c.Publish || c.Supports(mediation.QoSAtLeastOnce) || c.QoSNote == "" || c.Replay {
		t.Errorf("topics: %+v; want subscribe, no at-least-once, a note saying why", c)
	}
	queue := &Config{Consumer: Consumer{Queue: "q"}, Producer: Producer{Topic: "a"}}
	if c := queue.Capabilities(); !c.Subscribe || !c.Publish || !c.Supports(mediation.QoSAtLeastOnce) {
		t.Errorf("queue: %+v; want publish, subscribe and at-least-once", c)
	}
}

// The URL never shows in an error: it may hold a password.
func TestURLErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"amqp://u:s3cret@h:0", "amqq://u:s3cret@h", "amqp://u:s3cret@h/path"} {
		c := DefaultConfig()
		c.URL, c.Producer.Topic = u, "a"
		err := c.Validate()
		if err == nil {
			t.Fatalf("%s accepted", u)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add("url: amqps://u:p@h:5671\nvpn: v\nconsumer: {topics: [a/*/c, b/>]}\nproducer: {topic: a/b}\n")
	f.Add("url: amqp://h\naddressing: rabbitmq\nconsumer: {queue: q, credit: 3}\nproducer: {address: /queue/q, deliveryMode: direct}\n")
	f.Add("url: amqp://h\nreconnect: {initialDelay: 1ms, maxDelay: 1h}\nconsumer: {address: x}\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := decode(t, src)
		if err != nil {
			return
		}
		err = cfg.Validate()
		if err == nil {
			// A valid configuration has something to do, sane limits, and
			// addresses New can use.
			caps := cfg.Capabilities()
			if !caps.Publish && !caps.Subscribe {
				t.Fatalf("valid but does nothing: %+v", cfg)
			}
			if cfg.Consumer.Credit < 1 || cfg.Consumer.Credit > maxCredit || cfg.Reconnect.MaxDelay < cfg.Reconnect.InitialDelay {
				t.Fatalf("valid with bad limits: %+v", cfg)
			}
			if src, _ := cfg.sources(); caps.Subscribe && len(src) == 0 {
				t.Fatalf("subscribes but has no source: %+v", cfg)
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
