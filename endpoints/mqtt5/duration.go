package mqtt5

import "github.com/sluicegw/sluice/plugins"

// Duration is a Go duration written as text in the configuration ("10s",
// "250ms").
type Duration = plugins.Duration
