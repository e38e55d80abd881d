package kafka

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// Config is the configuration of a kafka endpoint: the group's
// sharedConfiguration with the endpoint's own configuration on top. Keys are
// those of DESIGN.md (contract) plus the tuning knobs documented below.
type Config struct {
	// BootstrapServers are the host:port addresses the gateway connects to
	// first; the rest of the cluster is discovered from them. Required.
	BootstrapServers []string `yaml:"bootstrapServers"`
	// ClientID names the gateway in broker logs and quotas. Default "sluice".
	ClientID string `yaml:"clientId"`
	// RequestTimeout bounds the metadata and offset look-ups made when a
	// subscription opens and the offset commits of consumer groups: a
	// cluster that does not answer in time fails the subscription with
	// "broker unavailable" (HTTP 503). Default 10s.
	RequestTimeout Duration `yaml:"requestTimeout"`
	// Consumer says what subscriptions read.
	Consumer Consumer `yaml:"consumer"`
	// Producer says where publishes go.
	Producer Producer `yaml:"producer"`
	// Security configures TLS and SASL.
	Security Security `yaml:"security"`
}

// Consumer configures the subscribe side. Subscriptions are possible when
// Topics or TopicPattern is set.
type Consumer struct {
	// Topics are the topics a subscription reads, every partition of each.
	Topics []string `yaml:"topics"`
	// TopicPattern is a Go regular expression matched against whole topic
	// names, instead of Topics. A client that reads from its own position
	// reads the topics that match when it subscribes; a consumer group also
	// picks up topics created later.
	TopicPattern string `yaml:"topicPattern"`
	// GroupID prefixes the Kafka consumer group of group subscriptions
	// (webhook subscriptions, competing consumers): the group is
	// "<groupId>.<name the gateway asks for>", so that two subscriptions
	// never share offsets. Default "sluice".
	GroupID string `yaml:"groupId"`
	// AutoOffsetReset is where a client without a cursor starts, and where a
	// consumer group starts on partitions it never committed: earliest or
	// latest. Default latest.
	AutoOffsetReset string `yaml:"autoOffsetReset"`
	// FetchMaxBytes bounds what one fetch of a subscription returns, and so
	// the memory a subscription buffers per broker. Default 1 MiB.
	FetchMaxBytes int32 `yaml:"fetchMaxBytes"`
	// CommitInterval is how often a consumer group commits the offsets its
	// clients acknowledged; it also commits on rebalance and on close.
	// Default 1s.
	CommitInterval Duration `yaml:"commitInterval"`
	// SessionTimeout is how long the group coordinator waits for a member
	// that stopped heartbeating before it gives the member's partitions to
	// others. It bounds the pause in a group's deliveries (a webhook
	// subscription's) after a gateway crashed; too short, and a gateway
	// stalled by GC or a busy machine loses its partitions (duplicates,
	// never losses). At least 6s, the brokers' usual minimum. Default 45s,
	// Kafka's.
	SessionTimeout Duration `yaml:"sessionTimeout"`
}

// Producer configures the publish side. Publishing is possible when Topic is
// set.
type Producer struct {
	// Topic receives every published message. A message cannot choose
	// another topic: clients only reach what the API exposes.
	Topic string `yaml:"topic"`
	// Compression is none, gzip, snappy, lz4 or zstd. Default none.
	Compression string `yaml:"compression"`
	// KeyHeader names the message header whose value becomes the record key
	// (the header itself is not written to the record). A key set on the
	// message by the entrypoint or a policy wins. "" disables it. Default
	// "kafka-key".
	KeyHeader string `yaml:"keyHeader"`
	// DeliveryTimeout bounds a publish: when the cluster has not confirmed
	// the record in time the publish fails with "broker unavailable" (HTTP
	// 503). At least 1s. Default 10s.
	DeliveryTimeout Duration `yaml:"deliveryTimeout"`
	// Linger lets records wait this long to be batched with others. Records
	// are batched anyway while a request is in flight, so the default 0
	// costs little throughput and no latency. At most 1m.
	Linger Duration `yaml:"linger"`
}

// Security configures how the gateway authenticates to the cluster.
type Security struct {
	// Protocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. Default
	// PLAINTEXT.
	Protocol string `yaml:"protocol"`
	// SASL is required with SASL_PLAINTEXT and SASL_SSL.
	SASL SASL `yaml:"sasl"`
	// TLS applies with SSL and SASL_SSL.
	TLS TLS `yaml:"tls"`
}

// SASL holds SASL credentials.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	// Username is the SASL user.
	Username string `yaml:"username"`
	// Password is the SASL password; write it as ${VAR} to keep it out of
	// the file.
	Password string `yaml:"password"`
}

// TLS configures the TLS connection to brokers.
type TLS struct {
	// CAFile is a PEM bundle of the CAs that sign broker certificates.
	// Default: the system roots.
	CAFile string `yaml:"caFile"`
	// CertFile is the PEM client certificate for mutual TLS; needs KeyFile.
	CertFile string `yaml:"certFile"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"keyFile"`
	// InsecureSkipVerify accepts any broker certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// Enumerations accepted by the configuration.
const (
	OffsetEarliest = "earliest"
	OffsetLatest   = "latest"

	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"

	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

var (
	compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	protocols    = []string{ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL}
	mechanisms   = []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512}
)

// DefaultConfig returns a configuration with every default set; the
// decoder fills in what the file says on top of it.
func DefaultConfig() *Config {
	return &Config{
		ClientID:       "sluice",
		RequestTimeout: Duration(10 * time.Second),
		Consumer: Consumer{
			GroupID:         "sluice",
			AutoOffsetReset: OffsetLatest,
			FetchMaxBytes:   1 << 20,
			CommitInterval:  Duration(time.Second),
			SessionTimeout:  Duration(45 * time.Second),
		},
		Producer: Producer{
			Compression:     "none",
			KeyHeader:       "kafka-key",
			DeliveryTimeout: Duration(10 * time.Second),
		},
		Security: Security{Protocol: ProtocolPlaintext},
	}
}

// Capabilities says what an endpoint so configured can do.
func (c *Config) Capabilities() mediation.Capabilities {
	start := mediation.StartLatest
	if c.Consumer.AutoOffsetReset == OffsetEarliest {
		start = mediation.StartEarliest
	}
	return mediation.Capabilities{
		Publish:      c.Producer.Topic != "",
		Subscribe:    c.subscribes(),
		Replay:       true,
		QoS:          append([]mediation.QoS(nil), mediation.AllQoS...),
		DefaultStart: start,
	}
}

func (c *Config) subscribes() bool {
	return len(c.Consumer.Topics) > 0 || c.Consumer.TopicPattern != ""
}

// Validate checks the configuration and returns every problem found, each a
// *plugins.FieldError naming its key.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf(field, format, args...))
	}

	if len(c.BootstrapServers) == 0 {
		add("bootstrapServers", "at least one broker address (host:port) is required")
	}
	for _, s := range c.BootstrapServers {
		if err := checkServer(s); err != nil {
			add("bootstrapServers", "%q: %v", s, err)
		}
	}
	if strings.TrimSpace(c.ClientID) == "" {
		add("clientId", "must not be empty")
	}
	if c.RequestTimeout <= 0 {
		add("requestTimeout", "must be positive, such as 10s")
	}

	if !c.subscribes() && c.Producer.Topic == "" {
		add("", "nothing to do: set producer.topic to publish, consumer.topics or consumer.topicPattern to subscribe")
	}
	errs = append(errs, c.Consumer.validate()...)
	errs = append(errs, c.Producer.validate()...)
	errs = append(errs, c.Security.validate()...)
	return errors.Join(errs...)
}

func (c *Consumer) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf("consumer."+field, format, args...))
	}
	seen := make(map[string]bool, len(c.Topics))
	for _, t := range c.Topics {
		if err := checkTopic(t); err != nil {
			add("topics", "%q: %v", t, err)
		} else if seen[t] {
			add("topics", "%q is listed twice", t)
		}
		seen[t] = true
	}
	if c.TopicPattern != "" {
		if len(c.Topics) > 0 {
			add("topicPattern", "set topics or topicPattern, not both")
		}
		if _, err := compilePattern(c.TopicPattern); err != nil {
			add("topicPattern", "not a valid regular expression: %v", err)
		}
	}
	if strings.TrimSpace(c.GroupID) == "" {
		add("groupId", "must not be empty")
	} else if strings.ContainsFunc(c.GroupID, isControl) {
		add("groupId", "must not contain control characters")
	}
	if c.AutoOffsetReset != OffsetEarliest && c.AutoOffsetReset != OffsetLatest {
		add("autoOffsetReset", "%q is not earliest or latest", c.AutoOffsetReset)
	}
	if c.FetchMaxBytes <= 0 {
		add("fetchMaxBytes", "must be a positive number of bytes, such as 1048576")
	}
	if c.CommitInterval < Duration(10*time.Millisecond) {
		add("commitInterval", "must be at least 10ms")
	}
	if c.SessionTimeout < Duration(6*time.Second) {
		add("sessionTimeout", "must be at least 6s (brokers refuse shorter group sessions by default)")
	}
	return errs
}

func (p *Producer) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf("producer."+field, format, args...))
	}
	if p.Topic != "" {
		if err := checkTopic(p.Topic); err != nil {
			add("topic", "%q: %v", p.Topic, err)
		}
	}
	if !slices.Contains(compressions, p.Compression) {
		add("compression", "%q is not one of %s", p.Compression, strings.Join(compressions, ", "))
	}
	if strings.ContainsFunc(p.KeyHeader, func(r rune) bool { return isControl(r) || r == ' ' || r == ':' }) {
		add("keyHeader", "%q is not a valid header name", p.KeyHeader)
	}
	// franz-go refuses record timeouts under a second.
	if p.DeliveryTimeout < Duration(time.Second) {
		add("deliveryTimeout", "must be at least 1s")
	}
	if p.Linger < 0 || p.Linger > Duration(time.Minute) {
		add("linger", "must be between 0 and 1m")
	}
	return errs
}

func (s *Security) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, plugins.Errorf("security."+field, format, args...))
	}
	if !slices.Contains(protocols, s.Protocol) {
		add("protocol", "%q is not one of %s", s.Protocol, strings.Join(protocols, ", "))
		return errs
	}
	usesSASL := s.Protocol == ProtocolSASLPlaintext || s.Protocol == ProtocolSASLSSL
	usesTLS := s.Protocol == ProtocolSSL || s.Protocol == ProtocolSASLSSL
	switch {
	case usesSASL && s.SASL.Mechanism == "":
		add("sasl.mechanism", "required with protocol %s: one of %s", s.Protocol, strings.Join(mechanisms, ", "))
	case usesSASL && !slices.Contains(mechanisms, s.SASL.Mechanism):
		add("sasl.mechanism", "%q is not one of %s", s.SASL.Mechanism, strings.Join(mechanisms, ", "))
	case usesSASL && s.SASL.Username == "":
		add("sasl.username", "required with protocol %s", s.Protocol)
	case !usesSASL && (s.SASL != SASL{}):
		add("sasl", "set only with protocol SASL_PLAINTEXT or SASL_SSL (protocol is %s)", s.Protocol)
	}
	if !usesTLS && (s.TLS != TLS{}) {
		add("tls", "set only with protocol SSL or SASL_SSL (protocol is %s)", s.Protocol)
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		add("tls", "certFile and keyFile go together")
	}
	return errs
}

// checkServer accepts host or host:port.
func checkServer(s string) error {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return isControl(r) || r == ' ' || r == '/' }) {
		return errors.New("not a host:port address")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return nil // franz-go adds the default port 9092
		}
		return errors.New("not a host:port address")
	}
	if host == "" {
		return errors.New("missing host")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// checkTopic applies Kafka's rules for topic names.
func checkTopic(t string) error {
	switch {
	case t == "":
		return errors.New("empty topic name")
	case t == "." || t == "..":
		return errors.New(`"." and ".." are not topic names`)
	case len(t) > 249:
		return errors.New("longer than 249 characters")
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("character %q is not allowed (letters, digits, '.', '_', '-')", r)
		}
	}
	return nil
}

// compilePattern anchors the pattern so that it matches whole topic names,
// as Kafka's Java clients do.
func compilePattern(p string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(p); err != nil {
		return nil, err
	}
	return regexp.Compile("^(?:" + p + ")$")
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
