package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/internal/testutil/ssetest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The admin listener: liveness, readiness, and Prometheus metrics that count
// what clients received, per API and entrypoint.
func TestAdminHealthAndMetrics(t *testing.T) {
	k := newKafka(t, 3, "orders")
	addr := k.ListenAddrs()[0]
	gw := gatewaytest.Start(t, strings.Replace(kafkaAPI(addr, "earliest", ""), `admin: {listen: "off"}`, `admin: {listen: "127.0.0.1:0"}`, 1))
	admin := "http://" + gw.AdminAddr()

	for _, p := range []string{"/livez", "/healthz", "/readyz"} {
		if code, body := get(t, admin+p); code != http.StatusOK {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}
	produce(t, addr, "orders", numbered("m", 0, 7)...)
	c := ssetest.Open(t, "http://"+gw.Addr()+"/orders", nil)
	for range 7 {
		c.Next(t, 20*time.Second)
	}
	// Messages count once flushed and acked; give the ack a moment.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, admin+"/metrics")
		if strings.Contains(body, `sluice_messages_out_total{api="orders",entrypoint="sse"} 7`) &&
			strings.Contains(body, `sluice_open_streams{api="orders",entrypoint="sse"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed 7 messages out and 1 open stream:\n%s", grepLines(body, "sluice_"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
