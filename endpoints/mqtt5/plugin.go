package mqtt5

import (
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEndpoint(plugins.TypedEndpoint("mqtt5", DefaultConfig,
		func(ctx plugins.Context, c *Config) (mediation.Endpoint, error) {
			return New(c, ctx.Logger)
		}))
}
