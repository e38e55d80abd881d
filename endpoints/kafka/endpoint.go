package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicegw/sluice/mediation"
)

// Endpoint is a Kafka connector. One shared client publishes and looks up
// offsets; every subscription has a client of its own, so that one slow
// client never holds back another's fetches.
type Endpoint struct {
	cfg     Config
	log     *slog.Logger
	caps    mediation.Capabilities
	pattern *regexp.Regexp // consumer.topicPattern, anchored; nil when unset
	base    []kgo.Opt      // connection options every client shares
	client  *kgo.Client    // publishes and offset look-ups
	admin   *kadm.Client
	closed  atomic.Bool
}

// New returns an endpoint for cfg, which must have passed Validate. It reads
// certificate files but does not connect: clients connect on first use.
func New(cfg *Config, logger *slog.Logger) (*Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	e := &Endpoint{cfg: *cfg, log: logger, caps: cfg.Capabilities()}
	if cfg.Consumer.TopicPattern != "" {
		e.pattern, _ = compilePattern(cfg.Consumer.TopicPattern) // checked by Validate
	}
	sec, err := securityOpts(cfg.Security)
	if err != nil {
		return nil, err
	}
	e.base = append([]kgo.Opt{
		kgo.SeedBrokers(cfg.BootstrapServers...),
		kgo.ClientID(cfg.ClientID),
		kgo.WithLogger(kgoLogger{logger}),
	}, sec...)

	opts := e.base
	if cfg.Producer.Topic != "" {
		opts = append(opts[:len(opts):len(opts)], producerOpts(cfg.Producer)...)
	}
	e.client, err = kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	e.admin = kadm.NewClient(e.client)
	return e, nil
}

// Capabilities says what the endpoint can do; it does not change.
func (e *Endpoint) Capabilities() mediation.Capabilities { return e.caps }

// Subscribe opens a subscription. Without a group it reads every partition
// of the consumed topics from exact offsets resolved now (Start returns
// them); with a group it joins the consumer group "<groupId>.<Group>" and
// commits what was acknowledged.
func (e *Endpoint) Subscribe(ctx context.Context, req mediation.SubscribeRequest) (mediation.Subscription, error) {
	if e.closed.Load() {
		return nil, fmt.Errorf("kafka: subscribe: %w", mediation.ErrClosed)
	}
	if !e.caps.Subscribe {
		return nil, fmt.Errorf("kafka: subscribe: no consumer.topics or consumer.topicPattern configured: %w", mediation.ErrUnsupported)
	}
	// Typed results are checked here so that a failure is a nil interface,
	// not an interface holding a nil pointer.
	if req.Group != "" {
		g, err := e.subscribeGroup(ctx, req)
		if err != nil {
			return nil, err
		}
		return g, nil
	}
	r, err := e.subscribeOwn(ctx, req)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Close flushes what is still being published (until ctx ends) and releases
// the shared client. Subscriptions must be closed first; they own their
// clients.
func (e *Endpoint) Close(ctx context.Context) error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := e.client.Flush(ctx)
	e.client.Close()
	if err != nil {
		return fmt.Errorf("kafka: flush on close: %w", err)
	}
	return nil
}

// requestContext bounds a look-up by requestTimeout as well as ctx.
func (e *Endpoint) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, time.Duration(e.cfg.RequestTimeout))
}

// consumerOpts are the fetch options of a consumer group's client: a bounded
// fetch so that a subscription buffers at most about fetchMaxBytes per broker.
func (e *Endpoint) consumerOpts() []kgo.Opt { return fetchOpts(e.cfg.Consumer.FetchMaxBytes) }

// readerOpts are the fetch options of a reader's client. A reader holds the
// fetch it is delivering while franz-go buffers the next one (see
// reader.fill), so each fetch gets half of fetchMaxBytes: the two together
// stay within it. Smaller fetches also reach the client sooner.
func (e *Endpoint) readerOpts() []kgo.Opt {
	return fetchOpts(max(e.cfg.Consumer.FetchMaxBytes/2, 1))
}

func fetchOpts(maxBytes int32) []kgo.Opt {
	return []kgo.Opt{
		kgo.FetchMaxBytes(maxBytes),
		kgo.FetchMaxPartitionBytes(min(maxBytes, 1<<20)),
	}
}

// unavailable wraps a cluster failure so that entrypoints answer 503.
func unavailable(what string, err error) error {
	return fmt.Errorf("kafka: %s: %w: %w", what, mediation.ErrUnavailable, err)
}

// isFatalConsume reports fetch errors that retrying cannot cure: the
// credentials or permissions are wrong. Everything else (leader moves,
// brokers restarting) franz-go retries by itself.
func isFatalConsume(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// Interface guards.
var _ mediation.Endpoint = (*Endpoint)(nil)
