package mqtt5_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/paho"

	_ "github.com/sluicegw/sluice/endpoints/mqtt5"
	_ "github.com/sluicegw/sluice/entrypoints/httppost"
	_ "github.com/sluicegw/sluice/entrypoints/sse"
	_ "github.com/sluicegw/sluice/entrypoints/websocket"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/server"
	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/plugins"
)

// These tests run a whole gateway from YAML in front of the machine's
// Mosquitto: story 2 of DESIGN.md (curl -X POST lands on an MQTT topic)
// and MQTT messages reaching browsers over SSE and WebSocket.

const e2eTimeout = 60 * time.Second

// mqttAPI is a message API on topic of the broker at addr.
func mqttAPI(addr, topic, extra string) string {
	return fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: devices
    type: message
    listeners:
      - type: http
        paths: [/devices]
        entrypoints:
          - {type: sse, configuration: {heartbeatInterval: 1s}}
          - {type: http-post, configuration: {requestHeadersToMessage: true}}
          - {type: websocket}
    endpointGroups:
      - name: default
        type: mqtt5
        sharedConfiguration:
          serverUrl: "mqtt://%s"
          consumer: {topic: %q, qos: 1}
          producer: {topic: %q, qos: 1}
%s        endpoints: [{name: m1}]
`, addr, topic, topic, extra)
}

// Story 2: a plain HTTP POST is published to the MQTT topic with the
// request headers as user properties, and answered 202 only once the broker
// confirmed it (its PUBACK is held back here, and the POST waits for it).
func TestPostLandsOnMQTTTopic(t *testing.T) {
	broker := needBroker(t)
	topic := "sluice-e2e/post/" + randomHex()
	proxy := newGateProxy(t, broker)
	gw := gatewaytest.Start(t, mqttAPI(proxy.addr(), topic, ""))
	raw := dialRaw(t, broker)
	raw.subscribe(t, topic)

	// The first POST also waits for the gateway's connection to come up.
	if resp := post(t, gw, "warm-up", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first POST: %s", resp.Status)
	}
	if p := raw.next(t); string(p.Payload) != "warm-up" {
		t.Fatalf("first message %q", p.Payload)
	}

	proxy.hold() // from now on the broker's answers wait
	answered := make(chan *http.Response, 1)
	go func() {
		answered <- post(t, gw, `{"status":"paid"}`, http.Header{"X-Order-Id": {"o-42"}, "Content-Type": {"application/json"}})
	}()
	// The broker has the message (the subscriber gets it) ...
	p := raw.next(t)
	if string(p.Payload) != `{"status":"paid"}` {
		t.Fatalf("message %q", p.Payload)
	}
	// ... but its PUBACK has not reached the gateway, so no answer yet.
	select {
	case resp := <-answered:
		t.Fatalf("POST answered %v before the broker's PUBACK reached the gateway", resp.Status)
	case <-time.After(500 * time.Millisecond):
	}
	proxy.release()
	if resp := <-answered; resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s, want 202 Accepted", resp.Status)
	}

	if v := p.Properties.User.Get("x-order-id"); v != "o-42" {
		t.Fatalf("user property x-order-id = %q (all %v)", v, p.Properties.User)
	}
	if p.Properties.ContentType != "application/json" {
		t.Fatalf("content type %q", p.Properties.ContentType)
	}
}

// With the broker unreachable a POST is a 503 with Retry-After within
// publishTimeout, not a hang.
func TestPostBrokerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	gw := gatewaytest.Start(t, mqttAPI(addr, "t", "          publishTimeout: 1s\n"))
	start := time.Now()
	resp := post(t, gw, "x", nil)
	if took := time.Since(start); took > 1*time.Second+9*time.Second {
		t.Fatalf("POST answered after %v, want about the 1s publishTimeout", took)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
}

// A message published by a plain MQTT client reaches an SSE client and a
// WebSocket client of the gateway.
func TestMQTTToSSEAndWebSocket(t *testing.T) {
	broker := needBroker(t)
	topic := "sluice-e2e/stream/" + randomHex()
	gw := gatewaytest.Start(t, mqttAPI(broker, topic, ""))
	url := "http://" + gw.Addr() + "/devices"

	events := openSSE(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+gw.Addr()+"/devices", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer ws.CloseNow()

	// Both clients are subscribed once their response started.
	raw := dialRaw(t, broker)
	raw.publish(t, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(`{"t":21.5}`)})

	select {
	case data := <-events:
		if data != `{"t":21.5}` {
			t.Fatalf("SSE data %q", data)
		}
	case <-time.After(e2eTimeout):
		t.Fatal("no SSE message")
	}
	typ, b, err := ws.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(b) != `{"t":21.5}` {
		t.Fatalf("websocket read: %v %v %q", err, typ, b)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

func post(t *testing.T, gw *server.Server, body string, h http.Header) *http.Response {
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+gw.Addr()+"/devices", strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST: %v", err)
		return &http.Response{Status: err.Error()}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// openSSE connects and returns the data of "message" events.
func openSSE(t *testing.T, url string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("SSE: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		resp.Body.Close()
		t.Fatalf("SSE: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	out := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		var event string
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if event == "message" {
					out <- strings.Join(data, "\n")
				}
				event, data = "", nil
			case strings.HasPrefix(line, "event:"):
				event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return out
}

// needBroker returns the machine's Mosquitto, or skips (fails with
// SLUICE_REQUIRE_SERVICES=1) when it is not running.
func needBroker(t *testing.T) string {
	t.Helper()
	const addr = "127.0.0.1:1883"
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Mosquitto is required (SLUICE_REQUIRE_SERVICES=1) but %s is unreachable: %v", addr, err)
		}
		t.Skipf("no MQTT broker at %s (start Mosquitto to run this test): %v", addr, err)
	}
	c.Close()
	return addr
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rawClient is a plain paho client.
type rawClient struct {
	*paho.Client
	received chan *paho.Publish
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{received: make(chan *paho.Publish, 64)}
	rc.Client = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			rc.received <- pr.Packet
			return true, nil
		}},
		OnClientError: func(error) {},
	})
	if _, err := rc.Connect(ctx, &paho.Connect{ClientID: "raw-" + randomHex(), CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Disconnect(&paho.Disconnect{}); <-rc.Done() })
	return rc
}

func (rc *rawClient) subscribe(t *testing.T, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if _, err := rc.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
}

func (rc *rawClient) publish(t *testing.T, p *paho.Publish) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if _, err := rc.Publish(ctx, p); err != nil {
		t.Fatal(err)
	}
}

func (rc *rawClient) next(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case p := <-rc.received:
		return p
	case <-time.After(e2eTimeout):
		t.Fatal("raw client: no message")
		return nil
	}
}

// gateProxy forwards TCP connections to a target and can hold back what
// the target sends, to show that the gateway waits for the broker.
type gateProxy struct {
	ln     net.Listener
	target string
	done   chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	open  chan struct{} // closed while target→client bytes may flow
	conns []net.Conn
}

func newGateProxy(t *testing.T, target string) *gateProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &gateProxy{ln: ln, target: target, done: make(chan struct{}), open: make(chan struct{})}
	close(p.open)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *gateProxy) addr() string { return p.ln.Addr().String() }

func (p *gateProxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open = make(chan struct{})
}

func (p *gateProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}

func (p *gateProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.pipe(up, c, false) }()
		go func() { defer p.wg.Done(); p.pipe(c, up, true) }()
	}
}

// pipe copies src to dst; gated copies wait while the proxy holds.
func (p *gateProxy) pipe(dst, src net.Conn, gated bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if gated {
				p.mu.Lock()
				open := p.open
				p.mu.Unlock()
				select {
				case <-open:
				case <-p.done:
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *gateProxy) close() {
	close(p.done)
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// The gateway's loader reports mqtt5 problems at the offending key, and
// refuses at-least-once where the configuration cannot keep it.
func TestConfigProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, yaml string
		want       []string
	}{
		{
			desc: "a misplaced wildcard",
			yaml: strings.Replace(mqttAPI("127.0.0.1:1883", "a/#/b", ""), "producer: {topic: \"a/#/b\", qos: 1}", "producer: {topic: a, qos: 1}", 1),
			want: []string{".yaml:20:", "consumer.topic", `"#" must be the last level`},
		},
		{
			desc: "at-least-once without a persistent session",
			yaml: strings.Replace(mqttAPI("127.0.0.1:1883", "a", ""), "{type: sse,", "{type: sse, qos: at-least-once,", 1),
			want: []string{"qos at-least-once cannot be honoured", "mqtt5"},
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse(t.Name()+".yaml", []byte(tc.yaml), plugins.Default)
			if err == nil {
				t.Fatal("configuration accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// The same API with a session and a client id takes at-least-once.
	ok := strings.Replace(mqttAPI("127.0.0.1:1883", "a", "          clientId: gw\n          sessionExpiry: 1h\n"), "{type: sse,", "{type: sse, qos: at-least-once,", 1)
	if _, err := config.Parse("ok.yaml", []byte(ok), plugins.Default); err != nil {
		t.Fatalf("at-least-once with a persistent session refused: %v", err)
	}
}
