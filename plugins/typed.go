package plugins

import (
	"fmt"
	"log/slog"

	"github.com/sluicegw/sluice/mediation"
)

// EndpointConfig is a typed endpoint configuration: a pointer type that
// says what an endpoint so configured can do.
type EndpointConfig interface {
	Capabilities() mediation.Capabilities
}

// TypedEndpoint builds the EndpointPlugin of a connector from typed
// functions, so that a connector registers in one line:
//
//	plugins.RegisterEndpoint(plugins.TypedEndpoint("kafka", DefaultConfig, newEndpoint))
//
// defaults returns a new configuration with its defaults set; newFn receives
// it decoded and validated, and a Context whose Logger is tagged with the
// endpoint type and name.
func TypedEndpoint[C EndpointConfig](typ string, defaults func() C, newFn func(Context, C) (mediation.Endpoint, error)) EndpointPlugin {
	return EndpointPlugin{
		Type:   typ,
		Config: func() any { return defaults() },
		Capabilities: func(cfg any) mediation.Capabilities {
			if c, ok := cfg.(C); ok {
				return c.Capabilities()
			}
			return mediation.Capabilities{}
		},
		New: func(ctx Context, cfg any) (mediation.Endpoint, error) {
			c, ok := cfg.(C)
			if !ok {
				return nil, fmt.Errorf("%s: configuration is %T, want %T", typ, cfg, c)
			}
			if ctx.Logger == nil {
				ctx.Logger = slog.Default()
			}
			ctx.Logger = ctx.Logger.With("endpoint", typ, "name", ctx.Name)
			return newFn(ctx, c)
		},
	}
}
