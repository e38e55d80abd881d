package solace_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	_ "github.com/sluicegw/sluice/entrypoints/httppost"
	_ "github.com/sluicegw/sluice/entrypoints/sse"
	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/internal/testutil/tcpproxy"
	_ "github.com/sluicegw/sluice/plugins/solace" // registers the solace endpoint
)

const (
	e2eBroker  = "127.0.0.1:5672"
	e2eTimeout = 30 * time.Second
)

// solaceAPI is a message API on a solace endpoint whose topics live under
// prefix, pointed at RabbitMQ's AMQP 1.0 plugin (addressing: rabbitmq).
// Clients subscribe to prefix/orders/> and publish to prefix/orders/created.
func solaceAPI(addr, prefix string) string {
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
          - {type: sse, configuration: {heartbeatInterval: 1s}}
          - {type: http-post, configuration: {requestHeadersToMessage: true}}
    endpointGroups:
      - name: default
        type: solace
        sharedConfiguration:
          url: amqp://%s
          vpn: default
          username: guest
          password: guest
          addressing: rabbitmq
          consumer: {topics: ["%s/orders/>"]}
          producer: {topic: %s/orders/created}
          publishTimeout: 2s
          connectTimeout: 2s
          reconnect: {initialDelay: 100ms, maxDelay: 1s}
        endpoints: [{name: s1}]
`, addr, prefix, prefix)
}

// amqp10 is a plain AMQP 1.0 client of the broker.
type amqp10 struct {
	t       *testing.T
	session *amqp.Session
}

func newAMQP10(t *testing.T) *amqp10 {
	t.Helper()
	gatewaytest.RequireService(t, "RabbitMQ", e2eBroker)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	conn, err := amqp.Dial(ctx, "amqp://guest:guest@"+e2eBroker, nil)
	if err != nil {
		t.Fatalf("RabbitMQ does not speak AMQP 1.0 (rabbitmq-plugins enable rabbitmq_amqp1_0): %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &amqp10{t: t, session: s}
}

func prefixFor(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "sluice-e2e-" + hex.EncodeToString(b[:])
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

// An HTTP POST through the solace endpoint arrives at the AMQP 1.0 broker
// on the producer topic, durable, with the request headers as application
// properties and the content type as the AMQP property; the 202 comes once
// the broker accepted it.
func TestGatewayPostArrivesAtBroker(t *testing.T) {
	t.Parallel()
	c := newAMQP10(t)
	prefix := prefixFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	rc, err := c.session.NewReceiver(ctx, "/topic/"+prefix+".orders.created", &amqp.ReceiverOptions{Credit: 10})
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewaytest.Start(t, solaceAPI(e2eBroker, prefix))

	resp := post(t, "http://"+gw.Addr()+"/orders", `{"status":"paid"}`, http.Header{
		"Content-Type":  {"application/json"},
		"X-Order-Id":    {"o-42"},
		"Authorization": {"Bearer secret"},
	})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	m, err := rc.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("nothing arrived at the broker: %v", err)
	}
	_ = rc.AcceptMessage(ctx, m)
	switch {
	case string(m.GetData()) != `{"status":"paid"}`:
		t.Fatalf("body %q", m.GetData())
	case m.Header == nil || !m.Header.Durable:
		t.Fatalf("header %+v: a persistent publish must be durable", m.Header)
	case m.Properties == nil || m.Properties.ContentType == nil || *m.Properties.ContentType != "application/json":
		t.Fatalf("properties %+v: content-type missing", m.Properties)
	case m.ApplicationProperties["x-order-id"] != "o-42":
		t.Fatalf("application properties %v: x-order-id missing", m.ApplicationProperties)
	case m.ApplicationProperties["authorization"] != nil:
		t.Fatalf("the client's credentials reached the broker: %v", m.ApplicationProperties)
	}
}

// Messages sent to the broker by a plain AMQP 1.0 client reach an SSE
// client of the gateway, with the topic wildcard applied: of
// prefix/orders (no level after it: '>' needs one), prefix/payments/x and
// prefix/orders/eu/shipped, sent in that order, only the last arrives.
func TestGatewayBrokerToSSE(t *testing.T) {
	t.Parallel()
	c := newAMQP10(t)
	prefix := prefixFor(t)
	gw := gatewaytest.Start(t, solaceAPI(e2eBroker, prefix))
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()

	// The 200 comes once the subscription is attached.
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

	for _, key := range []string{"orders", "payments.x", "orders.eu.shipped"} {
		// Each accepted before the next: the broker routes them in order.
		unsettled := amqp.SenderSettleModeUnsettled
		s, err := c.session.NewSender(ctx, "/topic/"+prefix+"."+key, &amqp.SenderOptions{SettlementMode: &unsettled})
		if err != nil {
			t.Fatal(err)
		}
		m := amqp.NewMessage([]byte(key))
		m.ApplicationProperties = map[string]any{"X-Carrier": "ups"}
		receipt, err := s.SendWithReceipt(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := receipt.Wait(ctx); err != nil {
			t.Fatalf("%s: %v %v", key, st, err)
		}
	}
	select {
	case data, ok := <-sse:
		if !ok || data != "orders.eu.shipped" {
			t.Fatalf("SSE got %q (stream open: %v), want orders.eu.shipped first: the others do not match %s/orders/>", data, ok, prefix)
		}
	case <-ctx.Done():
		t.Fatal("no SSE event")
	}
}

// With the broker unreachable, POST answers 503 with Retry-After, and
// works again once the broker is back.
func TestGatewayPostBrokerDown(t *testing.T) {
	t.Parallel()
	newAMQP10(t)
	proxy := tcpproxy.New(t, e2eBroker)
	gw := gatewaytest.Start(t, solaceAPI(proxy.Addr(), prefixFor(t)))
	proxy.Pause()
	resp := post(t, "http://"+gw.Addr()+"/orders", "x", http.Header{})
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
