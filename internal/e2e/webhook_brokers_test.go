package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
)

// hookedAPI is an API "orders" on the given endpoint group with an
// http-post entrypoint at /orders to publish and a webhook subscription
// listener; the gateway allows loopback callbacks.
func hookedAPI(group string) string {
	return fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "127.0.0.1:0", token: s3cret}
  webhooks: {allowPrivateNetworks: true}
apis:
  - id: orders
    type: message
    listeners:
      - {type: http, paths: [/orders], entrypoints: [{type: http-post}]}
      - type: subscription
        entrypoints: [{type: webhook, qos: at-least-once}]
    endpointGroups:
      - %s
    plans:
      - {name: hooks, mode: push}
`, group)
}

// Must show 7: the subscription flow works with RabbitMQ (a durable queue
// per subscription) and JetStream (a durable consumer per subscription):
// every message published after the subscription was created is
// delivered, through retries, and a deleted subscription stops receiving.
func TestWebhookOnRabbitMQAndJetStream(t *testing.T) {
	for _, ep := range matrixEndpoints() {
		if ep.name != "rabbitmq" && ep.name != "jetstream" {
			continue
		}
		t.Run(ep.name, func(t *testing.T) {
			gatewaytest.RequireService(t, ep.name, ep.service)
			channel := fmt.Sprintf("hook%d", time.Now().UnixNano())
			gw := gatewaytest.Start(t, hookedAPI(ep.group(t, channel)))
			admin, base := "http://"+gw.AdminAddr(), "http://"+gw.Addr()

			r := newReceiver(t)
			r.answer = func(_ string, attempt int) int {
				if attempt == 1 {
					return http.StatusServiceUnavailable // every message once
				}
				return http.StatusOK
			}
			id := subscribe(t, admin, r, `, "retry": {"initialDelay": "10ms", "maxDelay": "50ms"}`)
			t.Cleanup(func() { adminDo(t, http.MethodDelete, admin+"/v1/subscriptions/"+id, "s3cret", "") })

			want := numbered(ep.name, 0, 40)
			for _, m := range want {
				if code, err := httpPost(base+"/orders", m); err != nil || code != http.StatusAccepted {
					t.Fatalf("POST %s: %d %v", m, code, err)
				}
			}
			r.waitFor(t, want, 30*time.Second)
			deadline := time.Now().Add(5 * time.Second)
			st := statusOf(t, admin, id)
			for st.Delivered < int64(len(want)) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				st = statusOf(t, admin, id)
			}
			if st.Delivered < int64(len(want)) || st.Failed < int64(len(want)) {
				t.Fatalf("status %+v: want %d delivered after as many failed attempts", st, len(want))
			}

			// The subscription's durable position lives on the broker until
			// the subscription is deleted, and not after.
			position := func() bool {
				if ep.name == "rabbitmq" {
					return rabbitQueueExists(t, "sluice."+id)
				}
				return jsConsumerExists(t, "S"+channel, id) // durable: "" names it after the group
			}
			if !position() {
				t.Fatal("no durable position on the broker for the subscription")
			}
			if code, body := adminDo(t, http.MethodDelete, admin+"/v1/subscriptions/"+id, "s3cret", ""); code != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s", code, body)
			}
			if position() {
				t.Fatal("the deleted subscription's durable position is still on the broker")
			}
			if code, _ := adminDo(t, http.MethodGet, admin+"/v1/subscriptions/"+id, "s3cret", ""); code != http.StatusNotFound {
				t.Fatalf("deleted subscription still answers %d", code)
			}
			if code, err := httpPost(base+"/orders", "after-delete"); err != nil || code != http.StatusAccepted {
				t.Fatalf("POST: %d %v", code, err)
			}
			time.Sleep(300 * time.Millisecond)
			r.mu.Lock()
			defer r.mu.Unlock()
			if n := r.delivered["after-delete"]; n != 0 {
				t.Fatal("a deleted subscription still receives messages")
			}
		})
	}
}

// rabbitQueueExists asks the local RabbitMQ whether a queue exists.
func rabbitQueueExists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := amqp.Dial("amqp://guest:guest@127.0.0.1:5672/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
	return err == nil
}

// jsConsumerExists asks the local NATS server whether a durable consumer
// exists on a stream.
func jsConsumerExists(t *testing.T, stream, name string) bool {
	t.Helper()
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = js.Consumer(ctx, stream, name)
	return err == nil
}
