package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/h1"
)

// Event loops serve the proxy APIs whose request phase cannot block; the
// others go to a goroutine per connection. Either way every API answers.
func TestEventLoopsServeOnlyWhatCannotBlock(t *testing.T) {
	backend := fixedBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	api := func(id, extra string) string {
		return fmt.Sprintf(`  - id: %s
    name: %s
    type: proxy
    listeners:
      - {type: http, paths: [/%s], entrypoints: [{type: http-proxy}]%s}
    endpointGroups:
      - name: default
        type: http-proxy
        endpoints:
          - {name: a, configuration: {target: "http://%s"%s}}
`, id, id, id, pick(extra, "cors"), backend, pick(extra, "http")) + pick(extra, "more")
	}
	apis := []struct {
		id, extra string
		onLoop    bool
	}{
		{"open", "", true},
		{"keyless", "more=    plans: [{name: open, security: {type: keyless}}]\n", true},
		{"limited", "more=    flows: [{name: f, request: [{policy: rate-limit, configuration: {limit: 100000, period: 1s}}, {policy: transform-headers, configuration: {setHeaders: [{name: X-A, value: b}]}}]}]\n", true},
		{"keys", "more=    plans: [{name: keys, security: {type: api-key}}]\n", false}, // a key store lookup may block
		{"responses", "more=    flows: [{name: f, response: [{policy: transform-headers, configuration: {setHeaders: [{name: X-A, value: b}]}}]}]\n", false},
		{"capped", "http=, http: {maxConnsPerHost: 4}", false},
		{"cors", `cors=, cors: {allowOrigins: ["https://app.example"]}`, false},
	}
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "server:\n  http: {listen: \"127.0.0.1:0\"}\n  admin: {listen: \"off\"}\n  dataDir: %q\n  log: {level: warn}\napis:\n", filepath.Join(t.TempDir(), "data"))
	for _, a := range apis {
		yaml.WriteString(api(a.id, a.extra))
	}
	cfg, err := config.Parse("loops.yaml", []byte(yaml.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	for _, a := range apis {
		rt, _ := s.routes.Load().match("gw", "/"+a.id)
		if got := rt.loopable(); got != a.onLoop {
			t.Errorf("%s: on an event loop %v, want %v", a.id, got, a.onLoop)
		}
		if a.id == "keys" {
			continue // 401 without a key: plans_test covers it
		}
		// Two requests on one connection: the first may move it off the
		// loop, the second must be served there.
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for i := range 2 {
			fmt.Fprintf(c, "GET /%s/x HTTP/1.1\r\nHost: gw\r\n\r\n", a.id)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s request %d: %v", a.id, i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "hello" {
				t.Errorf("%s request %d: %d %q", a.id, i, resp.StatusCode, b)
			}
		}
		c.Close()
	}
	if !h1.LoopsSupported {
		t.Log("no event loops on this system: every route took the goroutine path")
	}
}

// pick returns the value of "key=value" in extra, or "".
func pick(extra, key string) string {
	if v, ok := strings.CutPrefix(extra, key+"="); ok {
		return v
	}
	return ""
}

func TestEventLoopCountAndSpareP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", strconv.Itoa(cores)) // the user's choice: kept
	before := runtime.GOMAXPROCS(0)
	if n := eventLoops(0); n != max(1, cores-1) || runtime.GOMAXPROCS(0) != before {
		t.Errorf("GOMAXPROCS set: %d loops, GOMAXPROCS %d; want %d loops and GOMAXPROCS left at %d", n, runtime.GOMAXPROCS(0), max(1, cores-1), before)
	}
	if n := eventLoops(3); n != 3 || runtime.GOMAXPROCS(0) != before {
		t.Errorf("GOMAXPROCS set, 3 loops asked: %d loops, GOMAXPROCS %d", n, runtime.GOMAXPROCS(0))
	}
	os.Unsetenv("GOMAXPROCS")
	if cores != runtime.NumCPU() {
		t.Skip("GOMAXPROCS below the CPU count here (a quota): no spare P is added")
	}
	if n := eventLoops(0); n != cores || runtime.GOMAXPROCS(0) != cores+1 {
		t.Errorf("machine of its own: %d loops, GOMAXPROCS %d; want %d and %d", n, runtime.GOMAXPROCS(0), cores, cores+1)
	}
}
