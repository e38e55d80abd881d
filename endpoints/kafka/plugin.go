package kafka

import (
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterEndpoint(plugins.TypedEndpoint("kafka", DefaultConfig,
		func(ctx plugins.Context, c *Config) (mediation.Endpoint, error) {
			return New(c, ctx.Logger)
		}))
}
