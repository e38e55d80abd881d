package sse

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/entrypoints/internal/memtest"
	"github.com/sluicegw/sluice/mediation"
)

// BenchmarkSSEDelivery measures the per-message cost of the SSE path end to
// end: a memtest endpoint preloaded with b.N messages, one client over
// loopback reading the stream until it saw them all. It includes the
// stream's window and acks, the encoder, buffering and the HTTP/1.1
// writes, and the client's parsing of lines.
func BenchmarkSSEDelivery(b *testing.B) {
	for _, qos := range []mediation.QoS{mediation.QoSAuto, mediation.QoSAtLeastOnce} {
		b.Run(string(qos), func(b *testing.B) {
			content := strings.Repeat(`{"order":12345,"status":"paid"}`, 4) // 124 bytes, a typical small JSON event
			ep, err := New(DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			mt := memtest.New(memtest.Options{DefaultStart: mediation.StartEarliest})
			srv := memtest.Serve(b, mt, mediation.EntrypointBinding{Type: "sse", Entrypoint: ep, QoS: qos})
			contents := make([]string, b.N)
			for i := range contents {
				contents[i] = content
			}
			mt.Append(contents...)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			req.Header.Set("Accept", "text/event-stream")
			b.SetBytes(int64(len(content)))
			b.ReportAllocs()
			b.ResetTimer()
			resp, err := srv.Client().Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for seen := 0; seen < b.N && sc.Scan(); {
				if len(sc.Bytes()) == 0 {
					seen++
				}
			}
			b.StopTimer()
			if err := sc.Err(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
