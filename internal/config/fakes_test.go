package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// The fakes below stand for the real plugins: the loader only sees their
// descriptions (listener, operations, QoS, capabilities) and configuration
// types, so the tests need nothing more.

var errFake = errors.New("fake plugin: not runnable")

type sseConfig struct {
	HeartbeatInterval time.Duration `yaml:"heartbeatInterval"`
	HeadersAsComments bool          `yaml:"headersAsComments"`
}

type httpGetConfig struct {
	MessagesLimitCount    int      `yaml:"messagesLimitCount"`
	MessagesLimitDuration Duration `yaml:"messagesLimitDuration"`
}

func (c *httpGetConfig) Validate() error {
	if c.MessagesLimitCount < 1 {
		return plugins.Errorf("messagesLimitCount", "must be at least 1")
	}
	return nil
}

type httpPostConfig struct {
	RequestHeadersToMessage bool `yaml:"requestHeadersToMessage"`
	MaxContentLength        int  `yaml:"maxContentLength"`
}

// kafkaConfig mirrors the contract keys of the kafka endpoint, with nested
// blocks and a Validate that returns several field errors at once.
type kafkaConfig struct {
	BootstrapServers []string      `yaml:"bootstrapServers"`
	Consumer         kafkaConsumer `yaml:"consumer"`
	Producer         kafkaProducer `yaml:"producer"`
	Security         kafkaSecurity `yaml:"security"`
}

type kafkaConsumer struct {
	Topics          []string `yaml:"topics"`
	TopicPattern    string   `yaml:"topicPattern"`
	GroupID         string   `yaml:"groupId"`
	AutoOffsetReset string   `yaml:"autoOffsetReset"`
}

type kafkaProducer struct {
	Topic       string `yaml:"topic"`
	Compression string `yaml:"compression"`
}

type kafkaSecurity struct {
	Protocol string `yaml:"protocol"`
	SASL     struct {
		Mechanism string `yaml:"mechanism"`
		Username  string `yaml:"username"`
		Password  string `yaml:"password"`
	} `yaml:"sasl"`
}

func (c *kafkaConfig) Validate() error {
	var errs []error
	if len(c.BootstrapServers) == 0 {
		errs = append(errs, plugins.Errorf("bootstrapServers", "at least one broker address is required"))
	}
	for i, s := range c.BootstrapServers {
		if !strings.Contains(s, ":") {
			errs = append(errs, plugins.Errorf(fmt.Sprintf("bootstrapServers[%d]", i), "%q has no port", s))
		}
	}
	switch c.Consumer.AutoOffsetReset {
	case "earliest", "latest":
	default:
		errs = append(errs, plugins.Errorf("consumer.autoOffsetReset", "want earliest or latest, got %q", c.Consumer.AutoOffsetReset))
	}
	if c.Producer.Compression == "zip" {
		errs = append(errs, plugins.Errorf("producer.compression", "zip is not a Kafka codec"))
	}
	return errors.Join(errs...)
}

type mockConfig struct {
	MessageInterval Duration       `yaml:"messageInterval"`
	MessageContent  string         `yaml:"messageContent"`
	MessageCount    int64          `yaml:"messageCount"`
	Metadata        map[string]any `yaml:"metadata"`
}

type httpProxyConfig struct {
	Target string `yaml:"target"`
	HTTP   struct {
		ConnectTimeout  Duration `yaml:"connectTimeout"`
		ReadTimeout     Duration `yaml:"readTimeout"`
		MaxConnsPerHost int      `yaml:"maxConnsPerHost"`
	} `yaml:"http"`
	HealthCheck struct {
		Path     string   `yaml:"path"`
		Interval Duration `yaml:"interval"`
	} `yaml:"healthCheck"`
}

func (c *httpProxyConfig) Validate() error {
	if c.Target == "" {
		return plugins.Errorf("target", "is required")
	}
	if u, err := url.Parse(c.Target); err != nil || u.Host == "" {
		return plugins.Errorf("target", "%q is not an absolute URL", c.Target)
	}
	return nil
}

type filterConfig struct {
	Condition string `yaml:"condition"`
}

func (c *filterConfig) Validate() error {
	if c.Condition == "" {
		return &plugins.FieldError{Field: "condition", Message: "is required"}
	}
	return nil
}

func newEntrypoint(plugins.Context, any) (mediation.Entrypoint, error) { return nil, errFake }
func newEndpoint(plugins.Context, any) (mediation.Endpoint, error)     { return nil, errFake }
func newPolicy(plugins.Context, any) (mediation.Policy, error)         { return nil, errFake }

// testRegistry returns a registry with fakes of the built-in plugins.
func testRegistry() *plugins.Registry {
	r := plugins.New()
	subscribeQoS := mediation.AllQoS
	r.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type: "sse", Listener: "http", Operations: mediation.OpSubscribe, QoS: subscribeQoS,
		Config: func() any { return &sseConfig{HeartbeatInterval: 30 * time.Second} }, New: newEntrypoint,
	})
	r.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type: "http-get", Listener: "http", Operations: mediation.OpSubscribe,
		QoS:    []mediation.QoS{mediation.QoSNone, mediation.QoSAuto, mediation.QoSAtMostOnce},
		Config: func() any { return &httpGetConfig{MessagesLimitCount: 100} }, New: newEntrypoint,
	})
	r.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type: "http-post", Listener: "http", Operations: mediation.OpPublish, QoS: mediation.AllQoS,
		Config: func() any { return &httpPostConfig{} }, New: newEntrypoint,
	})
	r.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type: "websocket", Listener: "http", Operations: mediation.OpPublish | mediation.OpSubscribe,
		QoS: mediation.AllQoS, New: newEntrypoint, // no configuration
	})
	r.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type: "webhook", Listener: "subscription", Operations: mediation.OpSubscribe,
		QoS: []mediation.QoS{mediation.QoSAtLeastOnce}, New: newEntrypoint, // as the real one

	})
	r.RegisterEntrypoint(plugins.EntrypointPlugin{
		Type: "http-proxy", Listener: "http", New: newEntrypoint, // no QoS, no operations
	})

	r.RegisterEndpoint(plugins.EndpointPlugin{
		Type:   "kafka",
		Config: func() any { return &kafkaConfig{Consumer: kafkaConsumer{AutoOffsetReset: "latest"}} },
		Capabilities: func(cfg any) mediation.Capabilities {
			c := cfg.(*kafkaConfig)
			return mediation.Capabilities{
				Publish:   c.Producer.Topic != "",
				Subscribe: len(c.Consumer.Topics) > 0 || c.Consumer.TopicPattern != "",
				Replay:    true, QoS: mediation.AllQoS,
			}
		},
		New: newEndpoint,
	})
	r.RegisterEndpoint(plugins.EndpointPlugin{
		Type:   "mock",
		Config: func() any { return &mockConfig{MessageInterval: Duration(time.Second)} },
		Capabilities: func(any) mediation.Capabilities {
			return mediation.Capabilities{Subscribe: true, QoS: []mediation.QoS{mediation.QoSNone, mediation.QoSAuto}}
		},
		New: newEndpoint,
	})
	r.RegisterEndpoint(plugins.EndpointPlugin{
		Type:         "http-proxy",
		Config:       func() any { return &httpProxyConfig{} },
		Capabilities: func(any) mediation.Capabilities { return mediation.Capabilities{} },
		New:          newEndpoint,
	})

	newSecurity := func(plugins.Context, any) (mediation.Security, error) { return nil, errFake }
	for _, t := range []string{"keyless", "api-key", "mtls"} {
		r.RegisterSecurity(plugins.SecurityPlugin{Type: t, New: newSecurity})
	}
	r.RegisterSecurity(plugins.SecurityPlugin{Type: "jwt", New: newSecurity, Config: func() any { return &fakeJWTConfig{} }})
	r.RegisterPolicy(plugins.PolicyPlugin{
		Name: "message-filter", Phases: []mediation.Phase{mediation.PhaseSubscribe, mediation.PhasePublish},
		Config: func() any { return &filterConfig{} }, New: newPolicy,
	})
	r.RegisterPolicy(plugins.PolicyPlugin{
		Name: "rate-limit", Phases: []mediation.Phase{mediation.PhaseRequest},
		Config: func() any {
			return &struct {
				Limit  int      `yaml:"limit"`
				Period Duration `yaml:"period"`
			}{}
		}, New: newPolicy,
	})
	return r
}

// fakeJWTConfig stands for a security type with a configuration.
type fakeJWTConfig struct {
	Issuer   string            `yaml:"issuer"`
	Audience []string          `yaml:"audience"`
	Leeway   Duration          `yaml:"leeway"`
	Labels   map[string]string `yaml:"labels"`
}
