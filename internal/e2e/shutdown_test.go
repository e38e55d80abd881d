package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/internal/testutil/ssetest"
)

// Graceful shutdown: open SSE clients get `event: goaway`, WebSocket clients
// a 1001 close, and the gateway stops within its drain timeout.
func TestShutdownSaysGoodbye(t *testing.T) {
	k := newKafka(t, 1, "orders")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, kafkaAPI(addr, "latest", ""))
	sse := ssetest.Open(t, "http://"+gw.Addr()+"/orders", nil)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+gw.Addr()+"/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	// Both are live before the drain starts.
	produce(t, addr, "orders", "before-shutdown")
	if ev := sse.Next(t, 20*time.Second); ev.Data != "before-shutdown" {
		t.Fatalf("SSE got %q", ev.Data)
	}
	if _, b, err := ws.Read(ctx); err != nil || string(b) != "before-shutdown" {
		t.Fatalf("WebSocket got %q, %v", b, err)
	}

	done := make(chan error, 1)
	go func() { done <- gw.Shutdown(ctx) }()

	gotGoaway := false
	for ev := range sse.Events {
		if ev.Event == "goaway" {
			gotGoaway = true
		}
	}
	if !gotGoaway {
		t.Fatal("SSE stream ended without event: goaway")
	}
	_, _, err = ws.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Fatalf("WebSocket ended with %v, want close 1001", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// Drained: the listener no longer serves.
	if resp, err := http.Get("http://" + gw.Addr() + "/orders"); err == nil {
		resp.Body.Close()
		t.Fatalf("gateway still answers after shutdown: %s", resp.Status)
	}
}
