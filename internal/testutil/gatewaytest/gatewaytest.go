// Package gatewaytest starts real gateways for end-to-end tests: a
// configuration in YAML, the plugins the test binary links (blank-import
// plugins/standard, or just the ones a connector's test needs), loopback
// listeners, a data directory of its own, and a drain when the test ends.
package gatewaytest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/server"
	"github.com/sluicegw/sluice/plugins"
)

// Start loads yamlText with plugins.Default and serves it until the test
// ends. Use 127.0.0.1:0 listen addresses; Addr and AdminAddr tell the
// ports. With -v the gateway's debug logs go to the test log.
func Start(t testing.TB, yamlText string) *server.Server {
	t.Helper()
	cfg, err := config.Parse(t.Name()+".yaml", []byte(yamlText), plugins.Default)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.Server.DataDir = t.TempDir() // the store of this gateway alone
	srv, err := server.New(context.Background(), cfg, server.Options{Logger: log})
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
	return srv
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// RequireService skips the test when nothing answers at addr, unless the
// environment says every service must be there (SLUICE_REQUIRE_SERVICES=1,
// as CI sets it): then it fails.
func RequireService(t testing.TB, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s at %s is required (SLUICE_REQUIRE_SERVICES=1): %v", name, addr, err)
	}
	t.Skipf("%s not reachable at %s (%v); start it or see scripts/services.sh", name, addr, err)
}
