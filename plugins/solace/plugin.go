package solace

import (
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// The one line that makes this package a plugin: importing it registers
// endpoint type "solace" in plugins.Default.
func init() {
	plugins.RegisterEndpoint(plugins.TypedEndpoint("solace", DefaultConfig,
		func(ctx plugins.Context, c *Config) (mediation.Endpoint, error) {
			return New(c, Options{Logger: ctx.Logger, Name: clientName(ctx.APIID, ctx.Name)})
		}))
}

// clientName prefixes the container ids of the gateway's connections, which
// Solace shows as client names.
func clientName(api, name string) string {
	s := "sluice"
	if api != "" {
		s += "/" + api
	}
	if name != "" {
		s += "/" + name
	}
	return s
}
