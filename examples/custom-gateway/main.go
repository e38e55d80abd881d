// Command custom-gateway is a Sluice gateway with one more plugin: the
// standard bundle plus the example ticker endpoint, each by a blank import,
// and the sluice command line. Usage is sluice's:
// `custom-gateway run -c gateway.yaml`.
package main

import (
	"os"

	"github.com/sluicegw/sluice/cmd/sluice/cli"

	_ "github.com/sluicegw/sluice/examples/custom-gateway/ticker" // the extra plugin
	_ "github.com/sluicegw/sluice/plugins/standard"               // every built-in
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
