// Command sluice is the Sluice gateway with the standard plugins:
// `sluice run -c gateway.yaml`, `sluice dev`, `sluice validate -c
// gateway.yaml`, `sluice version`. The command line itself is package cli.
package main

import (
	"os"

	"github.com/sluicegw/sluice/cmd/sluice/cli"
	_ "github.com/sluicegw/sluice/plugins/standard"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
