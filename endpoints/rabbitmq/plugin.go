package rabbitmq

import (
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEndpoint(plugins.TypedEndpoint("rabbitmq", DefaultConfig,
		func(ctx plugins.Context, c *Config) (mediation.Endpoint, error) {
			return New(c, Options{Logger: ctx.Logger, Name: connectionName(ctx.APIID, ctx.Name)})
		}))
}

// connectionName is how the gateway's connections appear in the broker's
// management UI.
func connectionName(api, name string) string {
	s := "sluice"
	if api != "" {
		s += " " + api
	}
	if name != "" {
		s += "/" + name
	}
	return s
}
