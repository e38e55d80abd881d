package devbrokers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/twmb/franz-go/pkg/kfake"
)

// ErrClosed is returned by Feed once Close has been called.
var ErrClosed = errors.New("devbrokers: brokers closed")

// defaultStartTimeout bounds the wait for the NATS server to accept
// connections when Start's context has no deadline.
const defaultStartTimeout = 30 * time.Second

// Options configures Start. The zero value starts all three brokers with no
// Kafka topic and no automatic topic creation.
type Options struct {
	// Topics seeds the Kafka cluster: topic name → partition count. A count
	// of zero or less uses DefaultPartitions.
	Topics map[string]int32

	// AllowAutoTopicCreation lets Kafka clients create a topic by asking for
	// it (producing to it, or reading its metadata with auto-creation on).
	AllowAutoTopicCreation bool

	// DefaultPartitions is the partition count of topics created without
	// one (seeded with a count ≤ 0, auto-created, or created by Feed).
	// Default 1, so that the demo stream has one total order.
	DefaultPartitions int32

	// Logger receives the brokers' own logs at debug level (the broker's
	// level is kept in the "brokerLevel" attribute; only a NATS fatal error
	// stays at error level), tagged with a "broker" attribute, and Feed's
	// warnings. Default: discard.
	Logger *slog.Logger
}

// Brokers is a running set of embedded brokers. Its methods are safe for
// concurrent use.
type Brokers struct {
	log *slog.Logger

	kafka     *kfake.Cluster
	kafkaAddr string
	defParts  int32

	mqtt     *mqtt.Server
	mqttAddr string

	nats     *server.Server
	natsDir  string
	natsAddr string

	// Close cancels every running Feed through cancels and waits for them
	// with feeds, so that no producer outlives the Kafka cluster.
	mu       sync.Mutex
	closed   bool
	cancels  map[int]context.CancelFunc
	nextFeed int
	feeds    sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Start starts the three brokers on free loopback ports and returns once
// each accepts connections. ctx bounds the start only: the brokers run until
// Close. On error, whatever had started is stopped again.
func Start(ctx context.Context, opts Options) (*Brokers, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DefaultPartitions <= 0 {
		opts.DefaultPartitions = 1
	}
	b := &Brokers{
		log:      opts.Logger,
		defParts: opts.DefaultPartitions,
		cancels:  make(map[int]context.CancelFunc),
	}
	steps := []struct {
		name  string
		start func(context.Context, Options) error
	}{
		{"kafka", b.startKafka},
		{"mqtt", b.startMQTT},
		{"nats", b.startNATS},
	}
	for _, s := range steps {
		err := ctx.Err()
		if err == nil {
			err = s.start(ctx, opts)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("devbrokers: start %s: %w", s.name, err), b.Close())
		}
	}
	return b, nil
}

// KafkaAddr returns the Kafka bootstrap address, as host:port.
func (b *Brokers) KafkaAddr() string { return b.kafkaAddr }

// MQTTURL returns the MQTT broker's URL, as mqtt://host:port.
func (b *Brokers) MQTTURL() string { return "mqtt://" + b.mqttAddr }

// NATSURL returns the NATS server's URL, as nats://host:port.
func (b *Brokers) NATSURL() string { return "nats://" + b.natsAddr }

// KafkaCluster returns the kfake cluster, for tests that inject faults with
// its Control functions.
func (b *Brokers) KafkaCluster() *kfake.Cluster { return b.kafka }

// Close stops every Feed, then every broker, and removes the temporary
// directories. It returns once the brokers have stopped and is safe to call
// more than once; later calls return the first call's result.
func (b *Brokers) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		for _, cancel := range b.cancels {
			cancel()
		}
		b.mu.Unlock()
		b.feeds.Wait()

		var errs []error
		if b.mqtt != nil {
			if err := b.mqtt.Close(); err != nil {
				errs = append(errs, fmt.Errorf("devbrokers: stop mqtt: %w", err))
			}
		}
		if b.nats != nil {
			b.nats.Shutdown()
			b.nats.WaitForShutdown()
		}
		if b.natsDir != "" {
			if err := os.RemoveAll(b.natsDir); err != nil {
				errs = append(errs, fmt.Errorf("devbrokers: remove nats store: %w", err))
			}
		}
		if b.kafka != nil {
			b.kafka.Close()
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

// track registers one running Feed: the returned context ends with ctx or
// with Close, and done must be called when the feed returns.
func (b *Brokers) track(ctx context.Context) (context.Context, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	id := b.nextFeed
	b.nextFeed++
	b.cancels[id] = cancel
	b.feeds.Add(1)
	return ctx, func() {
		cancel()
		b.mu.Lock()
		delete(b.cancels, id)
		b.mu.Unlock()
		b.feeds.Done()
	}, nil
}
