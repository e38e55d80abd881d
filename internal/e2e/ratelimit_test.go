package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
)

// Issue 5, must show 5: two gateways sharing Redis enforce one rate limit
// together, answering 429 with Retry-After and RateLimit headers past it.
func TestRateLimitSharedThroughRedis(t *testing.T) {
	gatewaytest.RequireService(t, "redis", "127.0.0.1:6379")
	be := echoBackend(t)
	id := fmt.Sprintf("rl%d", time.Now().UnixNano()) // a budget no earlier run used
	cfg := strings.Replace(proxyAPI(be.URL, "{name: open, security: {type: keyless}}"), "id: petstore", "id: "+id, 1)
	cfg = strings.Replace(cfg, `admin: {listen: "127.0.0.1:0", token: s3cret}`, `admin: {listen: "off"}
  redis: "redis://127.0.0.1:6379/0"`, 1)
	cfg += `    flows:
      - name: limit
        request:
          - {policy: rate-limit, configuration: {limit: 10, period: 1h, key: api}}
`
	a, b := gatewaytest.Start(t, cfg), gatewaytest.Start(t, cfg)

	allowed, limited := 0, 0
	for i := range 30 {
		gw := a
		if i%2 == 1 {
			gw = b
		}
		resp, err := http.Get("http://" + gw.Addr() + "/petstore/pets")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			allowed++
		case http.StatusTooManyRequests:
			limited++
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(resp.Header.Get("RateLimit"), "remaining=0") ||
				resp.Header.Get("RateLimit-Policy") == "" || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("429 without Retry-After, RateLimit headers or a problem body: %v", resp.Header)
			}
		default:
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if allowed != 10 || limited != 20 {
		t.Fatalf("%d allowed and %d limited over two gateways, want 10 and 20: one shared budget", allowed, limited)
	}
}

// Without Redis each gateway counts alone.
func TestRateLimitInMemory(t *testing.T) {
	be := echoBackend(t)
	cfg := proxyAPI(be.URL, "{name: open, security: {type: keyless}}") + `    flows:
      - name: limit
        request:
          - {policy: rate-limit, configuration: {limit: 3, period: 1h}}
`
	gw := gatewaytest.Start(t, cfg)
	var codes []int
	for range 5 {
		code, _, _ := call(t, "http://"+gw.Addr()+"/petstore/pets")
		codes = append(codes, code)
	}
	if fmt.Sprint(codes) != "[200 200 200 429 429]" {
		t.Fatalf("statuses %v, want three admitted then 429s", codes)
	}
}
