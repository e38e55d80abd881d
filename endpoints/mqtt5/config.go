package mqtt5

import (
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// Config is the configuration of an mqtt5 endpoint: the group's
// sharedConfiguration with the endpoint's own configuration on top. Keys are
// those of DESIGN.md (contract) plus the tuning knobs documented below.
type Config struct {
	// ServerURL is the broker: mqtt://host:1883 (TCP), mqtts://host:8883
	// (TLS; tcp://, tls:// and ssl:// are accepted too), ws://host/mqtt or
	// wss://host/mqtt (MQTT over WebSocket). The port defaults to 1883 for
	// mqtt and 8883 for mqtts. Credentials go in username and password, not
	// in the URL. Required.
	ServerURL string `yaml:"serverUrl"`
	// ClientID is the MQTT client identifier of the publishing connection.
	// Every subscription connects as a client of its own, named
	// "<clientId>-s-<n>", or "<clientId>-g-<group>" for a group subscription,
	// so that no two clients of the gateway collide. Default: "sluice-"
	// plus random characters, chosen when the endpoint starts. Set it (to a
	// value unique per gateway instance, such as "${HOSTNAME}") together with
	// sessionExpiry to get sessions that survive reconnects and restarts.
	// Two connections under one id make the broker drop one for the other,
	// over and over: gateway instances, and endpoints of one group, each
	// need their own clientId.
	ClientID string `yaml:"clientId"`
	// Username is sent in CONNECT when set.
	Username string `yaml:"username"`
	// Password is sent in CONNECT when set; write it as ${VAR} to keep it
	// out of the file.
	Password string `yaml:"password"`
	// SessionExpiry is how long the broker keeps a subscription's session
	// (its subscription and the QoS 1/2 messages not yet acknowledged) after
	// the connection is lost. 0, the default, ends the session with the
	// connection. With a sessionExpiry, an explicit clientId and consumer.qos
	// 1 or 2 the endpoint offers at-least-once (see Capabilities). Whole
	// seconds.
	SessionExpiry Duration `yaml:"sessionExpiry"`
	// KeepAlive is the MQTT keep-alive: how often an idle connection is
	// checked. 0 disables it. Whole seconds, at most 65535s. Default 30s.
	KeepAlive Duration `yaml:"keepAlive"`
	// ConnectTimeout bounds one connection attempt, and how long a new
	// subscription waits for the broker to confirm it before failing with
	// "broker unavailable". Default 10s.
	ConnectTimeout Duration `yaml:"connectTimeout"`
	// PublishTimeout bounds a publish, connecting included: when the broker
	// has not confirmed the message in time the publish fails with "broker
	// unavailable" (HTTP 503). Default 10s.
	PublishTimeout Duration `yaml:"publishTimeout"`
	// MaxReconnectDelay caps the growing pause between reconnection
	// attempts after the broker went away. At least 100ms. Default 10s.
	MaxReconnectDelay Duration `yaml:"maxReconnectDelay"`
	// TLS configures mqtts:// and wss:// connections.
	TLS TLS `yaml:"tls"`
	// Consumer says what subscriptions read.
	Consumer Consumer `yaml:"consumer"`
	// Producer says where publishes go.
	Producer Producer `yaml:"producer"`
}

// Consumer configures the subscribe side. Subscriptions are possible when
// Topic is set.
type Consumer struct {
	// Topic is the topic filter subscribed to; "+" matches one level and "#"
	// (last) any number of levels, as in sensors/+/temperature or
	// devices/#. Shared subscriptions are configured with sharedGroup, not
	// written as $share/... here.
	Topic string `yaml:"topic"`
	// QoS is the maximum MQTT QoS (0, 1 or 2) the broker delivers with.
	// Default 1.
	QoS int `yaml:"qos"`
	// SharedGroup, when set, makes every subscription a shared subscription
	// $share/<sharedGroup>/<topic>: the subscribers of the group, across
	// gateways, split the messages instead of each receiving all of them.
	// A group subscription (a webhook subscription) uses
	// $share/<sharedGroup>.<group>/<topic>, or $share/<group>/<topic>
	// without sharedGroup. No "/", "+" or "#".
	SharedGroup string `yaml:"sharedGroup"`
	// ReceiveMaximum is the MQTT 5 receive maximum of each subscription: how
	// many QoS 1/2 messages the broker sends before the gateway acknowledged
	// them. It bounds what a subscription buffers and makes a slow client
	// pause the broker. 1 to 65535. Default 512.
	ReceiveMaximum int `yaml:"receiveMaximum"`
}

// Producer configures the publish side. Publishing is possible when Topic is
// set.
type Producer struct {
	// Topic receives every published message; no wildcards. A message cannot
	// choose another topic: clients only reach what the API exposes.
	Topic string `yaml:"topic"`
	// QoS is the MQTT QoS (0, 1 or 2) of published messages: a publish
	// returns after PUBACK at 1, PUBCOMP at 2, and once written at 0.
	// Default 1.
	QoS int `yaml:"qos"`
	// Retain asks the broker to keep the last message of the topic for
	// future subscribers.
	Retain bool `yaml:"retain"`
	// MessageExpiry, when set, is the MQTT 5 message expiry interval: the
	// broker discards the message when it could not deliver it in time.
	// Whole seconds. Default: no expiry.
	MessageExpiry Duration `yaml:"messageExpiry"`
}

// TLS configures the TLS connection to the broker.
type TLS struct {
	// CAFile is a PEM bundle of the CAs that sign the broker certificate.
	// Default: the system roots.
	CAFile string `yaml:"caFile"`
	// CertFile is the PEM client certificate for mutual TLS; needs KeyFile.
	CertFile string `yaml:"certFile"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"keyFile"`
	// InsecureSkipVerify accepts any broker certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// Defaults and limits.
const (
	DefaultQoS            = 1
	DefaultReceiveMaximum = 512
	DefaultTimeout        = 10 * time.Second
	DefaultKeepAlive      = 30 * time.Second
	// maxClientID leaves room for the suffixes of subscription clients.
	maxClientID = 200
	// maxInterval is the largest MQTT four-byte interval: 0xFFFFFFFF seconds
	// means "never expires".
	maxInterval = Duration(math.MaxUint32 * time.Second)
)

// DefaultConfig returns a configuration with every default set; the
// decoder fills in what the file says on top of it.
func DefaultConfig() *Config {
	return &Config{
		KeepAlive:         Duration(DefaultKeepAlive),
		ConnectTimeout:    Duration(DefaultTimeout),
		PublishTimeout:    Duration(DefaultTimeout),
		MaxReconnectDelay: Duration(10 * time.Second),
		Consumer:          Consumer{QoS: DefaultQoS, ReceiveMaximum: DefaultReceiveMaximum},
		Producer:          Producer{QoS: DefaultQoS},
	}
}

// Capabilities says what an endpoint so configured can do.
//
// MQTT cannot replay: Replay is false and clients start live (StartLatest).
// The QoS levels none, auto and at-most-once are always offered: the
// gateway acknowledges a message to the broker when a client's stream takes
// it. at-least-once is offered only when consumer.qos is 1 or 2,
// sessionExpiry is above zero and clientId is set explicitly: then a
// subscription acknowledges (PUBACK/PUBREC) a message only after the client
// acknowledged it, and the broker resends what was not acknowledged when the
// subscription reconnects, the gateway or the broker having restarted in
// between included. Without a persistent session, messages unacknowledged
// when a connection drops would be lost, so at-least-once is refused.
func (c *Config) Capabilities() mediation.Capabilities {
	qos := []mediation.QoS{mediation.QoSNone, mediation.QoSAuto, mediation.QoSAtMostOnce}
	note := ""
	if c.atLeastOnce() {
		qos = append(qos, mediation.QoSAtLeastOnce)
	} else {
		note = "the broker resends unacknowledged messages only within a persistent session: set consumer.qos 1 or 2, sessionExpiry and a fixed clientId"
	}
	return mediation.Capabilities{
		Publish:      c.Producer.Topic != "",
		Subscribe:    c.Consumer.Topic != "",
		Replay:       false,
		QoS:          qos,
		QoSNote:      note,
		DefaultStart: mediation.StartLatest,
	}
}

// atLeastOnce reports whether subscriptions keep persistent sessions under
// stable client ids at a QoS the broker acknowledges.
func (c *Config) atLeastOnce() bool {
	return c.Consumer.QoS >= 1 && c.SessionExpiry > 0 && c.ClientID != ""
}

// Validate checks the configuration and returns every problem found, each a
// *plugins.FieldError naming its key.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf(field, format, args...))
	}

	u, err := parseServerURL(c.ServerURL)
	if err != nil {
		add("serverUrl", "%v", err)
	}
	if c.ClientID != "" {
		if err := checkClientID(c.ClientID); err != nil {
			add("clientId", "%v", err)
		}
	}
	if strings.ContainsRune(c.Username, 0) {
		add("username", "must not contain NUL characters")
	}
	if p := intervalProblem(c.SessionExpiry, maxInterval); p != "" {
		add("sessionExpiry", "%s", p)
	}
	if p := intervalProblem(c.KeepAlive, Duration(math.MaxUint16*time.Second)); p != "" {
		add("keepAlive", "%s", p)
	}
	if c.ConnectTimeout <= 0 {
		add("connectTimeout", "must be positive, such as 10s")
	}
	if c.PublishTimeout <= 0 {
		add("publishTimeout", "must be positive, such as 10s")
	}
	if c.MaxReconnectDelay < Duration(100*time.Millisecond) {
		add("maxReconnectDelay", "must be at least 100ms")
	}
	if c.TLS != (TLS{}) && u != nil && !isTLSScheme(u.Scheme) {
		add("tls", "set only with an mqtts:// or wss:// serverUrl (it is %s://)", u.Scheme)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", "certFile and keyFile go together")
	}

	if c.Consumer.Topic == "" && c.Producer.Topic == "" {
		add("", "nothing to do: set producer.topic to publish, consumer.topic to subscribe")
	}
	errs = append(errs, c.Consumer.validate()...)
	errs = append(errs, c.Producer.validate()...)
	return errors.Join(errs...)
}

func (c *Consumer) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf("consumer."+field, format, args...))
	}
	if c.Topic != "" {
		if err := checkFilter(c.Topic); err != nil {
			add("topic", "%q: %v", c.Topic, err)
		}
	}
	if !slices.Contains([]int{0, 1, 2}, c.QoS) {
		add("qos", "%d is not 0, 1 or 2", c.QoS)
	}
	if c.SharedGroup != "" {
		if err := checkShareName(c.SharedGroup); err != nil {
			add("sharedGroup", "%q: %v", c.SharedGroup, err)
		}
	}
	if c.ReceiveMaximum < 1 || c.ReceiveMaximum > math.MaxUint16 {
		add("receiveMaximum", "must be from 1 to 65535")
	}
	return errs
}

func (p *Producer) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf("producer."+field, format, args...))
	}
	if p.Topic != "" {
		if err := checkTopicName(p.Topic); err != nil {
			add("topic", "%q: %v", p.Topic, err)
		}
	}
	if !slices.Contains([]int{0, 1, 2}, p.QoS) {
		add("qos", "%d is not 0, 1 or 2", p.QoS)
	}
	if msg := intervalProblem(p.MessageExpiry, maxInterval); msg != "" {
		add("messageExpiry", "%s", msg)
	}
	return errs
}

// intervalProblem checks a duration sent to the broker as whole seconds.
func intervalProblem(d, limit Duration) string {
	switch {
	case d < 0:
		return "must not be negative"
	case d%Duration(time.Second) != 0:
		return "must be a whole number of seconds, such as 30s or 1h"
	case d > limit:
		return "must be at most " + limit.String()
	}
	return ""
}

// seconds converts a validated interval to MQTT's seconds.
func seconds(d Duration) uint32 { return uint32(time.Duration(d) / time.Second) }
