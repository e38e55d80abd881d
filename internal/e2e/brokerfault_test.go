package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/internal/testutil/ssetest"
	"github.com/sluicegw/sluice/internal/testutil/tcpproxy"
)

// natsProcess is a nats-server of the test's own, so that it can be killed
// and restarted; the machine's shared server is never touched.
type natsProcess struct {
	t        *testing.T
	bin, dir string
	port     string
	cmd      *exec.Cmd
}

func startNATS(t *testing.T) *natsProcess {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("nats-server is required (SLUICE_REQUIRE_SERVICES=1): %v", err)
		}
		t.Skipf("nats-server not installed: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	p := &natsProcess{t: t, bin: bin, dir: filepath.Join(t.TempDir(), "js"), port: port}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *natsProcess) url() string { return "nats://127.0.0.1:" + p.port }

func (p *natsProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "-a", "127.0.0.1", "-p", p.port, "-js", "-sd", p.dir)
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if nc, err := nats.Connect(p.url()); err == nil {
			nc.Close()
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatal("nats-server did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the server abruptly, as a crash would.
func (p *natsProcess) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		p.cmd = nil
	}
}

// publishJS publishes values to subject and waits for each PubAck,
// retrying while the server is coming back.
func publishJS(t *testing.T, url, subject string, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, v := range values {
		for {
			if _, err := js.Publish(ctx, subject, []byte(v)); err == nil {
				break
			} else if ctx.Err() != nil {
				t.Fatalf("publish %s: %v", v, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// A JetStream server restart in the middle of a stream: the gateway
// reconnects by itself, the open SSE client keeps its connection and
// receives every message published before and after the crash, none twice.
func TestJetStreamRestartKeepsSSEClient(t *testing.T) {
	srv := startNATS(t)
	nc, err := nats.Connect(srv.url())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	nc.Close()

	gw := gatewaytest.Start(t, fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: orders
    listeners:
      - {type: http, paths: [/orders], entrypoints: [{type: sse, configuration: {heartbeatInterval: 1s}}]}
    endpointGroups:
      - name: default
        type: nats
        sharedConfiguration: {servers: [%q], consumer: {subject: orders.new, stream: ORDERS, autoOffsetReset: earliest}, reconnectWait: 200ms}
        endpoints: [{name: n}]
`, srv.url()))
	c := ssetest.Open(t, "http://"+gw.Addr()+"/orders", nil)

	before, after := numbered("before", 0, 20), numbered("after", 0, 20)
	publishJS(t, srv.url(), "orders.new", before...)
	var got []string
	for range before {
		got = append(got, c.Next(t, 30*time.Second).Data)
	}
	srv.kill()
	time.Sleep(500 * time.Millisecond) // the gateway notices the loss
	srv.start()
	publishJS(t, srv.url(), "orders.new", after...)
	for range after {
		got = append(got, c.Next(t, 60*time.Second).Data)
	}
	c.ExpectQuiet(t, 500*time.Millisecond)
	assertSameSet(t, "across the restart", got, append(before, after...))
}

// mosquittoProcess is a mosquitto of the test's own on a free port.
type mosquittoProcess struct {
	t         *testing.T
	bin, conf string
	addr      string
	cmd       *exec.Cmd
}

func startMosquitto(t *testing.T) *mosquittoProcess {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("mosquitto is required (SLUICE_REQUIRE_SERVICES=1): %v", err)
		}
		t.Skipf("mosquitto not installed: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n", port), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &mosquittoProcess{t: t, bin: bin, conf: conf, addr: addr}
	m.start()
	t.Cleanup(m.kill)
	return m
}

func (m *mosquittoProcess) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", m.addr, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatal("mosquitto did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *mosquittoProcess) kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		m.cmd = nil
	}
}

// An MQTT broker restart: the gateway reconnects and resubscribes by itself,
// and the open SSE client keeps its connection and receives what is
// published after the restart. (Live MQTT without a persistent session has
// no replay: what is published while the gateway is away is not promised.)
func TestMQTTRestartKeepsSSEClient(t *testing.T) {
	broker := startMosquitto(t)
	gw := gatewaytest.Start(t, fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: dev
    listeners:
      - type: http
        paths: [/dev]
        entrypoints: [{type: sse, configuration: {heartbeatInterval: 1s}}, {type: http-post}]
    endpointGroups:
      - name: default
        type: mqtt5
        sharedConfiguration: {serverUrl: "mqtt://%s", consumer: {topic: devices/+/temp}, producer: {topic: devices/d1/temp}, maxReconnectDelay: 500ms}
        endpoints: [{name: m}]
`, broker.addr))
	base := "http://" + gw.Addr() + "/dev"
	c := ssetest.Open(t, base, nil)
	if got := subscribeThenPostTo(t, c, base, "before"); got != "before" {
		t.Fatalf("got %q", got)
	}
	broker.kill()
	broker.start()
	if got := subscribeThenPostTo(t, c, base, "after"); got != "after" {
		t.Fatalf("got %q after the restart", got)
	}
}

// subscribeThenPostTo POSTs body until the open SSE client c receives it,
// for live brokers that promise nothing while a subscription reconnects.
func subscribeThenPostTo(t *testing.T, c *ssetest.Client, base, body string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := httpPost(base, body)
		if err == nil && resp == 202 {
			select {
			case ev, ok := <-c.Events:
				if !ok {
					t.Fatal("SSE stream ended")
				}
				if ev.Event == "message" && ev.Data == body {
					return ev.Data
				} // an earlier phase's extra copy, or a heartbeat: go on
			case <-time.After(500 * time.Millisecond):
			}
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Fatalf("%q never reached the SSE client", body)
	return ""
}

func httpPost(url, body string) (int, error) {
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// A dropped RabbitMQ connection (the shared broker cannot be restarted, so
// a proxy cuts it): the gateway reconnects, re-declares its queue, and the
// open SSE client keeps receiving.
func TestRabbitMQDroppedConnectionKeepsSSEClient(t *testing.T) {
	gatewaytest.RequireService(t, "rabbitmq", "127.0.0.1:5672")
	proxy := tcpproxy.New(t, "127.0.0.1:5672")
	exchange := fmt.Sprintf("sluice-cut-%d", time.Now().UnixNano()%1e9)
	deleteExchangeAfter(t, exchange)
	gw := gatewaytest.Start(t, fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: r
    listeners:
      - type: http
        paths: [/r]
        entrypoints: [{type: sse, configuration: {heartbeatInterval: 1s}}, {type: http-post}]
    endpointGroups:
      - name: default
        type: rabbitmq
        sharedConfiguration: {url: "amqp://guest:guest@%s/", consumer: {exchange: %s, routingKey: k}, producer: {exchange: %s, routingKey: k}, reconnect: {initialDelay: 100ms, maxDelay: 1s}}
        endpoints: [{name: r}]
`, proxy.Addr(), exchange, exchange))
	base := "http://" + gw.Addr() + "/r"
	c := ssetest.Open(t, base, nil)
	subscribeThenPostTo(t, c, base, "before")
	proxy.CutAll()
	subscribeThenPostTo(t, c, base, "after")
}

// deleteExchangeAfter removes a test's exchange from the shared RabbitMQ
// when the test ends.
func deleteExchangeAfter(t *testing.T, name string) {
	t.Cleanup(func() {
		conn, err := amqp.Dial("amqp://guest:guest@127.0.0.1:5672/")
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(name, false, false)
			ch.Close()
		}
	})
}
