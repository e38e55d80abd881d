package sse

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/entrypoints/internal/memtest"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// serve mounts an sse entrypoint configured with cfg on a memtest endpoint.
func serve(t *testing.T, cfg Config, o memtest.Options, qos mediation.QoS) *memtest.Server {
	t.Helper()
	ep, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return memtest.Serve(t, memtest.New(o), mediation.EntrypointBinding{Type: "sse", Entrypoint: ep, QoS: qos})
}

// get sends an EventSource-like request; the stream ends with the test.
func get(t *testing.T, srv *memtest.Server, query string, header http.Header) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), memtest.WaitTimeout)
	u := srv.URL + "/events"
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return resp
}

// stream opens a stream and checks that it started.
func stream(t *testing.T, srv *memtest.Server, query string, header http.Header) *eventReader {
	t.Helper()
	resp := get(t, srv, query, header)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	return newEventReader(resp.Body)
}

func mustEvent(t *testing.T, r *eventReader) item {
	t.Helper()
	ev, err := r.nextEvent()
	if err != nil {
		t.Fatalf("reading an event: %v", err)
	}
	return ev
}

// offsetOf decodes an SSE id into the memtest offset of its message.
func offsetOf(t *testing.T, id string) int64 {
	t.Helper()
	c, err := mediation.ParseCursor(id)
	if err != nil {
		t.Fatalf("id %q is not a cursor: %v", id, err)
	}
	next, ok := c.Next(memtest.Stream, 0)
	if !ok {
		t.Fatalf("cursor %q has no position in %q", id, memtest.Stream)
	}
	return next - 1
}

func TestStreamThenResumeFromLastEventID(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{DefaultStart: mediation.StartEarliest}, mediation.QoSAtLeastOnce)
	contents := []string{"zero", "one\ntwo", "three\r\nfour", "five", "six"}
	srv.Endpoint.Append(contents...)

	resp := get(t, srv, "", nil)
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	r := newEventReader(resp.Body)
	var ids []string
	for i, c := range contents {
		ev := mustEvent(t, r)
		if want := normalizeNewlines(c); ev.Data != want || ev.Event != "message" {
			t.Fatalf("event %d: type %q data %q, want message %q", i, ev.Event, ev.Data, want)
		}
		if off := offsetOf(t, ev.LastID); off != int64(i) {
			t.Fatalf("event %d has the id of offset %d", i, off)
		}
		ids = append(ids, ev.LastID)
	}
	// Every message the client read counts as delivered.
	srv.Endpoint.Await(t, "acks of the 5 delivered messages", func(s memtest.State) bool { return s.AckedAll(0, 5) })

	// A reconnect after the third message gets exactly the unseen ones, then
	// what arrives live.
	r = stream(t, srv, "", http.Header{"Last-Event-Id": {ids[2]}})
	for _, want := range []string{"five", "six"} {
		if ev := mustEvent(t, r); ev.Data != want {
			t.Fatalf("after resume got %q, want %q", ev.Data, want)
		}
	}
	srv.Endpoint.Append("seven")
	if ev := mustEvent(t, r); ev.Data != "seven" || offsetOf(t, ev.LastID) != 5 {
		t.Fatalf("live after resume got %q (id %q), want seven at offset 5", ev.Data, ev.LastID)
	}
}

func TestResumePosition(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{DefaultStart: mediation.StartEarliest}, mediation.QoSAtLeastOnce)
	srv.Endpoint.Append("m0", "m1", "m2", "m3", "m4")
	after := func(off int64) string {
		return mediation.NewCursor(mediation.Position{Stream: memtest.Stream, Offset: off + 1}).String()
	}
	tests := []struct {
		desc   string
		query  string
		header http.Header
		first  string
	}{
		{desc: "no position starts at the API default", first: "m0"},
		{desc: "query cursor", query: "cursor=" + after(1), first: "m2"},
		{desc: "Last-Event-ID", header: http.Header{"Last-Event-Id": {after(2)}}, first: "m3"},
		{desc: "Last-Event-ID wins over the query", query: "cursor=" + after(0), header: http.Header{"Last-Event-Id": {after(3)}}, first: "m4"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if ev := mustEvent(t, stream(t, srv, tt.query, tt.header)); ev.Data != tt.first {
				t.Fatalf("first event %q, want %q", ev.Data, tt.first)
			}
		})
	}
}

func TestBadCursorIs400(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{DefaultStart: mediation.StartEarliest}, mediation.QoSAtLeastOnce)
	srv.Endpoint.Append("m0")
	other := mediation.NewCursor(mediation.Position{Stream: "orders", Offset: 3}).String()
	beyond := mediation.NewCursor(mediation.Position{Stream: memtest.Stream, Offset: 99}).String()
	tests := []struct {
		desc   string
		query  string
		header http.Header
	}{
		{desc: "not base64", query: "cursor=" + url.QueryEscape("!!not a cursor!!")},
		{desc: "truncated token", query: "cursor=" + other[:len(other)-3]},
		{desc: "cursor of another source", query: "cursor=" + other},
		{desc: "beyond the end", query: "cursor=" + beyond},
		{desc: "bad Last-Event-ID", header: http.Header{"Last-Event-Id": {"garbage"}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			resp := get(t, srv, tt.query, tt.header)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q, want application/problem+json", ct)
			}
			var p mediation.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if p.Status != 400 || !strings.Contains(p.Title, "cursor") {
				t.Fatalf("problem %+v does not say the cursor is wrong", p)
			}
		})
	}
	t.Cleanup(func() {
		if open := srv.Endpoint.State().Open; open != 0 {
			t.Errorf("%d subscriptions left open by refused requests", open)
		}
	})
}

func TestHeartbeatWhenIdle(t *testing.T) {
	t.Parallel()
	// Live start with QoS auto: the client shares the API's subscription.
	srv := serve(t, Config{HeartbeatInterval: 100 * time.Millisecond}, memtest.Options{}, mediation.QoSAuto)
	r := stream(t, srv, "", nil)
	it, err := r.next()
	if err != nil {
		t.Fatal(err)
	}
	if !it.IsComment || it.Comment != "" {
		t.Fatalf("first item on an idle stream is %+v, want an empty comment", it)
	}
	// A message still arrives between heartbeats.
	srv.Endpoint.Append("after heartbeat")
	if ev := mustEvent(t, r); ev.Data != "after heartbeat" {
		t.Fatalf("got %q", ev.Data)
	}
}

func TestGoawayOnDrain(t *testing.T) {
	t.Parallel()
	for _, qos := range []mediation.QoS{mediation.QoSAuto, mediation.QoSAtLeastOnce} {
		t.Run(string(qos), func(t *testing.T) {
			t.Parallel()
			srv := serve(t, DefaultConfig(), memtest.Options{}, qos)
			r := stream(t, srv, "", nil)
			srv.Endpoint.Append("before drain")
			if ev := mustEvent(t, r); ev.Data != "before drain" {
				t.Fatalf("got %q", ev.Data)
			}
			srv.Drain()
			ev := mustEvent(t, r)
			if ev.Event != "goaway" || ev.Data != "{}" {
				t.Fatalf("after drain got %+v, want a goaway event", ev)
			}
			if it, err := r.next(); !errors.Is(err, io.EOF) {
				t.Fatalf("stream still open after goaway: %+v, %v", it, err)
			}
		})
	}
}

func TestHeadersAndMetadataAsComments(t *testing.T) {
	t.Parallel()
	srv := serve(t, Config{HeadersAsComment: true, MetadataAsComment: true, Retry: 2500 * time.Millisecond},
		memtest.Options{DefaultStart: mediation.StartEarliest}, mediation.QoSAtLeastOnce)
	m := mediation.NewMessage([]byte("payload"))
	m.Headers = mediation.Headers{"x-b": {"2"}, "x-a": {"1", "line\nbreak"}}
	if err := srv.Endpoint.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	r := stream(t, srv, "", nil)
	var comments []string
	for {
		it, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if it.IsComment {
			comments = append(comments, it.Comment)
			continue
		}
		if it.Data != "payload" || it.Retry != 2500 {
			t.Fatalf("event %+v, want payload with retry 2500", it)
		}
		break
	}
	want := []string{"header: x-a=1", "header: x-a=linebreak", "header: x-b=2",
		"metadata: offset=0", "metadata: partition=0", "metadata: topic=mem"}
	if strings.Join(comments, "|") != strings.Join(want, "|") {
		t.Fatalf("comments %q, want %q", comments, want)
	}
}

func TestUnavailableIs503(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{}, mediation.QoSAtLeastOnce)
	srv.Endpoint.SetUnavailable(true)
	resp := get(t, srv, "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestLiveSource(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{NoReplay: true}, mediation.QoSAuto)

	t.Run("Last-Event-ID of a live source resumes live", func(t *testing.T) {
		r := stream(t, srv, "", http.Header{"Last-Event-Id": {"41"}})
		srv.Endpoint.Append("live")
		ev := mustEvent(t, r)
		if ev.Data != "live" || ev.LastID == "" {
			t.Fatalf("got %+v, want live with the message id as id", ev)
		}
	})
	t.Run("an explicit cursor is refused", func(t *testing.T) {
		resp := get(t, srv, "cursor=41", nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", resp.StatusCode)
		}
	})
}

func TestAccepts(t *testing.T) {
	t.Parallel()
	e, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc   string
		method string
		header http.Header
		want   bool
	}{
		{desc: "EventSource", method: "GET", header: http.Header{"Accept": {"text/event-stream"}}, want: true},
		{desc: "among others", method: "GET", header: http.Header{"Accept": {"application/json, Text/Event-Stream;q=0.5"}}, want: true},
		{desc: "refused with q=0", method: "GET", header: http.Header{"Accept": {"text/event-stream;q=0"}}},
		{desc: "wildcard is not enough", method: "GET", header: http.Header{"Accept": {"*/*"}}},
		{desc: "no Accept", method: "GET"},
		{desc: "POST", method: "POST", header: http.Header{"Accept": {"text/event-stream"}}},
		{desc: "websocket upgrade", method: "GET", header: http.Header{"Accept": {"text/event-stream"}, "Upgrade": {"websocket"}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r, _ := http.NewRequest(tt.method, "http://gw/events", nil)
			r.Header = tt.header
			if r.Header == nil {
				r.Header = http.Header{}
			}
			if got := e.Accepts(r); got != tt.want {
				t.Fatalf("Accepts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	p, ok := plugins.Default.Entrypoint("sse")
	if !ok {
		t.Fatal("sse is not registered")
	}
	if p.Listener != "http" || p.Operations != mediation.OpSubscribe {
		t.Fatalf("registered as %+v", p)
	}
	if c := p.Config().(*Config); c.HeartbeatInterval != 15*time.Second {
		t.Fatalf("default heartbeat %s, want 15s", c.HeartbeatInterval)
	}
	tests := []struct {
		desc  string
		cfg   Config
		field string
	}{
		{desc: "defaults", cfg: DefaultConfig()},
		{desc: "heartbeat off", cfg: Config{}},
		{desc: "negative heartbeat", cfg: Config{HeartbeatInterval: -time.Second}, field: "heartbeatInterval"},
		{desc: "heartbeat too short", cfg: Config{HeartbeatInterval: time.Millisecond}, field: "heartbeatInterval"},
		{desc: "negative retry", cfg: Config{Retry: -1}, field: "retry"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := p.New(plugins.Context{}, &tt.cfg)
			var fe *plugins.FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Fatalf("error %v, want one on %s", err, tt.field)
			}
		})
	}
}
