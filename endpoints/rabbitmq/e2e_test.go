package rabbitmq_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/endpoints/rabbitmq" // registers the rabbitmq endpoint
	_ "github.com/sluicegw/sluice/entrypoints/httppost"
	_ "github.com/sluicegw/sluice/entrypoints/sse"
	_ "github.com/sluicegw/sluice/entrypoints/websocket"
	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/internal/testutil/tcpproxy"
)

const e2eTimeout = 30 * time.Second

// rabbitAPI is a message API on exchange ex of the broker at url: every
// entrypoint the tests use, messages routed with orders.* keys. SSE clients
// are at-least-once (a queue of their own, acked after the flush);
// WebSocket clients share one live subscription.
func rabbitAPI(url, ex string) string {
	return fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: orders
    type: message
    listeners:
      - type: http
        paths: [/orders]
        entrypoints:
          - {type: sse, qos: at-least-once, configuration: {heartbeatInterval: 1s}}
          - {type: http-post, configuration: {requestHeadersToMessage: true}}
          - {type: websocket}
    endpointGroups:
      - name: default
        type: rabbitmq
        sharedConfiguration:
          url: %q
          consumer: {exchange: %q, routingKey: "orders.#"}
          producer: {exchange: %q, routingKey: orders.created}
          publishTimeout: 2s
          connectTimeout: 1s
          reconnect: {initialDelay: 100ms, maxDelay: 1s}
        endpoints: [{name: r1}]
`, url, ex, ex)
}

// broker is a plain AMQP client with an exchange and a queue bound to it
// with "orders.#", both deleted at the end of the test.
type broker struct {
	t      *testing.T
	ch     *amqp.Channel
	ex, qu string
}

func newBroker(t *testing.T) *broker {
	t.Helper()
	rabbitmq.RequireBroker(t)
	conn, err := amqp.Dial(rabbitmq.SharedURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{t: t, ch: ch, ex: rabbitmq.UniqueName(t, "ex"), qu: rabbitmq.UniqueName(t, "q")}
	rabbitmq.DeleteAtEnd(t, b.ex, b.qu)
	if err := ch.ExchangeDeclare(b.ex, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(b.qu, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(b.qu, "orders.#", b.ex, false, nil); err != nil {
		t.Fatal(err)
	}
	return b
}

// get takes the next message of the queue without waiting.
func (b *broker) get() (amqp.Delivery, bool) {
	b.t.Helper()
	d, ok, err := b.ch.Get(b.qu, true)
	if err != nil {
		b.t.Fatal(err)
	}
	return d, ok
}

func post(t *testing.T, url, body string, header http.Header) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	resp.Body.Close()
	return resp
}

// An HTTP POST lands on the exchange with the request headers as AMQP
// headers, and the 202 comes only once the broker confirmed it: the message
// is in the bound queue the moment the answer arrives.
func TestGatewayPostToExchange(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	gw := gatewaytest.Start(t, rabbitAPI(rabbitmq.SharedURL, b.ex))

	resp := post(t, "http://"+gw.Addr()+"/orders", `{"status":"paid"}`, http.Header{
		"Content-Type":  {"application/json"},
		"X-Order-Id":    {"o-42"},
		"Authorization": {"Bearer secret"},
	})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	d, ok := b.get()
	if !ok {
		t.Fatal("the queue is empty when the 202 arrived")
	}
	switch {
	case string(d.Body) != `{"status":"paid"}`:
		t.Fatalf("body %q", d.Body)
	case d.RoutingKey != "orders.created" || d.ContentType != "application/json" || d.DeliveryMode != amqp.Persistent:
		t.Fatalf("routing key %q, content type %q, delivery mode %d", d.RoutingKey, d.ContentType, d.DeliveryMode)
	case d.Headers["x-order-id"] != "o-42":
		t.Fatalf("headers %v: x-order-id missing", d.Headers)
	case d.Headers["authorization"] != nil:
		t.Fatalf("the client's credentials reached the broker: %v", d.Headers)
	}
}

// With the broker unreachable, POST answers 503 with Retry-After within
// about publishTimeout (2s), not hanging.
func TestGatewayPostBrokerDown(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	proxy := tcpproxy.New(t, "127.0.0.1:5672")
	gw := gatewaytest.Start(t, rabbitAPI("amqp://guest:guest@"+proxy.Addr()+"/", b.ex))
	proxy.Pause()
	start := time.Now()
	resp := post(t, "http://"+gw.Addr()+"/orders", "x", http.Header{})
	if took := time.Since(start); took > 2*time.Second+10*time.Second {
		t.Fatalf("POST answered after %v, want about the 2s publish timeout", took)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	proxy.Resume()
	deadline := time.Now().Add(e2eTimeout)
	for post(t, "http://"+gw.Addr()+"/orders", "y", http.Header{}).StatusCode != http.StatusAccepted {
		if time.Now().After(deadline) {
			t.Fatal("POST still fails after the broker came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A message published by a plain AMQP client reaches an SSE client and a
// WebSocket client; what the WebSocket client sends lands on the exchange.
func TestGatewayRawPublishToSSEAndWebSocket(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	gw := gatewaytest.Start(t, rabbitAPI(rabbitmq.SharedURL, b.ex))
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()

	// SSE: the 200 comes once the subscription is bound.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+gw.Addr()+"/orders", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSE: %s", resp.Status)
	}
	sse := make(chan string, 16)
	go func() {
		defer close(sse)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				sse <- data
			}
		}
	}()

	// WebSocket: the upgrade completes once the subscription is bound.
	ws, _, err := websocket.Dial(ctx, "ws://"+gw.Addr()+"/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	err = b.ch.PublishWithContext(ctx, b.ex, "orders.shipped", false, false, amqp.Publishing{
		Body: []byte("shipped-1"), Headers: amqp.Table{"x-carrier": "ups"},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case data, ok := <-sse:
		if !ok || data != "shipped-1" {
			t.Fatalf("SSE got %q (stream open: %v)", data, ok)
		}
	case <-ctx.Done():
		t.Fatal("no SSE event")
	}
	typ, frame, err := ws.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(frame) != "shipped-1" {
		t.Fatalf("WebSocket got %v %q %v", typ, frame, err)
	}

	if err := ws.Write(ctx, websocket.MessageText, []byte("from-ws")); err != nil {
		t.Fatal(err)
	}
	for {
		if d, ok := b.get(); ok {
			if string(d.Body) == "from-ws" {
				break
			}
			continue // shipped-1, also bound to the queue
		}
		if ctx.Err() != nil {
			t.Fatal("what the WebSocket client sent never reached the exchange")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}
