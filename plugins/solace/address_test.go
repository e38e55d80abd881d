package solace

import (
	"strings"
	"testing"
)

func TestTopicAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc         string
		topic        string
		subscription bool
		solace       string // "" when refused
		rabbitmq     string // "" when refused
	}{
		{desc: "plain topic", topic: "orders/created", solace: "topic://orders/created", rabbitmq: "/topic/orders.created"},
		{desc: "one level", topic: "orders", solace: "topic://orders", rabbitmq: "/topic/orders"},
		{desc: "'*' matches one level", topic: "orders/*/paid", subscription: true, solace: "topic://orders/*/paid", rabbitmq: "/topic/orders.*.paid"},
		{desc: "'>' matches one or more levels: one word, then any", topic: "orders/>", subscription: true, solace: "topic://orders/>", rabbitmq: "/topic/orders.*.#"},
		{desc: "'>' alone matches every topic", topic: ">", subscription: true, solace: "topic://>", rabbitmq: "/topic/*.#"},
		{desc: "both wildcards", topic: "*/eu/>", subscription: true, solace: "topic://*/eu/>", rabbitmq: "/topic/*.eu.*.#"},
		{desc: "prefix wildcard is Solace only", topic: "orders/pa*", subscription: true, solace: "topic://orders/pa*"},
		{desc: "'>' not last is a plain character", topic: "a/>/b", subscription: true, solace: "topic://a/>/b", rabbitmq: "/topic/a.>.b"},
		{desc: "'>' inside a level is a plain character", topic: "a/b>", subscription: true, solace: "topic://a/b>", rabbitmq: "/topic/a.b>"},
		{desc: "'*' inside a level is a plain character", topic: "a/b*c", solace: "topic://a/b*c", rabbitmq: "/topic/a.b*c"},
		{desc: "a '.' would split a RabbitMQ word", topic: "v1.2/orders", solace: "topic://v1.2/orders"},
		{desc: "a '#' would be a RabbitMQ wildcard", topic: "orders/#1", solace: "topic://orders/#1"},
		{desc: "no wildcard when publishing: '*'", topic: "orders/*", subscription: false},
		{desc: "no wildcard when publishing: '>'", topic: "orders/>", subscription: false},
		{desc: "no wildcard when publishing: prefix", topic: "orders/p*", subscription: false},
		{desc: "empty", topic: ""},
		{desc: "empty level", topic: "a//b", subscription: true},
		{desc: "leading slash", topic: "/a", subscription: true},
		{desc: "trailing slash", topic: "a/", subscription: true},
		{desc: "reserved '#' prefix", topic: "#P2P/x", subscription: true},
		{desc: "control character", topic: "a/\x00", subscription: true},
		{desc: "too long for Solace", topic: strings.Repeat("a", 251)},
		{desc: "too long for RabbitMQ", topic: strings.Repeat("a/", 100) + "a", solace: "topic://" + strings.Repeat("a/", 100) + "a", rabbitmq: "/topic/" + strings.Repeat("a.", 100) + "a"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct{ addressing, want string }{{AddressingSolace, tc.solace}, {AddressingRabbitMQ, tc.rabbitmq}} {
				got, err := TopicAddress(c.addressing, tc.topic, tc.subscription)
				switch {
				case c.want == "" && err == nil:
					t.Errorf("%s: TopicAddress(%q) = %q, want an error", c.addressing, tc.topic, got)
				case c.want != "" && (err != nil || got != c.want):
					t.Errorf("%s: TopicAddress(%q) = %q, %v; want %q", c.addressing, tc.topic, got, err, c.want)
				}
			}
		})
	}
}

func TestQueueAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, name       string
		solace, rabbitmq string // "" when refused
	}{
		{desc: "plain", name: "orders", solace: "queue://orders", rabbitmq: "/queue/orders"},
		{desc: "slash is a Solace character", name: "app/orders", solace: "queue://app/orders"},
		{desc: "Solace refuses '*'", name: "orders*", rabbitmq: "/queue/orders*"},
		{desc: "empty", name: ""},
		{desc: "too long for Solace", name: strings.Repeat("q", 201), rabbitmq: "/queue/" + strings.Repeat("q", 201)},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct{ addressing, want string }{{AddressingSolace, tc.solace}, {AddressingRabbitMQ, tc.rabbitmq}} {
				got, err := QueueAddress(c.addressing, tc.name)
				switch {
				case c.want == "" && err == nil:
					t.Errorf("%s: QueueAddress(%q) = %q, want an error", c.addressing, tc.name, got)
				case c.want != "" && (err != nil || got != c.want):
					t.Errorf("%s: QueueAddress(%q) = %q, %v; want %q", c.addressing, tc.name, got, err, c.want)
				}
			}
		})
	}
}

// TestTopicMatchingAgrees checks, on a table of subscriptions and topics,
// that a Solace subscription and its RabbitMQ binding key match the same
// topics, by the rules of each broker as documented (solaceMatch and
// rabbitMatch below). TestTopicsOnBroker checks the same against RabbitMQ
// itself.
func TestTopicMatchingAgrees(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sub   string
		match []string
		miss  []string
	}{
		{sub: "a/*/c", match: []string{"a/b/c", "a/x/c"}, miss: []string{"a/c", "a/b/b/c", "a/b/c/d"}},
		{sub: "a/>", match: []string{"a/b", "a/b/c", "a/b/c/d"}, miss: []string{"a", "b/a"}},
		{sub: ">", match: []string{"a", "a/b"}},
		{sub: "*", match: []string{"a", "b"}, miss: []string{"a/b"}},
		{sub: "*/b/>", match: []string{"a/b/c", "x/b/c/d"}, miss: []string{"a/b", "a/c/b/d"}},
		{sub: "a/b", match: []string{"a/b"}, miss: []string{"a", "a/b/c", "a/bc"}},
	} {
		for _, topic := range append(append([]string(nil), tc.match...), tc.miss...) {
			want := solaceMatch(tc.sub, topic)
			if slicesContains(tc.match, topic) != want {
				t.Fatalf("table: %q vs %q: solaceMatch says %v", tc.sub, topic, want)
			}
			binding, err := TopicAddress(AddressingRabbitMQ, tc.sub, true)
			if err != nil {
				t.Fatal(err)
			}
			key, err := TopicAddress(AddressingRabbitMQ, topic, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := rabbitMatch(strings.TrimPrefix(binding, "/topic/"), strings.TrimPrefix(key, "/topic/")); got != want {
				t.Errorf("subscription %q (binding %s) vs topic %q (key %s): RabbitMQ matches %v, Solace %v", tc.sub, binding, topic, key, got, want)
			}
		}
	}
}

// FuzzTopicAddress checks that the mapping never fails unexpectedly, that
// the Solace address is the topic itself, and that whatever RabbitMQ
// addressing accepts matches exactly what Solace would.
func FuzzTopicAddress(f *testing.F) {
	for _, s := range [][2]string{{"a/*/c", "a/b/c"}, {"a/>", "a"}, {">", "x/y"}, {"a/b*", "a/bc"}, {"a.b/>", "a.b/c"}, {"*/b", "a/b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, sub, topic string) {
		sa, serr := TopicAddress(AddressingSolace, sub, true)
		if serr == nil && sa != "topic://"+sub {
			t.Fatalf("solace address of %q = %q", sub, sa)
		}
		ra, rerr := TopicAddress(AddressingRabbitMQ, sub, true)
		if serr != nil && rerr == nil {
			t.Fatalf("%q: refused for Solace (%v) but mapped for RabbitMQ to %q", sub, serr, ra)
		}
		ta, terr := TopicAddress(AddressingRabbitMQ, topic, false)
		if rerr != nil || terr != nil {
			return
		}
		key := strings.TrimPrefix(ta, "/topic/")
		if strings.Contains(key, "..") || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") {
			t.Fatalf("topic %q: routing key %q has an empty word", topic, key)
		}
		if got, want := rabbitMatch(strings.TrimPrefix(ra, "/topic/"), key), solaceMatch(sub, topic); got != want {
			t.Fatalf("subscription %q (%s) vs topic %q (%s): RabbitMQ matches %v, Solace %v", sub, ra, topic, ta, got, want)
		}
	})
}

// solaceMatch is Solace's topic matching: '*' ending a level matches the
// rest of that level (one whole level when alone), '>' as the last level
// matches one or more levels; elsewhere they are plain characters.
func solaceMatch(sub, topic string) bool {
	sl, tl := strings.Split(sub, "/"), strings.Split(topic, "/")
	for i, s := range sl {
		if s == ">" && i == len(sl)-1 {
			return len(tl) > i
		}
		if i >= len(tl) {
			return false
		}
		if prefix, ok := strings.CutSuffix(s, "*"); ok {
			if !strings.HasPrefix(tl[i], prefix) {
				return false
			}
			continue
		}
		if s != tl[i] {
			return false
		}
	}
	return len(sl) == len(tl)
}

// rabbitMatch is RabbitMQ's topic exchange matching: words split on '.',
// '*' matches one word, '#' zero or more.
func rabbitMatch(binding, key string) bool {
	var match func(b, k []string) bool
	match = func(b, k []string) bool {
		if len(b) == 0 {
			return len(k) == 0
		}
		switch b[0] {
		case "#":
			for i := 0; i <= len(k); i++ {
				if match(b[1:], k[i:]) {
					return true
				}
			}
			return false
		case "*":
			return len(k) > 0 && match(b[1:], k[1:])
		}
		return len(k) > 0 && b[0] == k[0] && match(b[1:], k[1:])
	}
	return match(strings.Split(binding, "."), strings.Split(key, "."))
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
