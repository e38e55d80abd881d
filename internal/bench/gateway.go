package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/server"
	"github.com/sluicegw/sluice/plugins"
)

// startGateway serves the configuration yamlText in this process, with a
// store in a fresh temporary directory. stop drains it and removes the
// directory.
func startGateway(yamlText string) (srv *server.Server, stop func(), err error) {
	cfg, err := config.Parse("bench.yaml", []byte(yamlText), plugins.Default)
	if err != nil {
		return nil, nil, err
	}
	dataDir, err := os.MkdirTemp("", "sluice-bench")
	if err != nil {
		return nil, nil, err
	}
	cfg.Server.DataDir = dataDir
	srv, err = server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		os.RemoveAll(dataDir)
		return nil, nil, err
	}
	return srv, func() {
		_ = srv.Shutdown(context.Background())
		os.RemoveAll(dataDir)
	}, nil
}
