// Command bench runs the end-to-end benchmarks recorded in BENCHMARKS.md,
// each side by side with the baseline its issue names, and prints one
// markdown table row per benchmark: `go run ./internal/bench [name...]`.
//
// Each benchmark is a ratio from one run on the same machine, so that the
// number means something on any machine; absolute rates are printed too.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
)

type benchmark struct {
	name string
	doc  string
	run  func() (row, error)
}

// row is one line of the results table.
type row struct {
	Name, Sluice, Baseline, Ratio, Target string
}

var benchmarks = []benchmark{
	{"kafka-sse", "Kafka → one SSE client vs a direct franz-go consumer (200k × ~100 B, 1 partition)", benchKafkaSSE},
	{"post-mqtt", "HTTP POST → MQTT 5 QoS 1 vs a direct paho publisher, 16 concurrent", benchPostMQTT},
	{"webhook-in-order", "Kafka → one in-order webhook subscription vs a net/http client POSTing one at a time (20k × ~100 B)", benchWebhook(1)},
	{"webhook-concurrent-16", "Kafka → one webhook subscription with maxConcurrentDeliveries: 16 vs a net/http client, 16 in flight", benchWebhook(16)},
	{"http-proxy", "HTTP proxy API vs nginx proxy_pass, same nginx backend, wrk -t2 -c64 keep-alive", benchHTTPProxy},
}

func main() {
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	names := flag.Args()
	fmt.Println("| benchmark | sluice | baseline | ratio | target |")
	fmt.Println("|---|---|---|---|---|")
	failed := false
	for _, b := range benchmarks {
		if len(names) > 0 && !slices.Contains(names, b.name) {
			continue
		}
		r, err := b.run()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", b.name, err)
			failed = true
			continue
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.Name, r.Sluice, r.Baseline, r.Ratio, r.Target)
	}
	if failed {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
