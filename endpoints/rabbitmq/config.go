package rabbitmq

import (
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// Config is the configuration of a rabbitmq endpoint: the group's
// sharedConfiguration with the endpoint's own configuration on top. Keys are
// those of DESIGN.md (contract) plus the knobs documented below.
type Config struct {
	// URL is the broker address: amqp://user:password@host:5672/vhost, or
	// amqps:// for TLS (the system roots verify the broker; a CA, a client
	// certificate and a server name go in the query as cacertfile,
	// certfile, keyfile and server_name_indication). The query also takes
	// heartbeat (seconds, default 10), which bounds how long a dead broker
	// goes unnoticed. Write the password as ${VAR} to keep it out of the
	// file. Required.
	URL string `yaml:"url"`
	// Consumer says what subscriptions read.
	Consumer Consumer `yaml:"consumer"`
	// Producer says where publishes go.
	Producer Producer `yaml:"producer"`
	// Declare makes the gateway declare what it uses: the exchanges (durable,
	// of the configured type) and consumer.queue (durable), each time it
	// connects. When false they must exist; the gateway only checks that
	// they do. Queues per subscription are always declared. Default true.
	Declare bool `yaml:"declare"`
	// PublishTimeout bounds a publish: a broker that has not confirmed the
	// message in time (down, unreachable, blocked by a resource alarm) fails
	// it with "broker unavailable" (HTTP 503). Default 10s.
	PublishTimeout Duration `yaml:"publishTimeout"`
	// ConnectTimeout bounds one connection attempt (TCP, TLS and the AMQP
	// handshake), and how long opening a subscription waits for the broker
	// and its declarations before failing with "broker unavailable".
	// Default 10s.
	ConnectTimeout Duration `yaml:"connectTimeout"`
	// Reconnect paces the attempts to reconnect after a connection was lost
	// or refused.
	Reconnect Reconnect `yaml:"reconnect"`
}

// Consumer configures the subscribe side. Subscriptions are possible when
// Exchange or Queue is set.
//
// Without Queue, every subscription without a group gets a queue of its
// own (exclusive, auto-delete, named by the broker) bound to Exchange with
// RoutingKey, and a subscription with a group consumes from the durable
// queue "sluice.<group>", so that the gateways serving that group split its
// messages. With Queue, every subscription consumes from that durable
// queue, bound to Exchange when one is set: they compete for its messages.
type Consumer struct {
	// Exchange is the exchange the subscription queues are bound to.
	Exchange string `yaml:"exchange"`
	// ExchangeType is the type Exchange is declared with: direct, fanout,
	// topic or headers. Default topic.
	ExchangeType string `yaml:"exchangeType"`
	// RoutingKey is the binding key: a topic pattern ("orders.*.paid",
	// "#") for a topic exchange, the exact key for a direct one; fanout and
	// headers exchanges ignore it (a headers binding without arguments
	// matches every message). Default "#".
	RoutingKey string `yaml:"routingKey"`
	// Queue is a durable queue every subscription consumes from, instead of
	// a queue per subscription.
	Queue string `yaml:"queue"`
	// Prefetch is how many messages the broker sends a subscription ahead of
	// its acknowledgements (basic.qos): it bounds what a subscription holds
	// in memory and what is redelivered when it is lost. 1 to 65535.
	// Default 256.
	Prefetch int `yaml:"prefetch"`
}

// Producer configures the publish side. Publishing is possible when Exchange
// or RoutingKey is set: with Exchange "" and a RoutingKey, messages go
// through the broker's default exchange straight to the queue named
// RoutingKey.
type Producer struct {
	// Exchange receives every published message. A message cannot choose
	// another exchange or routing key: clients only reach what the API
	// exposes.
	Exchange string `yaml:"exchange"`
	// ExchangeType is the type Exchange is declared with when declare is on:
	// direct, fanout, topic or headers. Default consumer.exchangeType.
	ExchangeType string `yaml:"exchangeType"`
	// RoutingKey is the routing key of every published message.
	RoutingKey string `yaml:"routingKey"`
	// Persistent marks messages persistent (delivery mode 2), so that a
	// durable queue keeps them across a broker restart. Default true.
	Persistent bool `yaml:"persistent"`
	// Mandatory makes a publish fail when no queue is bound to receive the
	// message, instead of the broker dropping it silently. Default false.
	Mandatory bool `yaml:"mandatory"`
}

// Reconnect is the exponential back-off between connection attempts.
type Reconnect struct {
	// InitialDelay is the wait before the first attempt after a loss, doubled
	// after every failed attempt. Default 500ms.
	InitialDelay Duration `yaml:"initialDelay"`
	// MaxDelay caps the wait between attempts. Default 30s.
	MaxDelay Duration `yaml:"maxDelay"`
}

// Exchange types accepted by the configuration.
const (
	ExchangeDirect  = amqp.ExchangeDirect
	ExchangeFanout  = amqp.ExchangeFanout
	ExchangeTopic   = amqp.ExchangeTopic
	ExchangeHeaders = amqp.ExchangeHeaders
)

var exchangeTypes = []string{ExchangeDirect, ExchangeFanout, ExchangeTopic, ExchangeHeaders}

// Limits of the AMQP 0-9-1 wire format.
const (
	maxName     = 255 // short strings: exchange, queue and routing key names
	maxPrefetch = 1<<16 - 1
)

// DefaultConfig returns a configuration with every default set; the decoder
// fills in what the file says on top of it.
func DefaultConfig() *Config {
	return &Config{
		Consumer: Consumer{
			ExchangeType: ExchangeTopic,
			RoutingKey:   "#",
			Prefetch:     256,
		},
		Producer:       Producer{Persistent: true},
		Declare:        true,
		PublishTimeout: Duration(10 * time.Second),
		ConnectTimeout: Duration(10 * time.Second),
		Reconnect: Reconnect{
			InitialDelay: Duration(500 * time.Millisecond),
			MaxDelay:     Duration(30 * time.Second),
		},
	}
}

// Capabilities says what an endpoint so configured can do. RabbitMQ cannot
// replay: every subscription starts with the messages that arrive after it
// opened (or, on a durable queue, with what the queue holds).
func (c *Config) Capabilities() mediation.Capabilities {
	return mediation.Capabilities{
		Publish:      c.publishes(),
		Subscribe:    c.subscribes(),
		Replay:       false,
		QoS:          append([]mediation.QoS(nil), mediation.AllQoS...),
		DefaultStart: mediation.StartLatest,
	}
}

func (c *Config) publishes() bool  { return c.Producer.Exchange != "" || c.Producer.RoutingKey != "" }
func (c *Config) subscribes() bool { return c.Consumer.Exchange != "" || c.Consumer.Queue != "" }

// producerExchangeType is the type the producer's exchange is declared with.
func (c *Config) producerExchangeType() string {
	if c.Producer.ExchangeType != "" {
		return c.Producer.ExchangeType
	}
	return c.Consumer.ExchangeType
}

// Validate checks the configuration and returns every problem found, each a
// *plugins.FieldError naming its key.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf(field, format, args...))
	}

	if c.URL == "" {
		add("url", "required, such as amqp://guest:guest@127.0.0.1:5672/")
	} else if err := checkURL(c.URL); err != nil {
		add("url", "%v", err)
	}
	if !c.subscribes() && !c.publishes() {
		add("", "nothing to do: set producer.exchange or producer.routingKey to publish, consumer.exchange or consumer.queue to subscribe")
	}
	if c.PublishTimeout <= 0 {
		add("publishTimeout", "must be positive, such as 10s")
	}
	if c.ConnectTimeout <= 0 {
		add("connectTimeout", "must be positive, such as 10s")
	}
	if c.Reconnect.InitialDelay <= 0 {
		add("reconnect.initialDelay", "must be positive, such as 500ms")
	}
	if c.Reconnect.MaxDelay < c.Reconnect.InitialDelay {
		add("reconnect.maxDelay", "must be at least reconnect.initialDelay (%v)", c.Reconnect.InitialDelay)
	}
	errs = append(errs, c.Consumer.validate(c.Declare)...)
	errs = append(errs, c.Producer.validate()...)
	return errors.Join(errs...)
}

func (c *Consumer) validate(declare bool) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf("consumer."+field, format, args...))
	}
	if err := checkName(c.Exchange); err != nil {
		add("exchange", "%v", err)
	}
	if !slices.Contains(exchangeTypes, c.ExchangeType) {
		add("exchangeType", "%q is not one of %s", c.ExchangeType, strings.Join(exchangeTypes, ", "))
	}
	if err := checkName(c.RoutingKey); err != nil {
		add("routingKey", "%v", err)
	}
	if err := checkName(c.Queue); err != nil {
		add("queue", "%v", err)
	} else if isReserved(c.Queue) && declare {
		add("queue", "%q: the amq. prefix is reserved for queues the broker names", c.Queue)
	}
	if c.Prefetch < 1 || c.Prefetch > maxPrefetch {
		add("prefetch", "must be between 1 and %d, got %d", maxPrefetch, c.Prefetch)
	}
	return errs
}

func (p *Producer) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf("producer."+field, format, args...))
	}
	if err := checkName(p.Exchange); err != nil {
		add("exchange", "%v", err)
	}
	if p.ExchangeType != "" && !slices.Contains(exchangeTypes, p.ExchangeType) {
		add("exchangeType", "%q is not one of %s", p.ExchangeType, strings.Join(exchangeTypes, ", "))
	}
	if err := checkName(p.RoutingKey); err != nil {
		add("routingKey", "%v", err)
	}
	return errs
}

// checkURL parses an AMQP URL. Its errors never repeat the URL, which
// carries the password.
func checkURL(s string) error {
	u, err := amqp.ParseURI(s)
	if err != nil {
		return errors.New("not an AMQP URL such as amqp://user:password@host:5672/vhost (percent-encode reserved characters in the password)")
	}
	if u.Host == "" {
		return errors.New("missing host")
	}
	if u.Port < 1 || u.Port > 65535 {
		return errors.New("the port must be a number from 1 to 65535")
	}
	return nil
}

// checkName applies AMQP's limits on exchange, queue and routing key names:
// at most 255 bytes of UTF-8, no control characters. "" passes.
func checkName(s string) error {
	switch {
	case len(s) > maxName:
		return errors.New("longer than 255 bytes")
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.ContainsFunc(s, isControl):
		return errors.New("must not contain control characters")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
