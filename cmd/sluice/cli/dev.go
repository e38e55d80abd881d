package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/sluicegw/sluice/examples/quickstart"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/devbrokers"
	"github.com/sluicegw/sluice/internal/server"
	"github.com/sluicegw/sluice/plugins"
)

// cmdDev starts embedded Kafka (kfake), MQTT 5 and NATS on free ports, a
// producer feeding the demo topic, and the quickstart API, then prints what
// to open.
func cmdDev(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "gateway address; a free port is used when it is taken")
	adminListen := fs.String("admin", "127.0.0.1:8081", "admin address; a free port is used when it is taken")
	every := fs.Duration("feed-interval", time.Second, "how often the demo producer writes an order")
	if err := fs.Parse(args); err != nil {
		return 2
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	brokers, err := devbrokers.Start(ctx, devbrokers.Options{Topics: map[string]int32{"orders": 3}})
	if err != nil {
		fmt.Fprintln(stderr, "sluice dev: embedded brokers:", err)
		return 1
	}
	defer brokers.Close()
	go func() { _ = brokers.Feed(ctx, "orders", *every, nil) }()

	httpAddr, adminAddr := freeOr(*listen), freeOr(*adminListen)
	// The quickstart configuration reads these; the user's environment
	// still wins for anything else it references.
	os.Setenv("KAFKA_BROKERS", brokers.KafkaAddr())
	os.Setenv("SLUICE_HTTP_LISTEN", httpAddr)
	os.Setenv("SLUICE_ADMIN_LISTEN", adminAddr)
	cfg, err := config.Parse("examples/quickstart/gateway.yaml", quickstart.GatewayYAML, plugins.Default)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// The dev gateway keeps what the management API creates in a directory
	// of its own, gone when it stops.
	dataDir, err := os.MkdirTemp("", "sluice-dev")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer os.RemoveAll(dataDir)
	cfg.Server.DataDir = dataDir
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(quickstart.IndexHTML)
	})
	return serve(cfg, stderr, map[string]http.Handler{"/": page}, func(srv *server.Server) {
		base := "http://" + srv.Addr()
		fmt.Fprintf(stdout, `
Sluice dev is running. Open the demo page:

  %s/

  SSE stream    curl -N -H 'Accept: text/event-stream' %s/orders
  HTTP GET      curl '%s/orders?limit=5'
  HTTP POST     curl -X POST -H 'Content-Type: application/json' -d '{"status":"paid"}' %s/orders
  WebSocket     ws://%s/orders
  Paid only     curl -N -H 'Accept: text/event-stream' %s/orders-paid
  Metrics       http://%s/metrics

Embedded brokers: Kafka %s, MQTT %s, NATS %s
Press Ctrl+C to stop.
`, base, base, base, base, srv.Addr(), base, srv.AdminAddr(),
			brokers.KafkaAddr(), brokers.MQTTURL(), brokers.NATSURL())
	})
}

// freeOr returns addr when it can be listened on now, else the same host
// with a free port.
func freeOr(addr string) string {
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		return addr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return addr
	}
	defer ln.Close()
	return ln.Addr().String()
}
