package devbrokers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// JetStream limits: small enough that a dev run never reserves the
// machine's memory or disk, large enough for any demo.
const (
	natsMaxMemory = 256 << 20
	natsMaxStore  = 1 << 30
)

// startNATS starts a NATS server with JetStream on a free loopback port,
// storing streams in a temporary directory that Close removes.
func (b *Brokers) startNATS(ctx context.Context, _ Options) error {
	dir, err := os.MkdirTemp("", "sluice-dev-nats-")
	if err != nil {
		return err
	}
	b.natsDir = dir
	srv, err := server.NewServer(&server.Options{
		ServerName:         "sluice-dev",
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		JetStream:          true,
		StoreDir:           dir,
		JetStreamMaxMemory: natsMaxMemory,
		JetStreamMaxStore:  natsMaxStore,
		NoSigs:             true, // the gateway owns signal handling
	})
	if err != nil {
		return err
	}
	logger := b.log.With("broker", "nats")
	srv.SetLoggerV2(natsLogger{l: logger}, logger.Enabled(ctx, slog.LevelDebug), false, false)
	b.nats = srv
	srv.Start()

	wait := defaultStartTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("not ready for connections after %s", wait)
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok || addr == nil {
		return errors.New("no client listener")
	}
	b.natsAddr = net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port))
	return nil
}
