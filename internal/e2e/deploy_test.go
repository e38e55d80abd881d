package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/server"
	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/internal/testutil/ssetest"
	"github.com/sluicegw/sluice/plugins"
)

func mockAPI(id, path, content string) string {
	return fmt.Sprintf(`
id: %s
listeners:
  - {type: http, paths: [%s], entrypoints: [{type: sse}, {type: http-get, configuration: {messagesLimitCount: 1, messagesLimitDuration: 5s}}]}
endpointGroups:
  - {name: default, type: mock, endpoints: [{name: m}], sharedConfiguration: {messageInterval: 50ms, messageContent: %q}}
`, id, path, content)
}

func deploy(t *testing.T, gw *server.Server, doc string) error {
	t.Helper()
	api, err := config.ParseAPI("put.yaml", []byte(doc), plugins.Default)
	if err != nil {
		t.Fatalf("ParseAPI: %v", err)
	}
	return gw.Deploy(context.Background(), api)
}

// Deploying an API at run time serves it at once, and an SSE client of
// another API stays connected and keeps receiving throughout.
func TestDeployKeepsOtherClients(t *testing.T) {
	k := newKafka(t, 1, "orders")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, kafkaAPI(addr, "latest", ""))
	c := ssetest.Open(t, "http://"+gw.Addr()+"/orders", nil)
	produce(t, addr, "orders", "before")
	if ev := c.Next(t, 20*time.Second); ev.Data != "before" {
		t.Fatalf("got %q", ev.Data)
	}

	if err := deploy(t, gw, mockAPI("pets", "/pets", "v1")); err != nil {
		t.Fatal(err)
	}
	if p := getJSON(t, "http://"+gw.Addr()+"/pets"); len(p.Items) != 1 || p.Items[0].Content != "v1" {
		t.Fatalf("new API served %+v", p.Items)
	}
	// Redeploy replaces it; the old version's clients are drained.
	old := ssetest.Open(t, "http://"+gw.Addr()+"/pets", nil)
	if err := deploy(t, gw, mockAPI("pets", "/pets", "v2")); err != nil {
		t.Fatal(err)
	}
	for ev := range old.Events {
		if ev.Event == "goaway" {
			break
		}
	}
	if p := getJSON(t, "http://"+gw.Addr()+"/pets"); p.Items[0].Content != "v2" {
		t.Fatalf("after redeploy: %q", p.Items[0].Content)
	}

	// A path another API serves is refused, and nothing changes.
	if err := deploy(t, gw, mockAPI("thief", "/orders", "x")); err == nil {
		t.Fatal("deploying over /orders of another API succeeded")
	}

	if err := gw.Undeploy(context.Background(), "pets"); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, "http://"+gw.Addr()+"/pets"); code != http.StatusNotFound {
		t.Fatalf("undeployed API answers %d", code)
	}
	if err := gw.Undeploy(context.Background(), "pets"); !errors.Is(err, server.ErrUnknownAPI) {
		t.Fatalf("second undeploy: %v", err)
	}

	// The first client never noticed.
	produce(t, addr, "orders", "after")
	if ev := c.Next(t, 20*time.Second); ev.Data != "after" {
		t.Fatalf("got %q", ev.Data)
	}
}
