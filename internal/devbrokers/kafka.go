package devbrokers

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kfake"
)

// startKafka starts a one-broker kfake cluster on a free loopback port.
// kfake binds 127.0.0.1:0 itself when no port is given.
func (b *Brokers) startKafka(_ context.Context, opts Options) error {
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("sluice-dev"),
		kfake.DefaultNumPartitions(int(opts.DefaultPartitions)),
		kfake.WithLogger(kfakeLogger{l: b.log.With("broker", "kafka")}),
	}
	if opts.AllowAutoTopicCreation {
		kopts = append(kopts, kfake.AllowAutoTopicCreation())
	}
	// Sorted so that the cluster is built the same way on every run.
	for _, topic := range slices.Sorted(maps.Keys(opts.Topics)) {
		if topic == "" {
			return errors.New("empty topic name in Options.Topics")
		}
		kopts = append(kopts, kfake.SeedTopics(opts.Topics[topic], topic))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return err
	}
	b.kafka = c
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		return errors.New("kfake cluster has no listener")
	}
	b.kafkaAddr = addrs[0]
	return nil
}
