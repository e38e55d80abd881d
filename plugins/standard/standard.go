// Package standard bundles the built-in plugins: importing it for its side
// effects registers every entrypoint, endpoint, policy and plan security type that ships with
// Sluice into plugins.Default. A custom gateway binary imports it plus its
// own plugin packages.
package standard

import (
	_ "github.com/sluicegw/sluice/endpoints/httpproxy"
	_ "github.com/sluicegw/sluice/endpoints/kafka"
	_ "github.com/sluicegw/sluice/endpoints/mock"
	_ "github.com/sluicegw/sluice/endpoints/mqtt5"
	_ "github.com/sluicegw/sluice/endpoints/nats"
	_ "github.com/sluicegw/sluice/endpoints/rabbitmq"
	_ "github.com/sluicegw/sluice/entrypoints/httpget"
	_ "github.com/sluicegw/sluice/entrypoints/httppost"
	_ "github.com/sluicegw/sluice/entrypoints/httpproxy"
	_ "github.com/sluicegw/sluice/entrypoints/sse"
	_ "github.com/sluicegw/sluice/entrypoints/webhook"
	_ "github.com/sluicegw/sluice/entrypoints/websocket"
	_ "github.com/sluicegw/sluice/plugins/solace"
	_ "github.com/sluicegw/sluice/policies/apikey"
	_ "github.com/sluicegw/sluice/policies/jwt"
	_ "github.com/sluicegw/sluice/policies/keyless"
	_ "github.com/sluicegw/sluice/policies/messagefilter"
	_ "github.com/sluicegw/sluice/policies/ratelimit"
	_ "github.com/sluicegw/sluice/policies/transformheaders"
)
