package solace

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// Duration is a Go duration written as text in the configuration ("10s",
// "250ms").
type Duration = plugins.Duration

// Config is the configuration of a solace endpoint: the group's
// sharedConfiguration with the endpoint's own configuration on top. Keys are
// those of DESIGN.md (contract) plus the knobs documented below.
type Config struct {
	// URL is the broker's AMQP 1.0 listener: amqp://host:5672, or
	// amqps://host:5671 for TLS (see tls). Credentials in the URL are used
	// when username is not set. Required.
	URL string `yaml:"url"`
	// VPN is the Solace Message VPN, sent as the hostname of the AMQP open
	// frame, which is how Solace picks the VPN of a connection. Empty sends
	// the URL's host, as any AMQP client does. (RabbitMQ reads a hostname of
	// the form "vhost:<name>" as its virtual host, and any other as the
	// default one.)
	VPN string `yaml:"vpn"`
	// Username and Password authenticate with SASL PLAIN; without a username
	// (here or in the URL) the connection uses SASL ANONYMOUS. Write the
	// password as ${VAR} to keep it out of the file.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS configures amqps:// connections.
	TLS TLS `yaml:"tls"`
	// Addressing says how topics and queues become AMQP addresses: solace
	// (topic://a/b/>, queue://q, the Solace PubSub+ convention) or rabbitmq
	// (the address format of RabbitMQ 3.x's AMQP 1.0 plugin: /topic/a.b.*.#,
	// /queue/q), which lets the same API run against RabbitMQ, as the tests
	// do. consumer.address and producer.address are passed as is either
	// way. Default solace.
	Addressing string `yaml:"addressing"`
	// Consumer says what subscriptions read.
	Consumer Consumer `yaml:"consumer"`
	// Producer says where publishes go.
	Producer Producer `yaml:"producer"`
	// PublishTimeout bounds a publish: a broker that has not settled the
	// message in time (down, unreachable, slow) fails it with "broker
	// unavailable" (HTTP 503). Default 10s.
	PublishTimeout Duration `yaml:"publishTimeout"`
	// ConnectTimeout bounds one connection attempt (TCP, TLS, SASL and the
	// AMQP open), and how long opening a subscription waits for the broker
	// before failing with "broker unavailable". Default 10s.
	ConnectTimeout Duration `yaml:"connectTimeout"`
	// IdleTimeout is how long a connection may stay silent before it is
	// deemed dead and redialed; the broker is asked to send something at
	// least twice as often. Default 30s.
	IdleTimeout Duration `yaml:"idleTimeout"`
	// Reconnect paces the attempts to reconnect after a connection was lost
	// or refused.
	Reconnect Reconnect `yaml:"reconnect"`
}

// TLS configures the TLS of amqps:// connections. The system roots verify
// the broker unless caFile is set.
type TLS struct {
	// CAFile is a PEM file of the certificates that may sign the broker's.
	CAFile string `yaml:"caFile"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that ask for one.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// ServerName is the name the broker's certificate must carry. Default:
	// the URL's host (never the VPN, which travels in the AMQP open frame).
	ServerName string `yaml:"serverName"`
	// InsecureSkipVerify accepts any certificate: for tests only.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// Consumer configures the subscribe side: exactly one of Topics, Queue and
// Address, or none on a publish-only endpoint.
type Consumer struct {
	// Topics are Solace topic subscriptions, such as "orders/*/paid" or
	// "orders/>": '*' at the end of a level matches one level (or, after a
	// prefix, the rest of the level), and '>' as the last level matches one
	// or more levels. Each client gets subscriptions of its own that live
	// as long as it is connected: what is published while it is away is not
	// kept for it, so topics offer at most once. For at-least-once, add the
	// subscriptions to a Solace queue and set queue instead.
	Topics []string `yaml:"topics"`
	// Queue is a durable queue every subscription consumes from; they
	// compete for its messages, and a message is removed only once a
	// client acknowledged it.
	Queue string `yaml:"queue"`
	// Address is an AMQP source address passed to the broker as is, for
	// what topics and queue cannot say. It is treated like a queue.
	Address string `yaml:"address"`
	// Credit is how many messages the broker may send a subscription ahead
	// of their settlement (AMQP link credit, topped up as messages are
	// settled): it bounds what a subscription holds in memory and what is
	// redelivered when it is lost. 1 to 10000. Default 256.
	Credit int `yaml:"credit"`
}

// Producer configures the publish side: one of Topic and Address.
type Producer struct {
	// Topic is the Solace topic every message is published to, without
	// wildcards, such as "orders/created". A message cannot choose another:
	// clients only reach what the API exposes.
	Topic string `yaml:"topic"`
	// Address is an AMQP target address passed to the broker as is.
	Address string `yaml:"address"`
	// DeliveryMode is persistent or direct. persistent (default): messages
	// are durable and sent unsettled, and a publish returns once the broker
	// accepted the message (at least once). direct: messages are not
	// durable and sent pre-settled, and a publish returns once the message
	// was written to the connection, without a broker confirmation (at most
	// once, lowest latency).
	DeliveryMode string `yaml:"deliveryMode"`
}

// Reconnect is the exponential back-off between connection attempts.
type Reconnect struct {
	// InitialDelay is the wait before the first attempt after a loss,
	// doubled after every failed attempt. Default 500ms.
	InitialDelay Duration `yaml:"initialDelay"`
	// MaxDelay caps the wait between attempts. Default 30s.
	MaxDelay Duration `yaml:"maxDelay"`
}

// Addressing conventions and delivery modes accepted by the configuration.
const (
	AddressingSolace   = "solace"
	AddressingRabbitMQ = "rabbitmq"

	DeliveryPersistent = "persistent"
	DeliveryDirect     = "direct"
)

// maxCredit bounds consumer.credit: more would only hold more in memory.
const maxCredit = 10000

// maxAddress is the longest address accepted (Solace topics allow 250
// bytes; queue names 200).
const maxAddress = 1024

// DefaultConfig returns a configuration with every default set; the decoder
// fills in what the file says on top of it.
func DefaultConfig() *Config {
	return &Config{
		Addressing:     AddressingSolace,
		Consumer:       Consumer{Credit: 256},
		Producer:       Producer{DeliveryMode: DeliveryPersistent},
		PublishTimeout: Duration(10 * time.Second),
		ConnectTimeout: Duration(10 * time.Second),
		IdleTimeout:    Duration(30 * time.Second),
		Reconnect: Reconnect{
			InitialDelay: Duration(500 * time.Millisecond),
			MaxDelay:     Duration(30 * time.Second),
		},
	}
}

// Capabilities says what an endpoint so configured can do. AMQP 1.0 has no
// positions to replay from. Topic subscriptions live only while their client
// is connected, so they cannot promise at least once; a queue (or an
// address, which may name one) can.
func (c *Config) Capabilities() mediation.Capabilities {
	caps := mediation.Capabilities{
		Publish:      c.publishes(),
		Subscribe:    c.subscribes(),
		QoS:          append([]mediation.QoS(nil), mediation.AllQoS...),
		DefaultStart: mediation.StartLatest,
	}
	if len(c.Consumer.Topics) > 0 {
		caps.QoS = []mediation.QoS{mediation.QoSNone, mediation.QoSAuto, mediation.QoSAtMostOnce}
		caps.QoSNote = "solace consumer.topics are subscriptions that live only while a client is connected; " +
			"for at-least-once, subscribe a Solace queue to these topics and set consumer.queue"
	}
	return caps
}

func (c *Config) publishes() bool { return c.Producer.Topic != "" || c.Producer.Address != "" }
func (c *Config) subscribes() bool {
	return len(c.Consumer.Topics) > 0 || c.Consumer.Queue != "" || c.Consumer.Address != ""
}

// Validate checks the configuration and returns every problem found, each a
// *plugins.FieldError naming its key.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf(field, format, args...))
	}

	if c.URL == "" {
		add("url", "required, such as amqps://broker.example.com:5671")
	} else if _, err := parseURL(c.URL); err != nil {
		add("url", "%v", err)
	}
	if err := checkText(c.VPN, 256); err != nil {
		add("vpn", "%v", err)
	}
	if c.Password != "" && c.Username == "" {
		add("password", "set username too")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", "certFile and keyFile go together")
	}
	if c.Addressing != AddressingSolace && c.Addressing != AddressingRabbitMQ {
		add("addressing", "%q is not solace or rabbitmq", c.Addressing)
	}
	if !c.subscribes() && !c.publishes() {
		add("", "nothing to do: set producer.topic or producer.address to publish, consumer.topics, consumer.queue or consumer.address to subscribe")
	}
	if c.PublishTimeout <= 0 {
		add("publishTimeout", "must be positive, such as 10s")
	}
	if c.ConnectTimeout <= 0 {
		add("connectTimeout", "must be positive, such as 10s")
	}
	if c.IdleTimeout <= 0 {
		add("idleTimeout", "must be positive, such as 30s")
	}
	if c.Reconnect.InitialDelay <= 0 {
		add("reconnect.initialDelay", "must be positive, such as 500ms")
	}
	if c.Reconnect.MaxDelay < c.Reconnect.InitialDelay {
		add("reconnect.maxDelay", "must be at least reconnect.initialDelay (%v)", c.Reconnect.InitialDelay)
	}

	cons := &c.Consumer
	set := 0
	for _, s := range []bool{len(cons.Topics) > 0, cons.Queue != "", cons.Address != ""} {
		if s {
			set++
		}
	}
	if set > 1 {
		add("consumer", "set one of topics, queue and address")
	}
	if _, err := c.sources(); err != nil {
		errs = append(errs, err)
	}
	if cons.Credit < 1 || cons.Credit > maxCredit {
		add("consumer.credit", "must be between 1 and %d, got %d", maxCredit, cons.Credit)
	}

	prod := &c.Producer
	if prod.Topic != "" && prod.Address != "" {
		add("producer", "set one of topic and address")
	}
	if _, err := c.target(); err != nil {
		errs = append(errs, err)
	}
	if prod.DeliveryMode != DeliveryPersistent && prod.DeliveryMode != DeliveryDirect {
		add("producer.deliveryMode", "%q is not persistent or direct", prod.DeliveryMode)
	}
	return errors.Join(errs...)
}

// sources returns the AMQP source addresses subscriptions read, or a
// *plugins.FieldError.
func (c *Config) sources() ([]string, error) {
	cons := &c.Consumer
	switch {
	case len(cons.Topics) > 0:
		out := make([]string, 0, len(cons.Topics))
		for i, t := range cons.Topics {
			a, err := TopicAddress(c.Addressing, t, true)
			if err != nil {
				return nil, plugins.Errorf("consumer.topics["+strconv.Itoa(i)+"]", "%v", err)
			}
			out = append(out, a)
		}
		return out, nil
	case cons.Queue != "":
		a, err := QueueAddress(c.Addressing, cons.Queue)
		if err != nil {
			return nil, plugins.Errorf("consumer.queue", "%v", err)
		}
		return []string{a}, nil
	case cons.Address != "":
		if err := checkText(cons.Address, maxAddress); err != nil {
			return nil, plugins.Errorf("consumer.address", "%v", err)
		}
		return []string{cons.Address}, nil
	}
	return nil, nil
}

// target returns the AMQP target address publishes go to ("" when the
// endpoint does not publish), or a *plugins.FieldError.
func (c *Config) target() (string, error) {
	p := &c.Producer
	switch {
	case p.Topic != "":
		a, err := TopicAddress(c.Addressing, p.Topic, false)
		if err != nil {
			return "", plugins.Errorf("producer.topic", "%v", err)
		}
		return a, nil
	case p.Address != "":
		if err := checkText(p.Address, maxAddress); err != nil {
			return "", plugins.Errorf("producer.address", "%v", err)
		}
		return p.Address, nil
	}
	return "", nil
}

// brokerURL is the parsed url.
type brokerURL struct {
	tls        bool
	host       string // without the port
	addr       string // host:port
	user, pass string // from the URL's user info
}

// parseURL checks an amqp:// or amqps:// URL. Its errors never repeat the
// URL, which may carry a password.
func parseURL(s string) (brokerURL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return brokerURL{}, errors.New("not a URL such as amqps://broker.example.com:5671 (percent-encode reserved characters in a password)")
	}
	var b brokerURL
	port := "5672"
	switch u.Scheme {
	case "amqp":
	case "amqps":
		b.tls, port = true, "5671"
	default:
		return brokerURL{}, errors.New("the scheme must be amqp or amqps")
	}
	if u.Hostname() == "" {
		return brokerURL{}, errors.New("missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return brokerURL{}, errors.New("the port must be a number from 1 to 65535")
		}
		port = p
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return brokerURL{}, errors.New("no path or query: the VPN goes in vpn, TLS settings in tls")
	}
	b.host = u.Hostname()
	b.addr = net.JoinHostPort(b.host, port)
	if u.User != nil {
		b.user = u.User.Username()
		b.pass, _ = u.User.Password()
	}
	return b, nil
}

// checkText refuses what no broker takes in a name: invalid UTF-8, control
// characters, and more than max bytes. "" passes.
func checkText(s string, max int) error {
	switch {
	case len(s) > max:
		return errors.New("longer than " + strconv.Itoa(max) + " bytes")
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("must not contain control characters")
	}
	return nil
}
