package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluicegw/sluice/examples/quickstart"
	"github.com/sluicegw/sluice/internal/browsertest"
	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
)

// Must show 6: a page on another origin, in headless Chromium, receives the
// stream through EventSource (CORS on the http listener), and its POST
// button publishes through the gateway (preflighted fetch).
func TestBrowserEventSourceCrossOrigin(t *testing.T) {
	k := newKafka(t, 3, "orders")
	addr := k.ListenAddrs()[0]

	// The demo page, served from its own origin (127.0.0.1:<port>).
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(quickstart.IndexHTML)
	}))
	t.Cleanup(page.Close)

	gw := gatewaytest.Start(t, fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: orders
    listeners:
      - type: http
        paths: [/orders]
        cors: {allowOrigins: [%q]}
        entrypoints: [{type: sse}, {type: http-post}]
    endpointGroups:
      - name: default
        type: kafka
        sharedConfiguration:
          bootstrapServers: [%q]
          consumer: {topics: [orders], autoOffsetReset: earliest}
          producer: {topic: orders}
        endpoints: [{name: k1}]
`, page.URL, addr))
	// "localhost" is another origin than the page's 127.0.0.1.
	apiBase := "http://localhost:" + gw.Addr()[strings.LastIndex(gw.Addr(), ":")+1:]

	produce(t, addr, "orders", `{"id":1,"status":"paid"}`, `{"id":2,"status":"pending"}`)
	b := browsertest.New(t)
	text := b.WaitText(t, page.URL+"/?api="+apiBase, "#events", `{"id":2,"status":"pending"}`, 60*time.Second)
	if !strings.Contains(text, `{"id":1,"status":"paid"}`) {
		t.Fatalf("page shows %q", text)
	}
	// Each event carries its cursor as the EventSource lastEventId.
	if !strings.Contains(text, "id ") {
		t.Fatalf("page shows no event id: %q", text)
	}
	// Messages produced while the page is open arrive live.
	produce(t, addr, "orders", `{"id":3,"status":"paid"}`)
	b.WaitText(t, "", "#events", `{"id":3,"status":"paid"}`, 60*time.Second)

	// The page's POST button: a cross-origin JSON POST, preflighted.
	b.Run(t, chromedp.Click("#send"))
	b.WaitText(t, "", "#postResult", "202", 60*time.Second)
	b.WaitText(t, "", "#events", `{"id": 0, "status": "paid", "amount": 42}`, 60*time.Second)
}
