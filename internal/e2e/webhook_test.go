package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicegw/sluice/entrypoints/webhook/delivery"
	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
)

// webhookAPI is a Kafka message API on topic "orders" with a webhook
// subscription listener; dlq adds a dead-letter group on "orders-dlq".
func webhookAPI(addr string, allowPrivate, dlq bool) string {
	dlqRef, dlqGroup := "", ""
	if dlq {
		dlqRef = ", dlq: {endpoint: orders-dlq}"
		dlqGroup = fmt.Sprintf(`
      - name: orders-dlq
        type: kafka
        sharedConfiguration: {bootstrapServers: [%q], producer: {topic: orders-dlq}}
        endpoints: [{name: d1}]`, addr)
	}
	return fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "127.0.0.1:0", token: s3cret}
  webhooks: {allowPrivateNetworks: %t}
apis:
  - id: orders
    type: message
    listeners:
      - type: subscription
        entrypoints:
          - {type: webhook, qos: at-least-once%s, configuration: {requestTimeout: 2s}}
    endpointGroups:
      - name: default
        type: kafka
        sharedConfiguration:
          bootstrapServers: [%q]
          consumer: {topics: [orders], autoOffsetReset: earliest}
          producer: {topic: orders}
        endpoints: [{name: k1}]%s
    plans:
      - {name: hooks, mode: push}
`, allowPrivate, dlqRef, addr, dlqGroup)
}

// receiver is a webhook callback that checks every delivery's signature
// and records what it accepted.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	// answer decides the status of a delivery of body; nil answers 200.
	answer func(body string, attempt int) int

	mu        sync.Mutex
	attempts  map[string]int // by webhook-id
	delivered map[string]int // accepted bodies and how often
	ids       map[string]string
	badSig    int
	headers   http.Header // of the last accepted delivery
	arrived   chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, attempts: map[string]int{}, delivered: map[string]int{}, ids: map[string]string{}, arrived: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	secret := r.secret
	r.mu.Unlock()
	if err := delivery.Verify(secret, req.Header, body, time.Now(), 5*time.Minute); err != nil {
		r.mu.Lock()
		r.badSig++
		r.mu.Unlock()
		http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.attempts[id]++
	attempt := r.attempts[id]
	answer := r.answer
	r.mu.Unlock()
	code := http.StatusOK
	if answer != nil {
		code = answer(string(body), attempt)
	}
	if code/100 == 2 {
		r.mu.Lock()
		r.delivered[string(body)]++
		if prev, ok := r.ids[string(body)]; ok && prev != id {
			r.t.Errorf("message %q came with webhook-id %s, then %s: ids must be stable", body, prev, id)
		}
		r.ids[string(body)] = id
		r.headers = req.Header.Clone()
		r.mu.Unlock()
		select {
		case r.arrived <- struct{}{}:
		default:
		}
	}
	w.WriteHeader(code)
}

// waitFor waits until every body of want was accepted at least once.
func (r *receiver) waitFor(t *testing.T, want []string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		var missing []string
		for _, w := range want {
			if r.delivered[w] == 0 {
				missing = append(missing, w)
			}
		}
		r.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		select {
		case <-r.arrived:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d messages never delivered, e.g. %v", len(missing), len(want), missing[:min(5, len(missing))])
		}
	}
}

// subscribe creates a subscription through the management API and returns
// its id. With r.secret set it is the subscription's; otherwise the gateway
// generates one, which the receiver learns from the answer. Deliveries start
// at once: a receiver that checks signatures from the first one and cannot
// wait for the answer sets its own secret.
func subscribe(t *testing.T, admin string, r *receiver, config string) string {
	t.Helper()
	r.mu.Lock()
	if r.secret != "" {
		config += fmt.Sprintf(`, "secret": %q`, r.secret)
	}
	r.mu.Unlock()
	code, body := adminDo(t, http.MethodPost, admin+"/v1/apis/orders/subscriptions", "s3cret",
		fmt.Sprintf(`{"plan": "hooks", "configuration": {"callbackUrl": %q%s}}`, r.srv.URL, config))
	if code != http.StatusCreated {
		t.Fatalf("create subscription: %d %s", code, body)
	}
	var created struct{ ID, Status, Secret string }
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Status != "active" || !strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("created: %s (%v)", body, err)
	}
	r.mu.Lock()
	if r.secret != "" && created.Secret != r.secret {
		t.Errorf("the answer shows secret %q, not the one given", created.Secret)
	}
	r.secret = created.Secret
	r.mu.Unlock()
	return created.ID
}

type subStatus struct {
	Status       string `json:"status"`
	Delivered    int64  `json:"delivered"`
	Failed       int64  `json:"failed"`
	DeadLettered int64  `json:"deadLettered"`
	Retrying     int    `json:"retrying"`
	LastError    string `json:"lastError"`
	LastDelivery string `json:"lastDeliveryAt"`
}

func statusOf(t *testing.T, admin, id string) subStatus {
	t.Helper()
	code, body := adminDo(t, http.MethodGet, admin+"/v1/subscriptions/"+id, "s3cret", "")
	var s subStatus
	if code != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("status: %d %s", code, body)
	}
	return s
}

// Must show 1: a subscription receives every message of a Kafka topic,
// signed and with its headers; a receiver answering 500 at first still gets
// every message, and the retries show in the status.
func TestWebhookDeliversEveryMessageThroughRetries(t *testing.T) {
	k := newKafka(t, 3, "orders")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, webhookAPI(addr, true, false))
	admin := "http://" + gw.AdminAddr()

	r := newReceiver(t)
	var mu sync.Mutex
	fails := 4 // the first four requests fail
	r.answer = func(string, int) int {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	id := subscribe(t, admin, r, `, "headers": {"X-Tenant": "acme"}, "retry": {"maxAttempts": 10, "initialDelay": "50ms", "maxDelay": "200ms"}`)
	want := numbered("order", 0, 60)
	produce(t, addr, "orders", want...)
	r.waitFor(t, want, 30*time.Second)

	r.mu.Lock()
	if r.badSig != 0 {
		t.Errorf("%d deliveries had a bad signature", r.badSig)
	}
	if got := r.headers.Get("X-Tenant"); got != "acme" {
		t.Errorf("subscription header X-Tenant = %q, want acme", got)
	}
	r.mu.Unlock()
	var st subStatus
	deadline := time.Now().Add(5 * time.Second)
	for {
		st = statusOf(t, admin, id)
		if st.Delivered >= int64(len(want)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Status != "active" || st.Delivered < int64(len(want)) || st.Failed != 4 || !strings.Contains(st.LastError, "500") || st.LastDelivery == "" {
		t.Fatalf("status %+v: want active, %d delivered, the 4 failed attempts and their last error", st, len(want))
	}

	webhooks := gw.Metrics().Webhooks
	if d, r := testutil.ToFloat64(webhooks.WithLabelValues("orders", "delivered")), testutil.ToFloat64(webhooks.WithLabelValues("orders", "retried")); d < float64(len(want)) || r != 4 {
		t.Fatalf("sluice_webhook_deliveries_total: delivered %v, retried %v; want %d and 4", d, r, len(want))
	}

	// Deleting the subscription deletes its consumer group too.
	if !kafkaGroupExists(t, addr, "sluice."+id) {
		t.Fatal("no consumer group named after the subscription")
	}
	if code, body := adminDo(t, http.MethodDelete, admin+"/v1/subscriptions/"+id, "s3cret", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if kafkaGroupExists(t, addr, "sluice."+id) {
		t.Fatal("the deleted subscription's consumer group is still there")
	}
}

func kafkaGroupExists(t *testing.T, addr, group string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	groups, err := kadm.NewClient(cl).ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, ok := groups[group]
	return ok
}

// Must show 3: a callback answering 400 sends the message to the DLQ topic,
// and delivery goes on with the next messages.
func TestWebhookRejectedMessageGoesToDLQ(t *testing.T) {
	k := newKafka(t, 1, "orders", "orders-dlq")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, webhookAPI(addr, true, true))
	admin := "http://" + gw.AdminAddr()

	r := newReceiver(t)
	r.answer = func(body string, _ int) int {
		if body == "poison" {
			return http.StatusBadRequest
		}
		return http.StatusNoContent
	}
	id := subscribe(t, admin, r, "")
	produce(t, addr, "orders", "before", "poison", "after-1", "after-2")
	r.waitFor(t, []string{"before", "after-1", "after-2"}, 20*time.Second)

	dead := consumeAll(t, addr, "orders-dlq", 1)
	if string(dead[0].Value) != "poison" {
		t.Fatalf("DLQ got %q, want the refused message", dead[0].Value)
	}
	reason := ""
	for _, h := range dead[0].Headers {
		if h.Key == "x-sluice-dlq-reason" {
			reason = string(h.Value)
		}
	}
	if !strings.Contains(reason, "400") {
		t.Errorf("DLQ record's x-sluice-dlq-reason = %q, want the callback's 400", reason)
	}
	r.mu.Lock()
	if r.delivered["poison"] != 0 {
		t.Error("the refused message counts as delivered")
	}
	r.mu.Unlock()
	if st := statusOf(t, admin, id); st.Status != "active" || st.DeadLettered != 1 {
		t.Fatalf("status %+v: want active with 1 dead-lettered", st)
	}
}

// Without a DLQ, a refused message turns the subscription failed without
// committing it; resume delivers it again (and what follows).
func TestWebhookFailsAndResumesFromTheSameMessage(t *testing.T) {
	k := newKafka(t, 1, "orders")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, webhookAPI(addr, true, false))
	admin := "http://" + gw.AdminAddr()

	r := newReceiver(t)
	var mu sync.Mutex
	refuse := true
	r.answer = func(body string, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if body == "m-1" && refuse {
			return http.StatusUnprocessableEntity
		}
		return http.StatusOK
	}
	id := subscribe(t, admin, r, "")
	produce(t, addr, "orders", "m-0", "m-1", "m-2")
	r.waitFor(t, []string{"m-0"}, 20*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for st := statusOf(t, admin, id); st.Status != "failed"; st = statusOf(t, admin, id) {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want failed", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.mu.Lock()
	if r.delivered["m-2"] != 0 {
		t.Fatal("delivery went past the refused message without a DLQ")
	}
	r.mu.Unlock()

	mu.Lock()
	refuse = false
	mu.Unlock()
	if code, body := adminDo(t, http.MethodPost, admin+"/v1/subscriptions/"+id+"/resume", "s3cret", ""); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, body)
	}
	r.waitFor(t, []string{"m-1", "m-2"}, 20*time.Second)
	if st := statusOf(t, admin, id); st.Status != "active" {
		t.Fatalf("after resume: %+v", st)
	}
}

// Must show 4: loopback callbacks, literal or behind a hostname, are
// refused with a 400 problem when private networks are not allowed.
func TestWebhookRefusesLoopbackCallbacks(t *testing.T) {
	k := newKafka(t, 1, "orders")
	gw := gatewaytest.Start(t, webhookAPI(k.ListenAddrs()[0], false, false))
	admin := "http://" + gw.AdminAddr()
	for _, cb := range []string{"http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/hook", "http://10.1.2.3/hook"} {
		req, _ := http.NewRequest(http.MethodPost, admin+"/v1/apis/orders/subscriptions",
			strings.NewReader(fmt.Sprintf(`{"configuration": {"callbackUrl": %q}}`, cb)))
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(string(body), "refused") {
			t.Errorf("%s: %d %s %s, want a 400 problem saying it is refused", cb, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	if code, body := adminDo(t, http.MethodGet, admin+"/v1/apis/orders/subscriptions", "s3cret", ""); code != http.StatusOK || !strings.Contains(strings.Join(strings.Fields(body), ""), `"items":[]`) {
		t.Errorf("refused subscriptions were stored: %d %s", code, body)
	}
	if code, _ := adminDo(t, http.MethodPost, admin+"/v1/apis/orders/subscriptions", "", `{}`); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", code)
	}
}

// maxConcurrentDeliveries delivers several messages at once, yet the
// messages of one key arrive in the order they were produced.
func TestWebhookConcurrentDeliveriesKeepKeyOrder(t *testing.T) {
	k := newKafka(t, 1, "orders")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, webhookAPI(addr, true, false))
	admin := "http://" + gw.AdminAddr()

	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	r := newReceiver(t)
	r.answer = func(string, int) int {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // a callback that takes a moment
		mu.Lock()
		inFlight--
		mu.Unlock()
		return http.StatusOK
	}
	r.secret = delivery.NewSecret() // the messages are there before the answer
	var order []string
	inner := r.answer
	r.answer = func(body string, attempt int) int {
		code := inner(body, attempt)
		mu.Lock()
		order = append(order, body)
		mu.Unlock()
		return code
	}

	const keys, perKey = 8, 25
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	var want []string
	for i := range perKey {
		for k := range keys {
			v := fmt.Sprintf("key%d-%03d", k, i)
			want = append(want, v)
			recs = append(recs, &kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "key%d", k), Value: []byte(v)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	subscribe(t, admin, r, `, "maxConcurrentDeliveries": 8`)
	r.waitFor(t, want, 30*time.Second)

	mu.Lock()
	defer mu.Unlock()
	last := map[string]string{}
	for _, v := range order {
		key := v[:strings.IndexByte(v, '-')]
		if prev := last[key]; prev != "" && v < prev {
			t.Fatalf("%s arrived after %s: a key's messages must stay in order", v, prev)
		}
		last[key] = v
	}
	if maxInFlight < 2 {
		t.Fatalf("at most %d delivery in flight with maxConcurrentDeliveries 8", maxInFlight)
	}
	t.Logf("up to %d deliveries in flight", maxInFlight)
}

// A running subscription follows its API through a redeployment by the
// management API: nothing is lost across the switch.
func TestWebhookFollowsRedeployment(t *testing.T) {
	k := newKafka(t, 1, "orders")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, `
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "127.0.0.1:0", token: s3cret}
  webhooks: {allowPrivateNetworks: true}
apis: []
`)
	admin := "http://" + gw.AdminAddr()
	// The API of webhookAPI, as a document of its own.
	doc := webhookAPI(addr, true, false)
	doc = doc[strings.Index(doc, "  - id: orders"):]
	doc = strings.ReplaceAll(strings.TrimPrefix(doc, "  - "), "\n    ", "\n")
	put := func(timeout string) {
		t.Helper()
		if code, body := adminDo(t, http.MethodPut, admin+"/v1/apis/orders", "s3cret",
			strings.Replace(doc, "requestTimeout: 2s", "requestTimeout: "+timeout, 1)); code/100 != 2 {
			t.Fatalf("PUT: %d %s", code, body)
		}
	}
	put("2s")
	r := newReceiver(t)
	subscribe(t, admin, r, "")
	produce(t, addr, "orders", numbered("before", 0, 20)...)
	r.waitFor(t, numbered("before", 0, 20), 20*time.Second)

	put("3s") // a new version of the API replaces the one the runner is on
	produce(t, addr, "orders", numbered("after", 0, 20)...)
	r.waitFor(t, numbered("after", 0, 20), 20*time.Second)
}

// With autoOffsetReset latest, a new subscription gets exactly what is
// produced after its creation was answered: nothing older, nothing missed
// while its consumer group was still joining.
func TestWebhookLatestStartsAtCreation(t *testing.T) {
	k := newKafka(t, 3, "orders")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, strings.Replace(webhookAPI(addr, true, false), "autoOffsetReset: earliest", "autoOffsetReset: latest", 1))
	admin := "http://" + gw.AdminAddr()
	produce(t, addr, "orders", numbered("old", 0, 10)...)

	// The group's first joins fail as if the coordinator were loading, so
	// that it joins well after the messages below were produced.
	joinsRefused := 0
	k.ControlKey(int16(kmsg.JoinGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		if joinsRefused >= 3 {
			return nil, nil, false
		}
		joinsRefused++
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp, nil, true
	})
	r := newReceiver(t)
	r.secret = delivery.NewSecret()
	subscribe(t, admin, r, "")
	want := numbered("new", 0, 30)
	produce(t, addr, "orders", want...)
	r.waitFor(t, want, 20*time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	for body := range r.delivered {
		if strings.HasPrefix(body, "old") {
			t.Fatalf("%s was produced before the subscription and delivered to it", body)
		}
	}
}
