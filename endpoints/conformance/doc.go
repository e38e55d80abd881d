// Package conformance is the test suite every Sluice endpoint connector
// passes, built-in or plugin, in the manner of Redpanda Connect's
// integration suite: one set of tests, run against a real broker, that says
// whether a connector keeps the promises of mediation.Endpoint and
// mediation.Subscription.
//
// # Using it
//
// A connector's package adds one test that describes how to build the
// endpoint and, optionally, how to put messages on the broker without it:
//
//	func TestConformance(t *testing.T) {
//		addr := "127.0.0.1:4222" // or an in-process broker started here
//		if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
//			if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
//				t.Fatalf("no broker at %s: %v", addr, err)
//			}
//			t.Skipf("no broker at %s: %v", addr, err)
//		} else {
//			c.Close()
//		}
//		conformance.Run(t, conformance.Harness{
//			BrokerAddr: addr,
//			New: func(t testing.TB, brokerAddr, channel string) mediation.Endpoint {
//				ep, err := mybroker.New(&mybroker.Config{
//					URL:      "mybroker://" + brokerAddr,
//					Consumer: mybroker.Consumer{Subject: channel},
//					Producer: mybroker.Producer{Subject: channel},
//				})
//				if err != nil {
//					t.Fatal(err)
//				}
//				return ep
//			},
//			// Optional: write straight to the broker with its client library.
//			Produce: func(t testing.TB, brokerAddr, channel string, msgs ...*mediation.Message) { ... },
//		},
//			conformance.Skip(conformance.Keys, "mybroker messages have no key"),
//		)
//	}
//
// New is called once per test with a fresh channel name (made of lower-case
// letters, digits and '-'), so that tests never see each other's messages;
// it creates the channel on the broker when the broker needs that. The
// brokerAddr it gets is the real broker, or a Proxy in front of it in the
// fault tests.
//
// Run must be called from a non-parallel test; the cases run as subtests
// (TestConformance/ordering, ...), in parallel after open-close, so
// `go test -run TestConformance/ordering` runs one of them.
//
// # What is checked
//
// Each case is a subtest; see the Case constants for what each asserts. A
// case is skipped, saying why, when the endpoint's Capabilities rule it out
// (no Replay: no cursor tests; no at-least-once QoS: no group test), when
// the harness lacks what it needs (no broker address: no fault tests), or
// when the connector declares with Skip that it cannot do it by design. A
// connector whose subscriptions yield a sequence of their own rather than
// what was published (the mock endpoint) declares it with Generator, and the
// subscribe-side cases read that sequence.
//
// Every case opens its subscription before sending: from the earliest
// message of its fresh channel when the endpoint can replay, else from the
// live end. So Subscribe must return only once the subscription is in
// place (MQTT SUBACK received, NATS interest flushed, queue bound): a
// message sent after it returns is delivered.
//
// The fault tests put a TCP Proxy between the endpoint and the broker: they
// cut every connection in the middle of a stream (the subscription must go on
// by itself; with Replay or a Group nothing may be lost), and make the broker
// hang or go down under a publish (which must fail with an error wrapping
// mediation.ErrUnavailable before its context ends, and work again once the
// broker is back). A broker that tells clients where to connect next, as
// Kafka does with advertised listeners, would be reached around a plain
// proxy: its harness sets FaultyBroker to start, per test, a broker that
// advertises the proxy's address (see endpoints/kafka/conformance_test.go).
//
// The suite never asserts speed: every wait is bounded by Timeout (60s by
// default) and only what must eventually happen is checked, so a busy
// machine does not fail it.
package conformance
