package mqtt5

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/sluicegw/sluice/internal/testutil/certtest"
	"github.com/sluicegw/sluice/mediation"
)

// Every scheme carries concurrent publishes and a subscription: mqtt://
// and mqtts:// through the endpoint's own (coalescing) connections, ws://
// through autopaho's. Each test runs a private Mosquitto with a listener
// of that kind.
func TestTransports(t *testing.T) {
	t.Parallel()
	t.Run("mqtt", func(t *testing.T) {
		t.Parallel()
		broker := startMosquitto(t, "")
		cfg := testConfig(broker.addr, "sluice/transport")
		publishAndReceive(t, cfg)
	})
	t.Run("mqtts", func(t *testing.T) {
		t.Parallel()
		certFile, keyFile := selfSignedCert(t)
		broker := startMosquitto(t, fmt.Sprintf("certfile %s\nkeyfile %s\nallow_anonymous true\n", certFile, keyFile))
		cfg := testConfig(broker.addr, "sluice/transport")
		cfg.ServerURL = "mqtts://" + broker.addr
		cfg.TLS.CAFile = certFile
		publishAndReceive(t, cfg)
	})
	t.Run("ws", func(t *testing.T) {
		t.Parallel()
		broker := startMosquitto(t, "")
		cfg := testConfig(broker.addr, "sluice/transport")
		cfg.ServerURL = "ws://" + webSocketBridge(t, broker.addr) + "/mqtt"
		publishAndReceive(t, cfg)
	})
}

// publishAndReceive publishes from several goroutines at once at QoS 1 and
// checks that a subscription of the same endpoint receives every message.
func publishAndReceive(t *testing.T, cfg *Config) {
	t.Helper()
	cfg.Producer.QoS = 1
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{QoS: mediation.QoSAuto})
	const publishers, each = 8, 50
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				publish(t, e, mediation.NewMessage(fmt.Appendf(nil, "%d-%d", p, i)))
			}
		})
	}
	seen := map[string]bool{}
	for len(seen) < publishers*each {
		m := next(t, sub)
		if seen[string(m.Content)] {
			t.Fatalf("%q received twice", m.Content)
		}
		seen[string(m.Content)] = true
	}
	wg.Wait()
}

// selfSignedCert writes a certificate for 127.0.0.1, its own issuer, and
// its key, readable by a broker that dropped root privileges.
func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	// Not t.TempDir: its parent is private to this user, and Mosquitto
	// started as root reads the files as the mosquitto user.
	dir, err := os.MkdirTemp("", "sluice-mqtt5-tls")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return certtest.New(t).WriteFiles(t, dir)
}

// webSocketBridge serves MQTT over WebSocket (subprotocol "mqtt") on a
// free port and carries each connection to the broker's TCP listener. It
// returns the bridge's address.
func webSocketBridge(t *testing.T, broker string) string {
	t.Helper()
	var conns sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"mqtt"}})
		if err != nil {
			return
		}
		conns.Add(1) // hijacked: srv.Close does not wait for it
		defer conns.Done()
		client := websocket.NetConn(ctx, ws, websocket.MessageBinary)
		defer client.Close()
		tcp, err := net.Dial("tcp", broker)
		if err != nil {
			return
		}
		up := make(chan struct{})
		go func() {
			defer close(up)
			_, _ = io.Copy(tcp, client)
			_ = tcp.Close()
		}()
		_, _ = io.Copy(client, tcp)
		_ = client.Close()
		<-up
	}))
	t.Cleanup(func() {
		cancel()
		srv.CloseClientConnections()
		srv.Close()
		conns.Wait()
	})
	return srv.Listener.Addr().String()
}
