// Package cli is the sluice command line: `run`, `dev`, `validate`,
// `version`. It is public so that a gateway with extra plugins is one file:
//
//	package main
//
//	import (
//		"os"
//
//		"github.com/sluicegw/sluice/cmd/sluice/cli"
//		_ "github.com/sluicegw/sluice/plugins/standard" // the built-ins
//		_ "example.com/myplugin"                         // yours
//	)
//
//	func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
//
// Plugins register into plugins.Default from their init functions.
package cli

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
)

// Version is set at link time
// (-ldflags "-X github.com/sluicegw/sluice/cmd/sluice/cli.Version=v1.2.3").
var Version = "dev"

const usage = `usage: sluice <command> [flags]

commands:
  run -c gateway.yaml       serve until SIGINT/SIGTERM, then drain gracefully
  dev                       start embedded brokers and the quickstart API, print the URLs to open
  validate -c gateway.yaml  check a configuration; print every problem as file:line:col: message
  version                   print the version
`

// Main runs the command line args (without the program name) and returns
// the exit status: 0 success, 1 a failure (a bad configuration, a gateway
// that could not start), 2 a usage error. run blocks until SIGINT/SIGTERM.
func Main(args []string, stdout, stderr io.Writer) int {
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
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
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
