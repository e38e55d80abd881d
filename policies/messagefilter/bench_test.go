package messagefilter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

// The benchmarks measure the filter's cost per message as a subscribe step:
// one realistic order event, one client request.

const orderEvent = `{"id":"o-1842","status":"paid","amount":129.5,"currency":"EUR",` +
	`"customer":{"id":"c-77","tier":"gold"},"items":[{"sku":"A-1","qty":2},{"sku":"B-9","qty":1}]}`

func benchFilter(b *testing.B, condition string, wantPass bool) {
	p := newFilter(b, condition)
	msg := mediation.NewMessage([]byte(orderEvent))
	msg.Headers = mediation.Headers{"x-type": {"order.paid"}, "content-type": {"application/json"}, "traceparent": {"00-abc-def-01"}}
	msg.Metadata = map[string]string{"topic": "orders", "partition": "3", "offset": "1842"}
	x := &mediation.Exchange{Request: httptest.NewRequest(http.MethodGet, "/orders", nil)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out, err := p.OnMessage(ctx, x, msg)
		if err != nil || (out != nil) != wantPass {
			b.Fatalf("OnMessage = %v, %v", out, err)
		}
	}
}

// BenchmarkFilterJSON: a condition on the parsed body (the JSON parse
// dominates).
func BenchmarkFilterJSON(b *testing.B) {
	benchFilter(b, `message.json.status == "paid" && message.json.amount > 100`, true)
}

// BenchmarkFilterHeader: a condition on a header, which never parses the
// body.
func BenchmarkFilterHeader(b *testing.B) {
	benchFilter(b, `message.headers['x-type'] == "order.paid"`, true)
}
