package nats_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	_ "github.com/sluicegw/sluice/endpoints/nats"
	_ "github.com/sluicegw/sluice/entrypoints/httppost"
	_ "github.com/sluicegw/sluice/entrypoints/sse"
	_ "github.com/sluicegw/sluice/entrypoints/websocket"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/server"
	"github.com/sluicegw/sluice/internal/testutil/ssetest"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// End-to-end: a gateway built from YAML in front of the machine's NATS
// server, reached over real HTTP, SSE and WebSocket.

const (
	e2eServer  = "127.0.0.1:4222"
	e2eTimeout = 30 * time.Second
)

// natsURL returns the machine's NATS server, skipping the test when it is
// not running (failing instead with SLUICE_REQUIRE_SERVICES=1).
func natsURL(t *testing.T) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", e2eServer, 2*time.Second)
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("NATS is required (SLUICE_REQUIRE_SERVICES=1) but %s is unreachable: %v", e2eServer, err)
		}
		t.Skipf("NATS with JetStream is not running at %s: %v", e2eServer, err)
	}
	_ = conn.Close()
	return "nats://" + e2eServer
}

// fixture is a gateway with two APIs: /orders on a JetStream stream (read
// from the earliest message) and /live on a core NATS subject.
type fixture struct {
	base    string // http://host:port
	stream  string // the stream of /orders, subjects "<stream>.>"
	subject string // the core subject of /live
	nc      *nats.Conn
	js      jetstream.JetStream
}

func newFixture(t *testing.T, streamCfg jetstream.StreamConfig) *fixture {
	t.Helper()
	url := natsURL(t)
	id := fmt.Sprintf("sluice_e2e_%08x", rand.Uint32())
	f := &fixture{stream: id, subject: id + "_live"}
	var err error
	if f.nc, err = nats.Connect(url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.nc.Close)
	f.js, _ = jetstream.New(f.nc)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	streamCfg.Name, streamCfg.Subjects = f.stream, []string{f.stream + ".>"}
	if _, err := f.js.CreateStream(ctx, streamCfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.js.DeleteStream(context.Background(), f.stream) })

	yaml := fmt.Sprintf(`
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
        type: nats
        sharedConfiguration:
          servers: [%[1]q]
          consumer: {stream: %[2]s, autoOffsetReset: earliest}
          producer: {subject: %[2]s.orders}
        endpoints: [{name: n1}]
  - id: live
    type: message
    listeners:
      - type: http
        paths: [/live]
        entrypoints:
          - {type: sse, configuration: {heartbeatInterval: 1s}}
          - {type: websocket}
    endpointGroups:
      - name: default
        type: nats
        sharedConfiguration:
          servers: [%[1]q]
          consumer: {subject: %[3]s}
          producer: {subject: %[3]s}
        endpoints: [{name: n1}]
`, url, f.stream, f.subject)
	cfg, err := config.Parse(t.Name()+".yaml", []byte(yaml), plugins.Default)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Server.DataDir = t.TempDir() // the store of this gateway alone
	srv, err := server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	f.base = "http://" + srv.Addr()
	return f
}

// The configuration loader refuses at-least-once on core NATS, which
// cannot deliver a message again.
func TestE2ECoreRefusesAtLeastOnce(t *testing.T) {
	yaml := `
server: {http: {listen: "127.0.0.1:0"}, admin: {listen: "off"}}
apis:
  - id: live
    type: message
    listeners:
      - type: http
        paths: [/live]
        entrypoints: [{type: sse, qos: at-least-once}]
    endpointGroups:
      - {name: default, type: nats, sharedConfiguration: {servers: ["nats://127.0.0.1:4222"], consumer: {subject: live}}, endpoints: [{name: n1}]}
`
	_, err := config.Parse("core.yaml", []byte(yaml), plugins.Default)
	if err == nil || !strings.Contains(err.Error(), "at-least-once") || !strings.Contains(err.Error(), "core.yaml:") {
		t.Fatalf("config.Parse = %v, want a positioned error about at-least-once", err)
	}
	t.Log(err)
}

// An HTTP POST lands on the stream with its request headers as NATS
// headers, and 202 comes once the stream stored it (its PubAck): the
// message is there when the client hears back. A message the stream
// refuses is not accepted.
func TestE2EPostLandsWithHeaders(t *testing.T) {
	f := newFixture(t, jetstream.StreamConfig{Storage: jetstream.FileStorage, MaxMsgSize: 4096})
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	stream, err := f.js.Stream(ctx, f.stream)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		body := fmt.Sprintf(`{"order": %d}`, i)
		req, _ := http.NewRequest(http.MethodPost, f.base+"/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Add("X-Trace", "t1")
		req.Header.Add("X-Trace", "t2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %d %s", resp.StatusCode, b)
		}
		// No waiting: the 202 came after the PubAck.
		m, err := stream.GetLastMsgForSubject(ctx, f.stream+".orders")
		if err != nil {
			t.Fatalf("after 202 the stream has no message: %v", err)
		}
		if string(m.Data) != body || m.Sequence != uint64(i+1) {
			t.Fatalf("last message %q at %d, want %q at %d", m.Data, m.Sequence, body, i+1)
		}
		if v := m.Header.Values("x-trace"); !slices.Equal(v, []string{"t1", "t2"}) || m.Header.Get("content-type") != "application/json" {
			t.Fatalf("NATS headers %v", m.Header)
		}
	}

	resp, err := http.Post(f.base+"/orders", "text/plain", strings.NewReader(strings.Repeat("x", 8000)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		t.Fatal("a message larger than the stream's limit was accepted")
	}
	info, err := stream.Info(ctx)
	if err != nil || info.State.Msgs != 3 {
		t.Fatalf("stream holds %v messages (%v), want 3", info.State.Msgs, err)
	}
}

// A raw NATS publish reaches an SSE client and a WebSocket client, on a
// core subject and on a stream.
func TestE2ERawPublishReachesClients(t *testing.T) {
	f := newFixture(t, jetstream.StreamConfig{Storage: jetstream.MemoryStorage})
	for _, tc := range []struct {
		desc, path, subject string
	}{
		{"core NATS", "/live", f.subject},
		{"JetStream", "/orders", f.stream + ".raw"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			sse := ssetest.Open(t, f.base+tc.path, nil)
			ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, strings.Replace(f.base, "http", "ws", 1)+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			wsGot := make(chan string, 64)
			go func() {
				defer close(wsGot)
				for {
					_, b, err := ws.Read(ctx)
					if err != nil {
						return
					}
					wsGot <- string(b)
				}
			}()

			// A live client sees what is published after it subscribed:
			// publish until both saw a message, then a final one.
			sseSaw, wsSaw := false, false
			for i := 0; !sseSaw || !wsSaw; i++ {
				if i > int(e2eTimeout/(100*time.Millisecond)) {
					t.Fatalf("no message reached the clients (SSE %v, WebSocket %v)", sseSaw, wsSaw)
				}
				if err := f.nc.Publish(tc.subject, fmt.Appendf(nil, "warm-up-%d", i)); err != nil {
					t.Fatal(err)
				}
				deadline := time.After(100 * time.Millisecond)
			drain:
				for {
					select {
					case ev := <-sse.Events:
						sseSaw = sseSaw || ev.Event == "message"
					case _, ok := <-wsGot:
						wsSaw = wsSaw || ok
					case <-deadline:
						break drain
					}
				}
			}
			if err := f.nc.Publish(tc.subject, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			if ev := sse.NextData(t, "hello", e2eTimeout); ev.Data != "hello" {
				t.Fatalf("SSE got %q", ev.Data)
			}
			for m := range wsGot {
				if m == "hello" {
					ws.Close(websocket.StatusNormalClosure, "")
					return
				}
			}
			t.Fatal("the WebSocket client never got the message")
		})
	}
}

// An SSE client resuming from the Last-Event-ID of any event of a
// JetStream-backed stream gets exactly what it had not seen, new messages
// included: nothing lost, nothing repeated.
func TestE2ESSEResumeFromLastEventID(t *testing.T) {
	f := newFixture(t, jetstream.StreamConfig{Storage: jetstream.FileStorage})
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	publish := func(contents ...string) {
		t.Helper()
		for _, c := range contents {
			if _, err := f.js.Publish(ctx, f.stream+".orders", []byte(c)); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := numbered("old", 0, 20)
	publish(all...)

	first := ssetest.Open(t, f.base+"/orders", nil)
	var seen []ssetest.Event
	for range all {
		ev := first.Next(t, e2eTimeout)
		if ev.ID == "" {
			t.Fatalf("event %q has no id", ev.Data)
		}
		seen = append(seen, ev)
	}
	if got := ssetest.Data(seen); !slices.Equal(got, all) {
		t.Fatalf("the first client got %v", got)
	}
	first.Close()

	for _, k := range []int{0, 7, len(seen) - 1} {
		again := ssetest.Open(t, f.base+"/orders", http.Header{"Last-Event-Id": {seen[k].ID}})
		fresh := numbered(fmt.Sprintf("after%d", k), 0, 3)
		publish(fresh...)
		want := append(ssetest.Data(seen[k+1:]), fresh...)
		var got []ssetest.Event
		for range want {
			got = append(got, again.Next(t, e2eTimeout))
		}
		again.ExpectQuiet(t, 500*time.Millisecond)
		if !slices.Equal(ssetest.Data(got), want) {
			t.Fatalf("resuming after event %d got %v, want %v", k, ssetest.Data(got), want)
		}
		again.Close()
		seen = append(seen, got[len(got)-len(fresh):]...)
	}

	// A cursor of another API's stream is a 400, not a restart from zero.
	resp, cancelBad := ssetest.Do(t, f.base+"/orders", http.Header{"Last-Event-Id": {mediation.NewCursor(mediation.Position{Stream: "OTHER", Offset: 1}).String()}})
	defer cancelBad()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a foreign cursor: status %d, want 400", resp.StatusCode)
	}
}

func numbered(prefix string, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%03d", prefix, i))
	}
	return out
}
