package websocket

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	ws "github.com/coder/websocket"

	"github.com/sluicegw/sluice/entrypoints/internal/memtest"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func serve(t *testing.T, cfg Config, o memtest.Options, qos mediation.QoS) *memtest.Server {
	t.Helper()
	ep, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return memtest.Serve(t, memtest.New(o), mediation.EntrypointBinding{Type: "websocket", Entrypoint: ep, QoS: qos})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), memtest.WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dial connects; the connection is dropped when the test ends.
func dial(t *testing.T, srv *memtest.Server, query string, header http.Header) (*ws.Conn, *http.Response, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/live"
	if query != "" {
		u += "?" + query
	}
	conn, resp, err := ws.Dial(testCtx(t), u, &ws.DialOptions{HTTPClient: srv.Client(), HTTPHeader: header})
	if conn != nil {
		t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, resp, err
}

func mustDial(t *testing.T, srv *memtest.Server, query string) *ws.Conn {
	t.Helper()
	conn, _, err := dial(t, srv, query, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func mustRead(t *testing.T, conn *ws.Conn) (ws.MessageType, string) {
	t.Helper()
	typ, b, err := conn.Read(testCtx(t))
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return typ, string(b)
}

// closeCode reads until the server closes and returns its close code.
func closeCode(t *testing.T, conn *ws.Conn) ws.StatusCode {
	t.Helper()
	for {
		_, _, err := conn.Read(testCtx(t))
		if err != nil {
			return ws.CloseStatus(err)
		}
	}
}

func TestReceiveAndPublish(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{DefaultStart: mediation.StartEarliest}, mediation.QoSAtLeastOnce)
	srv.Endpoint.Append("text message", "\xff\xfebinary")
	conn := mustDial(t, srv, "")

	if typ, got := mustRead(t, conn); typ != ws.MessageText || got != "text message" {
		t.Fatalf("first frame %v %q", typ, got)
	}
	if typ, got := mustRead(t, conn); typ != ws.MessageBinary || got != "\xff\xfebinary" {
		t.Fatalf("second frame %v %q", typ, got)
	}
	srv.Endpoint.Await(t, "acks of both sent frames", func(s memtest.State) bool { return s.AckedAll(0, 2) })

	ctx := testCtx(t)
	if err := conn.Write(ctx, ws.MessageText, []byte("from client")); err != nil {
		t.Fatal(err)
	}
	if err := conn.Write(ctx, ws.MessageBinary, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	st := srv.Endpoint.Await(t, "two published frames", func(s memtest.State) bool { return len(s.Log) == 4 })
	if string(st.Log[2].Content) != "from client" || string(st.Log[3].Content) != "\x00\x01\x02" {
		t.Fatalf("published %q and %q", st.Log[2].Content, st.Log[3].Content)
	}
	// A client's own publishes come back on its stream, like any message.
	if _, got := mustRead(t, conn); got != "from client" {
		t.Fatalf("got %q", got)
	}

	if err := conn.Close(ws.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	srv.Endpoint.Await(t, "the subscription to close", func(s memtest.State) bool { return s.Open == 0 })
}

func TestResumeFromCursor(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{DefaultStart: mediation.StartEarliest}, mediation.QoSAtLeastOnce)
	srv.Endpoint.Append("m0", "m1", "m2")
	cursor := mediation.NewCursor(mediation.Position{Stream: memtest.Stream, Offset: 2}).String()
	conn := mustDial(t, srv, "cursor="+cursor)
	if _, got := mustRead(t, conn); got != "m2" {
		t.Fatalf("first frame after the cursor %q, want m2", got)
	}
}

func TestRefusedBeforeUpgrade(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{DefaultStart: mediation.StartEarliest}, mediation.QoSAtLeastOnce)
	down := serve(t, DefaultConfig(), memtest.Options{}, mediation.QoSAtLeastOnce)
	down.Endpoint.SetUnavailable(true)
	tests := []struct {
		desc   string
		srv    *memtest.Server
		query  string
		status int
	}{
		{desc: "malformed cursor", srv: srv, query: "cursor=nope!", status: http.StatusBadRequest},
		{desc: "broker unavailable", srv: down, status: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, resp, err := dial(t, tt.srv, tt.query, nil)
			if err == nil || resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("dial: %v, response %+v; want HTTP %d", err, resp, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}

func TestCloseCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		cfg  Config
		opts memtest.Options
		// act does something on the open connection that ends it.
		act  func(t *testing.T, srv *memtest.Server, conn *ws.Conn)
		want ws.StatusCode
	}{
		{desc: "gateway drain", opts: memtest.Options{}, want: ws.StatusGoingAway,
			act: func(t *testing.T, srv *memtest.Server, conn *ws.Conn) { srv.Drain() }},
		{desc: "gateway drain, publish-only", opts: memtest.Options{NoSubscribe: true}, want: ws.StatusGoingAway,
			act: func(t *testing.T, srv *memtest.Server, conn *ws.Conn) { srv.Drain() }},
		{desc: "publish on a subscribe-only API", opts: memtest.Options{NoPublish: true}, want: ws.StatusPolicyViolation,
			act: func(t *testing.T, srv *memtest.Server, conn *ws.Conn) {
				_ = conn.Write(testCtx(t), ws.MessageText, []byte("x"))
			}},
		{desc: "publish fails", opts: memtest.Options{}, want: ws.StatusInternalError,
			act: func(t *testing.T, srv *memtest.Server, conn *ws.Conn) {
				srv.Endpoint.SetUnavailable(true)
				_ = conn.Write(testCtx(t), ws.MessageText, []byte("x"))
			}},
		{desc: "frame over maxMessageSize", cfg: Config{MessageType: TypeAuto, MaxMessageSize: 10}, want: ws.StatusMessageTooBig,
			act: func(t *testing.T, srv *memtest.Server, conn *ws.Conn) {
				_ = conn.Write(testCtx(t), ws.MessageText, []byte("01234567890"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if tt.cfg.MessageType == "" {
				tt.cfg = DefaultConfig()
			}
			srv := serve(t, tt.cfg, tt.opts, mediation.QoSAuto)
			conn := mustDial(t, srv, "")
			tt.act(t, srv, conn)
			if got := closeCode(t, conn); got != tt.want {
				t.Fatalf("closed with %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPublishOnly(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{NoSubscribe: true}, mediation.QoSAuto)
	conn := mustDial(t, srv, "")
	if err := conn.Write(testCtx(t), ws.MessageText, []byte("one way")); err != nil {
		t.Fatal(err)
	}
	st := srv.Endpoint.Await(t, "the published frame", func(s memtest.State) bool { return len(s.Log) == 1 })
	if string(st.Log[0].Content) != "one way" {
		t.Fatalf("published %q", st.Log[0].Content)
	}
}

func TestMessageType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ      string
		content  string
		wantType ws.MessageType
		want     string
	}{
		{typ: TypeAuto, content: "héllo", wantType: ws.MessageText, want: "héllo"},
		{typ: TypeAuto, content: "\xff", wantType: ws.MessageBinary, want: "\xff"},
		{typ: TypeBinary, content: "héllo", wantType: ws.MessageBinary, want: "héllo"},
		{typ: TypeText, content: "ok\xff", wantType: ws.MessageText, want: "ok\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.content, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.MessageType = tt.typ
			srv := serve(t, cfg, memtest.Options{DefaultStart: mediation.StartEarliest}, mediation.QoSAuto)
			srv.Endpoint.Append(tt.content)
			if typ, got := mustRead(t, mustDial(t, srv, "")); typ != tt.wantType || got != tt.want {
				t.Fatalf("frame %v %q, want %v %q", typ, got, tt.wantType, tt.want)
			}
		})
	}
}

func TestOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		patterns []string
		origin   string
		ok       bool
	}{
		{desc: "any origin by default", origin: "https://elsewhere.example", ok: true},
		{desc: "allowed by pattern", patterns: []string{"*.example.com"}, origin: "https://app.example.com", ok: true},
		{desc: "refused by pattern", patterns: []string{"*.example.com"}, origin: "https://evil.example.net"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.OriginPatterns = tt.patterns
			srv := serve(t, cfg, memtest.Options{}, mediation.QoSAuto)
			_, resp, err := dial(t, srv, "", http.Header{"Origin": {tt.origin}})
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && (err == nil || resp == nil || resp.StatusCode != http.StatusForbidden) {
				t.Fatalf("dial: %v, response %+v; want 403", err, resp)
			}
		})
	}
}

func TestUnresponsiveClientIsDropped(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.PingInterval = minPing
	srv := serve(t, cfg, memtest.Options{}, mediation.QoSAtLeastOnce)
	_ = mustDial(t, srv, "") // never reads, so never answers a ping
	srv.Endpoint.Await(t, "the subscription to open", func(s memtest.State) bool { return s.Open == 1 })
	srv.Endpoint.Await(t, "the silent client to be dropped", func(s memtest.State) bool { return s.Open == 0 })
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
		{desc: "upgrade", method: "GET", header: http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, want: true},
		{desc: "upgrade, any case", method: "GET", header: http.Header{"Upgrade": {"WebSocket"}}, want: true},
		{desc: "plain GET", method: "GET", header: http.Header{}},
		{desc: "h2c upgrade", method: "GET", header: http.Header{"Upgrade": {"h2c"}}},
		{desc: "POST", method: "POST", header: http.Header{"Upgrade": {"websocket"}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r, _ := http.NewRequest(tt.method, "http://gw/live", nil)
			r.Header = tt.header
			if got := e.Accepts(r); got != tt.want {
				t.Fatalf("Accepts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	p, ok := plugins.Default.Entrypoint("websocket")
	if !ok {
		t.Fatal("websocket is not registered")
	}
	if c := p.Config().(*Config); c.MessageType != TypeAuto || c.MaxMessageSize != 1<<20 || c.PingInterval != 30*time.Second {
		t.Fatalf("defaults %+v", c)
	}
	tests := []struct {
		desc  string
		edit  func(*Config)
		field string
	}{
		{desc: "defaults", edit: func(*Config) {}},
		{desc: "no pings", edit: func(c *Config) { c.PingInterval = 0 }},
		{desc: "bad type", edit: func(c *Config) { c.MessageType = "json" }, field: "messageType"},
		{desc: "zero size", edit: func(c *Config) { c.MaxMessageSize = 0 }, field: "maxMessageSize"},
		{desc: "ping too often", edit: func(c *Config) { c.PingInterval = time.Millisecond }, field: "pingInterval"},
		{desc: "bad origin pattern", edit: func(c *Config) { c.OriginPatterns = []string{"ok.com", "[bad"} }, field: "originPatterns[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			c := DefaultConfig()
			tt.edit(&c)
			_, err := p.New(plugins.Context{}, &c)
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

func TestTruncateReason(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100) // 200 bytes
	got := truncateReason(long)
	if len(got) > 123 || !strings.HasPrefix(long, got) || len(got) < 121 {
		t.Fatalf("truncated to %d bytes: %q", len(got), got)
	}
}
