package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/sluicegw/sluice/internal/config"
	_ "github.com/sluicegw/sluice/plugins/standard"
)

// BenchmarkProxyFastPath measures one keep-alive GET through a proxy API,
// client to backend and back, in process: its allocations are the fast
// path's (the client and the backend allocate nothing per request), and
// its time is mostly loopback TCP.
func BenchmarkProxyFastPath(b *testing.B) {
	roundTrip := proxyFastPath(b)
	b.ReportAllocs()
	for b.Loop() {
		roundTrip()
	}
}

// The fast path's allocations per proxied request, which BENCHMARKS.md
// quotes, stay where they are: a new one on every request is a regression
// the benchmark would only show to someone looking.
func TestProxyFastPathAllocations(t *testing.T) {
	roundTrip := proxyFastPath(t)
	const want = 12 + raceAllocs
	if n := testing.AllocsPerRun(2000, roundTrip); n > want+0.5 {
		t.Errorf("%.1f allocations per proxied request, want at most %d", n, want)
	}
}

// proxyFastPath starts a gateway with a proxy API in front of a fixed
// backend and returns a function that sends one GET through it on a
// keep-alive connection and reads the answer.
func proxyFastPath(tb testing.TB) func() {
	backend := fixedBackend(tb, "HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
	cfg, err := config.Parse("bench.yaml", fmt.Appendf(nil, `server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
  dataDir: %q
  log: {level: warn}
apis:
  - id: bench
    name: Bench
    type: proxy
    listeners:
      - {type: http, paths: [/], entrypoints: [{type: http-proxy}]}
    endpointGroups:
      - name: default
        type: http-proxy
        endpoints:
          - {name: a, configuration: {target: "http://%s"}}
    plans:
      - {name: open, security: {type: keyless}}
`, filepath.Join(tb.TempDir(), "data"), backend), nil)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(context.Background(), cfg, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	req := []byte("GET /x?y=1 HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 4096)
	return func() {
		if _, err := c.Write(req); err != nil {
			tb.Fatal(err)
		}
		if err := readFixedResponse(br, "hello"); err != nil {
			tb.Fatal(err)
		}
	}
}

// fixedBackend answers every request on every connection with resp.
func fixedBackend(tb testing.TB, resp string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 8192)
				var have []byte
				for {
					n, err := c.Read(buf[len(have):])
					if err != nil {
						return
					}
					have = buf[:len(have)+n]
					for {
						i := bytes.Index(have, []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := io.WriteString(c, resp); err != nil {
							return
						}
						have = have[:copy(buf, have[i+4:])]
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// readFixedResponse reads a head and a body that ends with want.
func readFixedResponse(br *bufio.Reader, want string) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) == 2 {
			break
		}
	}
	for i := 0; i < len(want); i++ {
		if c, err := br.ReadByte(); err != nil || c != want[i] {
			return fmt.Errorf("body byte %d: %q %v", i, c, err)
		}
	}
	return nil
}
