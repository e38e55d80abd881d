package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/internal/testutil/ssetest"
	"github.com/sluicegw/sluice/plugins"
)

// matrixEndpoint is one broker under the matrix: the endpoint group YAML for a
// fresh channel, and the service it needs.
type matrixEndpoint struct {
	name    string
	service string // host:port, "" for in-process
	group   func(t *testing.T, channel string) string
}

func matrixEndpoints() []matrixEndpoint {
	return []matrixEndpoint{
		{name: "kafka", group: func(t *testing.T, channel string) string {
			k := newKafka(t, 1, channel)
			return fmt.Sprintf(`{name: default, type: kafka, endpoints: [{name: e}], sharedConfiguration: {bootstrapServers: [%q], consumer: {topics: [%s]}, producer: {topic: %s}}}`,
				k.ListenAddrs()[0], channel, channel)
		}},
		{name: "mqtt5", service: "127.0.0.1:1883", group: func(_ *testing.T, channel string) string {
			return fmt.Sprintf(`{name: default, type: mqtt5, endpoints: [{name: e}], sharedConfiguration: {serverUrl: "mqtt://127.0.0.1:1883", consumer: {topic: sluice/%s}, producer: {topic: sluice/%s}}}`,
				channel, channel)
		}},
		{name: "rabbitmq", service: "127.0.0.1:5672", group: func(t *testing.T, channel string) string {
			deleteExchangeAfter(t, "sluice-"+channel)
			return fmt.Sprintf(`{name: default, type: rabbitmq, endpoints: [{name: e}], sharedConfiguration: {url: "amqp://guest:guest@127.0.0.1:5672/", consumer: {exchange: sluice-%s, routingKey: m}, producer: {exchange: sluice-%s, routingKey: m}}}`,
				channel, channel)
		}},
		{name: "nats", service: "127.0.0.1:4222", group: func(_ *testing.T, channel string) string {
			return fmt.Sprintf(`{name: default, type: nats, endpoints: [{name: e}], sharedConfiguration: {servers: ["nats://127.0.0.1:4222"], consumer: {subject: sluice.%s}, producer: {subject: sluice.%s}}}`,
				channel, channel)
		}},
		{name: "jetstream", service: "127.0.0.1:4222", group: func(t *testing.T, channel string) string {
			createStream(t, "S"+channel, "sluicejs."+channel)
			return fmt.Sprintf(`{name: default, type: nats, endpoints: [{name: e}], sharedConfiguration: {servers: ["nats://127.0.0.1:4222"], consumer: {subject: sluicejs.%s, stream: S%s}, producer: {subject: sluicejs.%s}}}`,
				channel, channel, channel)
		}},
	}
}

// createStream makes a JetStream stream for the test and deletes it after.
func createStream(t *testing.T, name, subject string) {
	t.Helper()
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
}

// A pair or QoS a broker cannot honour is refused when the configuration
// loads, with a message that says why.
func TestConfigRefusesWhatABrokerCannotDo(t *testing.T) {
	_, err := config.Parse("core.yaml", []byte(`
apis:
  - id: n
    listeners:
      - {type: http, paths: [/n], entrypoints: [{type: sse, qos: at-least-once}]}
    endpointGroups:
      - {name: default, type: nats, endpoints: [{name: e}], sharedConfiguration: {servers: ["nats://127.0.0.1:4222"], consumer: {subject: a}}}
`), plugins.Default)
	if err == nil || !strings.Contains(err.Error(), "core.yaml:5:") || !strings.Contains(err.Error(), "JetStream") {
		t.Fatalf("core NATS with at-least-once: %v; want a file:line:col error that says why", err)
	}
	_, err = config.Parse("post.yaml", []byte(`
apis:
  - id: n
    listeners:
      - {type: http, paths: [/n], entrypoints: [{type: http-post}]}
    endpointGroups:
      - {name: default, type: nats, endpoints: [{name: e}], sharedConfiguration: {servers: ["nats://127.0.0.1:4222"], consumer: {subject: a}}}
`), plugins.Default)
	if err == nil || !strings.Contains(err.Error(), "post.yaml:") || !strings.Contains(err.Error(), "publish") {
		t.Fatalf("http-post on a subscribe-only endpoint: %v", err)
	}
}

// TestEntrypointEndpointMatrix: every message entrypoint against every
// endpoint, on the real brokers. A client subscribed through sse, http-get
// or websocket receives what another client POSTs through http-post.
func TestEntrypointEndpointMatrix(t *testing.T) {
	for _, ep := range matrixEndpoints() {
		for _, sub := range []string{"sse", "http-get", "websocket"} {
			t.Run(ep.name+"/"+sub, func(t *testing.T) {
				t.Parallel()
				if ep.service != "" {
					gatewaytest.RequireService(t, ep.name, ep.service)
				}
				channel := fmt.Sprintf("matrix%d", time.Now().UnixNano()%1e9)
				gw := gatewaytest.Start(t, fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: m
    listeners:
      - type: http
        paths: [/m]
        entrypoints:
          - {type: sse}
          - {type: http-get, configuration: {messagesLimitCount: 1, messagesLimitDuration: 20s}}
          - {type: http-post}
          - {type: websocket}
    endpointGroups:
      - %s
`, ep.group(t, channel)))
				base := "http://" + gw.Addr() + "/m"
				want := "hello from " + ep.name + " to " + sub
				got := subscribeThenPost(t, base, sub, want)
				if got != want {
					t.Fatalf("%s received %q, want %q", sub, got, want)
				}
			})
		}
	}
}

// subscribeThenPost opens a subscriber of the given kind, waits until it is
// live, POSTs body, and returns the first message the subscriber got.
func subscribeThenPost(t *testing.T, base, kind, body string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	post := func() {
		resp, err := http.Post(base, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("POST: %s", resp.Status)
		}
	}
	switch kind {
	case "sse":
		c := ssetest.Open(t, base, nil) // headers arrive once the subscription is open
		post()
		return c.Next(t, 30*time.Second).Data
	case "websocket":
		c, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		// A live broker delivers only what arrives after the subscription
		// is open; keep posting until the first copy arrives.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				post()
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	default: // http-get: the page waits up to 20s for its one message
		type result struct {
			page getPage
			err  error
		}
		res := make(chan result, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				res <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var p getPage
			err = json.Unmarshal(b, &p)
			res <- result{p, err}
		}()
		// Post until the page answers: the GET's subscription opens a
		// moment after the request is sent.
		for {
			post()
			select {
			case r := <-res:
				if r.err != nil {
					t.Fatal(r.err)
				}
				if len(r.page.Items) == 0 {
					t.Fatal("GET page came back empty")
				}
				return r.page.Items[0].Content
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}
