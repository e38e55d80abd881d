package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/internal/testutil/ssetest"
	"github.com/sluicegw/sluice/mediation"
)

// kafkaAPI is a message API on topic "orders" of the cluster at addr.
func kafkaAPI(addr, reset string, extra string) string {
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
          - {type: http-get, configuration: {messagesLimitCount: 500, messagesLimitDuration: 700ms}}
          - {type: http-post, configuration: {requestHeadersToMessage: true}}
          - {type: websocket}
    endpointGroups:
      - name: default
        type: kafka
        sharedConfiguration:
          bootstrapServers: [%q]
          consumer: {topics: [orders], autoOffsetReset: %s}
          producer: {topic: orders, deliveryTimeout: 2s}
        endpoints: [{name: k1}]
%s`, addr, reset, extra)
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%03d", prefix, i))
	}
	return out
}

// Must show 2: on a 3-partition topic an SSE client receives every message
// with an id; a client resuming from the Last-Event-ID of ANY received event
// gets exactly the messages it had not seen, new ones included, none twice.
func TestSSEResumeFromAnyEvent(t *testing.T) {
	for _, reset := range []string{"earliest", "latest"} {
		t.Run(reset, func(t *testing.T) {
			t.Parallel()
			k := newKafka(t, 3, "orders")
			addr := k.ListenAddrs()[0]
			gw := gatewaytest.Start(t, kafkaAPI(addr, reset, ""))
			base := "http://" + gw.Addr() + "/orders"

			var first []string
			if reset == "earliest" {
				first = numbered("old", 0, 30) // already in the topic when the client connects
				produce(t, addr, "orders", first...)
			}
			a := ssetest.Open(t, base, nil)
			live := numbered("live", 0, 30)
			produce(t, addr, "orders", live...)
			all := append(append([]string{}, first...), live...)

			var seen []ssetest.Event
			for range all {
				ev := a.Next(t, 20*time.Second)
				if ev.ID == "" {
					t.Fatalf("event %q has no id", ev.Data)
				}
				seen = append(seen, ev)
			}
			assertSameSet(t, "first client", ssetest.Data(seen), all)

			for _, k := range []int{0, len(seen) / 3, len(seen) - 2, len(seen) - 1} {
				b := ssetest.Open(t, base, http.Header{"Last-Event-Id": {seen[k].ID}})
				fresh := numbered(fmt.Sprintf("after%d", k), 0, 6)
				produce(t, addr, "orders", fresh...)
				want := append(ssetest.Data(seen[k+1:]), fresh...)
				var got []ssetest.Event
				for range want {
					got = append(got, b.Next(t, 20*time.Second))
				}
				b.ExpectQuiet(t, 300*time.Millisecond)
				assertSameSet(t, fmt.Sprintf("resume after event %d", k), ssetest.Data(got), want)
				b.Close()
				// The first client sees the fresh messages too: they become part
				// of what it has seen.
				for range fresh {
					seen = append(seen, a.Next(t, 20*time.Second))
				}
			}
		})
	}
}

// A malformed cursor is a 400 problem+json, never a restart from zero.
func TestSSEBadCursor(t *testing.T) {
	k := newKafka(t, 3, "orders")
	gw := gatewaytest.Start(t, kafkaAPI(k.ListenAddrs()[0], "earliest", ""))
	for _, tc := range []struct{ desc, cursor string }{
		{"not base64", "!!not-a-cursor!!"},
		{"truncated", "AQ"},
		{"unknown topic", mediation.NewCursor(mediation.Position{Stream: "other", Offset: 1}).String()},
		{"offset past the end", mediation.NewCursor(mediation.Position{Stream: "orders", Offset: 1 << 40}).String()},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			for _, how := range []string{"header", "query"} {
				u, h := "http://"+gw.Addr()+"/orders", http.Header{}
				if how == "header" {
					h.Set("Last-Event-ID", tc.cursor)
				} else {
					u += "?cursor=" + url.QueryEscape(tc.cursor)
				}
				resp, cancel := ssetest.Do(t, u, h)
				body, _ := io.ReadAll(resp.Body)
				cancel()
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("%s: status %d, body %s", how, resp.StatusCode, body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("%s: content type %q", how, ct)
				}
				var p struct{ Title string }
				if err := json.Unmarshal(body, &p); err != nil || p.Title == "" {
					t.Fatalf("%s: problem %s (%v)", how, body, err)
				}
			}
		})
	}
}

type getPage struct {
	Items []struct {
		ID      string              `json:"id"`
		Content string              `json:"content"`
		Headers map[string][]string `json:"headers"`
	} `json:"items"`
	Pagination struct {
		NextCursor *string `json:"nextCursor"`
		Limit      any     `json:"limit"`
	} `json:"pagination"`
}

func getJSON(t *testing.T, u string) getPage {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	var p getPage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
	if p.Pagination.NextCursor == nil || *p.Pagination.NextCursor == "" {
		t.Fatalf("GET %s: no nextCursor in %s", u, body)
	}
	return p
}

// Must show 3: HTTP GET pages through a topic with limit and cursor; pages
// never overlap; nextCursor is present even when a page is empty.
func TestGetPaging(t *testing.T) {
	k := newKafka(t, 3, "orders")
	addr := k.ListenAddrs()[0]
	all := numbered("m", 0, 25)
	produce(t, addr, "orders", all...)
	gw := gatewaytest.Start(t, kafkaAPI(addr, "earliest", ""))
	base := "http://" + gw.Addr() + "/orders?limit=10"

	// page fetches one page from cursor and returns its contents and the
	// cursor after it. A page holds at most the limit; how many arrive
	// within messagesLimitDuration depends on the machine, so the test
	// pages until it has what it expects rather than asserting sizes.
	page := func(cursor string) ([]string, string) {
		u := base
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		p := getJSON(t, u) // fails the test when nextCursor is missing
		var items []string
		for _, it := range p.Items {
			items = append(items, it.Content)
		}
		if len(items) > 10 {
			t.Fatalf("a page of %d items, over the limit of 10", len(items))
		}
		return items, *p.Pagination.NextCursor
	}
	collect := func(cursor string, n int) ([]string, string) {
		var got []string
		for range 30 {
			if len(got) >= n {
				break
			}
			items, next := page(cursor)
			got, cursor = append(got, items...), next
		}
		return got, cursor
	}

	got, cursor := collect("", len(all))
	assertSameSet(t, "pages", got, all) // no overlap, nothing missing
	if items, _ := page(cursor); len(items) != 0 {
		t.Fatalf("a page past the end holds %q", items)
	}

	// The cursor of the empty page resumes with what arrives next.
	more := numbered("n", 0, 3)
	produce(t, addr, "orders", more...)
	next, _ := collect(cursor, len(more))
	assertSameSet(t, "pages after the empty page", next, more)
}

// Must show 4: HTTP POST answers 202 only after Kafka acknowledged the
// record; request headers travel as record headers.
func TestPostWaitsForKafkaAck(t *testing.T) {
	k := newKafka(t, 3, "orders")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, kafkaAPI(addr, "earliest", ""))

	// Hold every produce request until released.
	release := make(chan struct{})
	var once sync.Once
	k.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		<-release
		return nil, nil, false
	})
	defer once.Do(func() { close(release) })

	answered := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+gw.Addr()+"/orders", strings.NewReader(`{"status":"paid"}`))
		req.Header.Set("X-Order-Id", "o-42")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(answered)
			return
		}
		resp.Body.Close()
		answered <- resp
	}()
	select {
	case resp := <-answered:
		t.Fatalf("POST answered %v before Kafka acknowledged", resp.Status)
	case <-time.After(500 * time.Millisecond):
	}
	once.Do(func() { close(release) })
	resp := <-answered
	if resp == nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %v", resp)
	}
	rec := consumeAll(t, addr, "orders", 1)[0]
	if string(rec.Value) != `{"status":"paid"}` {
		t.Fatalf("record value %q", rec.Value)
	}
	var orderID string
	for _, h := range rec.Headers {
		if strings.EqualFold(h.Key, "x-order-id") {
			orderID = string(h.Value)
		}
	}
	if orderID != "o-42" {
		t.Fatalf("record headers %v: x-order-id missing", rec.Headers)
	}
}

// Must show 4: with the broker down, POST answers 503 with Retry-After
// within the configured delivery timeout (2s here), not hanging.
func TestPostBrokerDown(t *testing.T) {
	k := newKafka(t, 1, "orders")
	gw := gatewaytest.Start(t, kafkaAPI(k.ListenAddrs()[0], "earliest", ""))
	k.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+gw.Addr()+"/orders", strings.NewReader("x"))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST with broker down did not answer: %v", err)
	}
	defer resp.Body.Close()
	// deliveryTimeout is 2s; the margin absorbs a busy machine, and still
	// tells "bounded by the timeout" from "hangs until the client gives up".
	if took := time.Since(start); took > 2*time.Second+8*time.Second {
		t.Fatalf("POST answered after %v, want about the 2s delivery timeout", took)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// Must show 5: WebSocket clients both receive and publish.
func TestWebSocketReceiveAndPublish(t *testing.T) {
	k := newKafka(t, 3, "orders")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, kafkaAPI(addr, "latest", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+gw.Addr()+"/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()

	if err := c.Write(ctx, websocket.MessageText, []byte("from-ws-1")); err != nil {
		t.Fatal(err)
	}
	// What the client published reaches Kafka, and comes back to it as a
	// subscriber, like every other record of the topic.
	produce(t, addr, "orders", "from-kafka-1")
	want := map[string]bool{"from-ws-1": true, "from-kafka-1": true}
	for len(want) > 0 {
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v (still waiting for %v)", err, want)
		}
		if typ != websocket.MessageText {
			t.Fatalf("frame type %v for UTF-8 content", typ)
		}
		delete(want, string(b))
	}
	recs := consumeAll(t, addr, "orders", 2)
	var values []string
	for _, r := range recs {
		values = append(values, string(r.Value))
	}
	assertSameSet(t, "kafka records", values, []string{"from-ws-1", "from-kafka-1"})
	c.Close(websocket.StatusNormalClosure, "")
}

// assertSameSet fails unless got holds exactly the values of want, each once.
func assertSameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	var missing, dup, extra []string
	wantSet := map[string]bool{}
	for _, w := range want {
		wantSet[w] = true
		if count[w] == 0 {
			missing = append(missing, w)
		}
	}
	for g, n := range count {
		if n > 1 {
			dup = append(dup, g)
		}
		if !wantSet[g] {
			extra = append(extra, g)
		}
	}
	if len(missing)+len(dup)+len(extra) > 0 {
		t.Fatalf("%s: missing %v, repeated %v, unexpected %v", what, missing, dup, extra)
	}
}
