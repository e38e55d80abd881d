package devbrokers

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/twmb/franz-go/pkg/kfake"
)

// brokerLevelKey names the attribute that keeps a broker's own level for a
// log line that was demoted.
const brokerLevelKey = "brokerLevel"

// demoteHandler logs every record at one fixed level, keeping the original
// level as an attribute. The embedded brokers log client disconnects and
// similar routine events as warnings; in `sluice dev` those are noise, yet
// they stay one `-log-level debug` away.
type demoteHandler struct {
	inner slog.Handler
	level slog.Level
}

func (h demoteHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.inner.Enabled(ctx, h.level)
}

func (h demoteHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, h.level, r.Message, r.PC)
	out.AddAttrs(slog.String(brokerLevelKey, r.Level.String()))
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h demoteHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoteHandler{inner: h.inner.WithAttrs(attrs), level: h.level}
}

func (h demoteHandler) WithGroup(name string) slog.Handler {
	return demoteHandler{inner: h.inner.WithGroup(name), level: h.level}
}

// demoted returns a logger that writes everything l receives at debug level.
func demoted(l *slog.Logger) *slog.Logger {
	return slog.New(demoteHandler{inner: l.Handler(), level: slog.LevelDebug})
}

// logf formats and logs only when l would keep the line: kfake at debug
// level describes every request, which is costly to format for nothing.
func logf(l *slog.Logger, level slog.Level, orig string, format string, args ...any) {
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return
	}
	l.Log(ctx, level, fmt.Sprintf(format, args...), slog.String(brokerLevelKey, orig))
}

// kfakeLogger adapts a slog.Logger to kfake.Logger, at debug level.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	logf(k.l, slog.LevelDebug, level.String(), format, args...)
}

// natsLogger adapts a slog.Logger to the NATS server's Logger, at debug
// level except for fatal errors, which end the embedded server.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) Noticef(format string, v ...any) {
	logf(n.l, slog.LevelDebug, "NOTICE", format, v...)
}
func (n natsLogger) Warnf(format string, v ...any) { logf(n.l, slog.LevelDebug, "WARN", format, v...) }
func (n natsLogger) Errorf(format string, v ...any) {
	logf(n.l, slog.LevelDebug, "ERROR", format, v...)
}
func (n natsLogger) Debugf(format string, v ...any) {
	logf(n.l, slog.LevelDebug, "DEBUG", format, v...)
}
func (n natsLogger) Tracef(format string, v ...any) {
	logf(n.l, slog.LevelDebug, "TRACE", format, v...)
}
func (n natsLogger) Fatalf(format string, v ...any) {
	logf(n.l, slog.LevelError, "FATAL", format, v...)
}

// Interface guards.
var (
	_ slog.Handler  = demoteHandler{}
	_ kfake.Logger  = kfakeLogger{}
	_ server.Logger = natsLogger{}
)
