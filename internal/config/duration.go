package config

import (
	"time"

	"github.com/sluicegw/sluice/plugins"
)

// Duration is a Go duration written as text ("5s", "250ms", "1m30s"); it is
// plugins.Duration, the type plugin configurations use too.
type Duration = plugins.Duration

func parseDuration(s string) (time.Duration, error) { return plugins.ParseDuration(s) }
