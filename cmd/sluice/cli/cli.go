// Command sluice is the Sluice gateway: `sluice run -c gateway.yaml`,
// `sluice dev`, `sluice validate -c gateway.yaml`, `sluice version`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/server"
	"github.com/sluicegw/sluice/internal/telemetry"
	"github.com/sluicegw/sluice/plugins"
	_ "github.com/sluicegw/sluice/plugins/standard"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3").
var version = "dev"

const usage = `usage: sluice <command> [flags]

commands:
  run -c gateway.yaml       serve until SIGINT/SIGTERM, then drain gracefully
  dev                       start embedded brokers and the quickstart API, print the URLs to open
  validate -c gateway.yaml  check a configuration; print every problem as file:line:col: message
  version                   print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "dev":
		return cmdDev(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "sluice", buildVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "gateway.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	return *path, true
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("validate", args, stderr)
	if !ok {
		return 2
	}
	if _, err := config.Load(path, plugins.Default); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	path, ok := configFlag("run", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := config.Load(path, plugins.Default)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return serve(cfg, stderr, nil, nil)
}

// serve runs a gateway for cfg until a signal, then drains it. handlers are
// extra data-plane pages (the dev demo page); ready, when set, is called
// once the listeners are up.
func serve(cfg *config.Config, stderr io.Writer, handlers map[string]http.Handler, ready func(*server.Server)) int {
	log, err := telemetry.NewLogger(stderr, cfg.Server.Log.Level, cfg.Server.Log.Format)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, Handlers: handlers})
	if err != nil {
		log.Error("cannot provision gateway", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start gateway", "err", err)
		_ = srv.Shutdown(context.Background())
		return 1
	}
	if ready != nil {
		ready(srv)
	}
	code := 0
	select {
	case <-ctx.Done():
	case err := <-srv.Err():
		log.Error("listener failed", "err", err)
		code = 1
	}
	stop() // a second signal kills at once
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Server.ShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("drain incomplete", "err", err)
	}
	return code
}
