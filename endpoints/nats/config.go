package nats

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// Config is the configuration of a nats endpoint: the group's
// sharedConfiguration with the endpoint's own configuration on top. Keys are
// those of DESIGN.md (contract) plus the tuning knobs documented below.
type Config struct {
	// Servers are the NATS server URLs (nats://127.0.0.1:4222, tls://...,
	// or host:port); the client picks one and fails over to the others.
	// Required.
	Servers []string `yaml:"servers"`
	// Consumer says what subscriptions read: a core NATS subject, or a
	// JetStream stream when consumer.stream is set.
	Consumer Consumer `yaml:"consumer"`
	// Producer says where publishes go.
	Producer Producer `yaml:"producer"`
	// Credentials authenticate the connection; at most one kind.
	Credentials Credentials `yaml:"credentials"`
	// PublishTimeout bounds a publish: when the server has not confirmed it
	// in time (the round trip for core NATS, the PubAck for JetStream) the
	// publish fails with "broker unavailable" (HTTP 503). Default 10s.
	PublishTimeout Duration `yaml:"publishTimeout"`
	// ConnectTimeout bounds dialing one server. Default 5s.
	ConnectTimeout Duration `yaml:"connectTimeout"`
	// RequestTimeout bounds the JetStream API requests made when a
	// subscription opens or recovers (stream info, consumer creation): a
	// server that does not answer in time fails the subscription with
	// "broker unavailable". Default 10s.
	RequestTimeout Duration `yaml:"requestTimeout"`
	// ReconnectWait is the pause between reconnection attempts to the same
	// server. The client reconnects forever; subscriptions survive it.
	// Default 2s.
	ReconnectWait Duration `yaml:"reconnectWait"`
}

// Consumer configures the subscribe side.
type Consumer struct {
	// Subject is what subscriptions read. Without stream it is the core
	// NATS subject (wildcards allowed) and is required to subscribe; with
	// stream it filters the stream's messages (empty: all of them).
	Subject string `yaml:"subject"`
	// Stream makes subscriptions read the JetStream stream of this name:
	// they can then resume from a cursor (the stream sequence), start at
	// the earliest message, and be acknowledged.
	Stream string `yaml:"stream"`
	// Durable prefixes the durable consumers of group subscriptions
	// (webhook subscriptions, competing consumers): the consumer is named
	// "<durable>_<group>", or just after the group when durable is empty,
	// so that two subscriptions never share acknowledgements. JetStream
	// only.
	Durable string `yaml:"durable"`
	// QueueGroup makes every core NATS subscription of the endpoint join
	// this queue group, so that gateways sharing it split the messages. A
	// group subscription joins the queue group named after its group
	// instead. Core NATS only.
	QueueGroup string `yaml:"queueGroup"`
	// AutoOffsetReset is where a client without a cursor starts: earliest
	// (the stream's first message) or latest (only new messages). A durable
	// consumer starts there when it is created. earliest needs stream.
	// Default latest.
	AutoOffsetReset string `yaml:"autoOffsetReset"`
	// AckWait is how long JetStream waits for the acknowledgement of a
	// message delivered to a group subscription before it redelivers it.
	// Default 30s.
	AckWait Duration `yaml:"ackWait"`
	// BufferMessages bounds the messages one subscription holds that it
	// received from NATS and has not handed on: the pending limit of a core
	// subscription (NATS drops what a slow reader cannot take, as core NATS
	// does) and the batch of a JetStream fetch. Default 512.
	BufferMessages int `yaml:"bufferMessages"`
	// BufferBytes bounds the same in bytes. A JetStream fetch always allows
	// at least one message of the server's maximum payload. Default 8 MiB.
	BufferBytes int `yaml:"bufferBytes"`
}

// Producer configures the publish side. Publishing is possible when Subject
// is set.
type Producer struct {
	// Subject receives every published message. A message cannot choose
	// another subject: clients only reach what the API exposes. It must not
	// contain wildcards.
	Subject string `yaml:"subject"`
	// Stream makes publishes go through JetStream: a publish returns once
	// the stream of this name stored the message (its PubAck), and fails
	// when subject belongs to another stream. Default consumer.stream; with
	// neither, publishes are core NATS, confirmed by a round trip to the
	// server.
	Stream string `yaml:"stream"`
}

// Credentials authenticate the gateway to NATS: user and password, a token,
// or a credentials file (JWT and NKey seed, as nsc writes it). Write secrets
// as ${VAR} to keep them out of the file.
type Credentials struct {
	// User is the user name; it needs Password.
	User string `yaml:"user"`
	// Password is the user's password.
	Password string `yaml:"password"`
	// Token is an authentication token.
	Token string `yaml:"token"`
	// CredsFile is the path of a .creds file.
	CredsFile string `yaml:"credsFile"`
}

// Enumerations accepted by the configuration.
const (
	OffsetEarliest = "earliest"
	OffsetLatest   = "latest"
)

// maxStreamName is the longest stream name a cursor can carry.
const maxStreamName = 249

// DefaultConfig returns a configuration with every default set; the decoder
// fills in what the file says on top of it.
func DefaultConfig() *Config {
	return &Config{
		PublishTimeout: Duration(10 * time.Second),
		ConnectTimeout: Duration(5 * time.Second),
		RequestTimeout: Duration(10 * time.Second),
		ReconnectWait:  Duration(2 * time.Second),
		Consumer: Consumer{
			AutoOffsetReset: OffsetLatest,
			AckWait:         Duration(30 * time.Second),
			BufferMessages:  512,
			BufferBytes:     8 << 20,
		},
	}
}

// JetStream reports whether subscriptions read a JetStream stream.
func (c *Config) JetStream() bool { return c.Consumer.Stream != "" }

// publishStream is the stream publishes must land in; "" for core NATS.
func (c *Config) publishStream() string {
	if c.Producer.Stream != "" {
		return c.Producer.Stream
	}
	return c.Consumer.Stream
}

// coreQoS are the levels core NATS honours: it delivers what arrives and
// cannot deliver a message again, so nothing waits for an acknowledgement.
var coreQoS = []mediation.QoS{mediation.QoSNone, mediation.QoSAuto, mediation.QoSAtMostOnce}

// Capabilities says what an endpoint so configured can do. Core NATS cannot
// replay nor redeliver, so it offers neither cursors nor at-least-once;
// JetStream offers both.
func (c *Config) Capabilities() mediation.Capabilities {
	caps := mediation.Capabilities{
		Publish:      c.Producer.Subject != "",
		Subscribe:    c.Consumer.Subject != "" || c.JetStream(),
		DefaultStart: mediation.StartLatest,
	}
	if !c.JetStream() {
		caps.QoS = append([]mediation.QoS(nil), coreQoS...)
		caps.QoSNote = "core NATS cannot deliver a message again; set consumer.stream to read a JetStream stream"
		return caps
	}
	caps.Replay = true
	caps.QoS = append([]mediation.QoS(nil), mediation.AllQoS...)
	if c.Consumer.AutoOffsetReset == OffsetEarliest {
		caps.DefaultStart = mediation.StartEarliest
	}
	return caps
}

// Validate checks the configuration and returns every problem found, each a
// *plugins.FieldError naming its key.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf(field, format, args...))
	}
	if len(c.Servers) == 0 {
		add("servers", "at least one server URL is required, such as nats://127.0.0.1:4222")
	}
	for _, s := range c.Servers {
		if err := checkServer(s); err != nil {
			add("servers", "%q: %v", s, err)
		}
	}
	if c.Producer.Subject == "" && c.Consumer.Subject == "" && c.Consumer.Stream == "" {
		add("", "nothing to do: set producer.subject to publish, consumer.subject or consumer.stream to subscribe")
	}
	for _, d := range []struct {
		field string
		v     Duration
		min   time.Duration
	}{
		{"publishTimeout", c.PublishTimeout, 10 * time.Millisecond},
		{"connectTimeout", c.ConnectTimeout, 10 * time.Millisecond},
		{"requestTimeout", c.RequestTimeout, 10 * time.Millisecond},
		{"reconnectWait", c.ReconnectWait, 10 * time.Millisecond},
	} {
		if time.Duration(d.v) < d.min {
			add(d.field, "must be at least %v", d.min)
		}
	}
	errs = append(errs, c.Consumer.validate()...)
	errs = append(errs, c.Producer.validate()...)
	errs = append(errs, c.Credentials.validate()...)
	return errors.Join(errs...)
}

func (c *Consumer) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf("consumer."+field, format, args...))
	}
	if c.Subject != "" {
		if err := checkSubject(c.Subject, true); err != nil {
			add("subject", "%q: %v", c.Subject, err)
		}
	}
	if c.Stream != "" {
		if err := checkName(c.Stream); err != nil {
			add("stream", "%q: %v", c.Stream, err)
		}
	}
	if c.Durable != "" {
		if err := checkName(c.Durable); err != nil {
			add("durable", "%q: %v", c.Durable, err)
		} else if c.Stream == "" {
			add("durable", "durable consumers are JetStream's: set consumer.stream too")
		}
	}
	if c.QueueGroup != "" {
		if strings.ContainsFunc(c.QueueGroup, isSpaceOrControl) {
			add("queueGroup", "%q: must not contain spaces or control characters", c.QueueGroup)
		} else if c.Stream != "" {
			add("queueGroup", "applies to core NATS only; with consumer.stream, group subscriptions use durable consumers (consumer.durable)")
		}
	}
	switch c.AutoOffsetReset {
	case OffsetLatest:
	case OffsetEarliest:
		if c.Stream == "" {
			add("autoOffsetReset", "earliest needs consumer.stream: core NATS keeps no messages to start from")
		}
	default:
		add("autoOffsetReset", "%q is not earliest or latest", c.AutoOffsetReset)
	}
	if c.AckWait < Duration(time.Second) {
		add("ackWait", "must be at least 1s")
	}
	if c.BufferMessages < 1 || c.BufferMessages > 1_000_000 {
		add("bufferMessages", "must be between 1 and 1000000")
	}
	if c.BufferBytes < 1024 || c.BufferBytes > 1<<30 {
		add("bufferBytes", "must be between 1024 and 1073741824")
	}
	return errs
}

func (p *Producer) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf("producer."+field, format, args...))
	}
	if p.Subject != "" {
		if err := checkSubject(p.Subject, false); err != nil {
			add("subject", "%q: %v", p.Subject, err)
		}
	}
	if p.Stream != "" {
		if err := checkName(p.Stream); err != nil {
			add("stream", "%q: %v", p.Stream, err)
		}
	}
	return errs
}

func (c *Credentials) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		if field != "" {
			field = "." + field
		}
		errs = append(errs, plugins.Errorf("credentials"+field, format, args...))
	}
	kinds := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.CredsFile != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		add("", "set one of user and password, token, or credsFile")
	}
	if c.Password != "" && c.User == "" {
		add("user", "required with password")
	}
	if c.User != "" && c.Password == "" {
		add("password", "required with user")
	}
	return errs
}

// checkServer accepts a NATS URL or host:port.
func checkServer(s string) error {
	if s == "" || strings.ContainsFunc(s, isSpaceOrControl) || strings.Contains(s, ",") {
		return errors.New("not a server URL such as nats://127.0.0.1:4222")
	}
	scheme, rest, found := strings.Cut(s, "://")
	if !found {
		rest = s
	} else {
		switch scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("scheme %q is not nats, tls, ws or wss", scheme)
		}
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:] // user info
	}
	if rest == "" || rest[0] == ':' || rest[0] == '/' {
		return errors.New("missing host")
	}
	return nil
}

// checkSubject applies NATS's rules: dot-separated non-empty tokens without
// spaces; with wildcards, "*" is a whole token and ">" the whole last one.
func checkSubject(s string, wildcards bool) error {
	if s == "" {
		return errors.New("empty subject")
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if strings.ContainsFunc(s, isSpaceOrControl) {
		return errors.New("must not contain spaces or control characters")
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return errors.New("empty token (a leading, trailing or doubled '.')")
		case t == "*" || t == ">":
			if !wildcards {
				return errors.New("wildcards are not allowed here: messages are published to one subject")
			}
			if t == ">" && i != len(tokens)-1 {
				return errors.New("'>' must be the last token")
			}
		case strings.ContainsAny(t, "*>"):
			return fmt.Errorf("token %q: '*' and '>' must be whole tokens", t)
		}
	}
	return nil
}

// checkName applies JetStream's rules for stream and consumer names.
func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > maxStreamName:
		return fmt.Errorf("longer than %d bytes", maxStreamName)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.ContainsAny(s, ".*>/\\") || strings.ContainsFunc(s, isSpaceOrControl):
		return errors.New(`must not contain '.', '*', '>', '/', '\', spaces or control characters`)
	}
	return nil
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// Interface guards.
var _ plugins.Validator = (*Config)(nil)
