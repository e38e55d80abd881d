// Package quickstart embeds the quickstart example so that `sluice dev` runs
// it from the binary alone.
package quickstart

import _ "embed"

// GatewayYAML is examples/quickstart/gateway.yaml.
//
//go:embed gateway.yaml
var GatewayYAML []byte

// IndexHTML is the demo page served at / by `sluice dev`.
//
//go:embed index.html
var IndexHTML []byte
