package solace

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	amqp "github.com/Azure/go-amqp"

	"github.com/sluicegw/sluice/mediation"
)

// TestTopicsOnBroker subscribes with Solace wildcards through the endpoint
// (rabbitmq addressing) and publishes to a set of topics with a plain AMQP
// 1.0 client: exactly the topics the Solace rules match arrive. Each case
// sends the topics in order, each accepted before the next, then a topic
// that matches; since one subscription's messages arrive in the order
// sent, whatever did not arrive before that last one was not delivered.
func TestTopicsOnBroker(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	for _, tc := range []struct {
		sub    string
		topics []string
		last   string // matches sub
	}{
		{sub: "a/*/c", topics: []string{"a/c", "a/b/c", "a/b/b/c", "a/x/c", "a/b/c/d"}, last: "a/z/c"},
		{sub: "a/>", topics: []string{"a", "a/b", "b/a", "a/b/c/d"}, last: "a/z"},
		{sub: "*/b/>", topics: []string{"a/b", "a/b/c", "x/b/c/d", "a/c/b/d"}, last: "z/b/z"},
		{sub: "a/b", topics: []string{"a", "a/b/c", "a/bc", "b"}, last: "a/b"},
	} {
		t.Run(strings.ReplaceAll(tc.sub, "/", "_"), func(t *testing.T) {
			t.Parallel()
			prefix := uniqueName(t)
			cfg := rabbitConfig(sharedBroker)
			cfg.Consumer.Topics = []string{prefix + "/" + tc.sub}
			e := newEndpoint(t, cfg)
			sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartLatest, QoS: mediation.QoSAuto})

			r := newRaw(t)
			var want []string
			for _, topic := range append(append([]string(nil), tc.topics...), tc.last) {
				if solaceMatch(tc.sub, topic) {
					want = append(want, topic)
				}
				addr, err := TopicAddress(AddressingRabbitMQ, prefix+"/"+topic, false)
				if err != nil {
					t.Fatal(err)
				}
				m := amqp.NewMessage([]byte(topic))
				r.send(addr, m)
			}
			var got []string
			for len(got) == 0 || got[len(got)-1] != tc.last {
				m := next(t, sub)
				m.Ack()
				got = append(got, string(m.Content))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("subscription %q received %q, want %q", tc.sub, got, want)
			}
			if a := fmt.Sprint(cfg.sources()); !strings.Contains(a, "/topic/") {
				t.Fatalf("sources %s", a)
			}
		})
	}
}
