package telemetry

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns the gateway's logger: JSON lines (or text) on w at level
// (debug, info, warn, error).
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(cmp.Or(level, "info")))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch cmp.Or(format, "json") {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want json or text", format)
	}
}
