package browsertest

import (
	"bytes"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitTimeout only bounds a broken test on a busy machine.
const waitTimeout = 30 * time.Second

// ssePage is served on one origin and reads events from another. It shows
// every message as "<lastEventId>:<data>" and says "done" or "error".
const ssePage = `<!doctype html>
<html><head><title>sse</title></head>
<body>
<h1>events</h1>
<p id="status">connecting</p>
<ul id="events"></ul>
<script>
const es = new EventSource(%q);
const list = document.getElementById("events");
const status = document.getElementById("status");
es.onopen = () => { status.textContent = "open"; };
es.onmessage = (e) => {
  const li = document.createElement("li");
  li.textContent = e.lastEventId + ":" + e.data;
  list.appendChild(li);
};
es.addEventListener("done", () => { status.textContent = "done"; es.close(); });
es.onerror = () => { if (es.readyState === EventSource.CLOSED) { status.textContent = "error"; } };
</script>
</body></html>`

// sseServers starts the events server and the page server. The page is on
// 127.0.0.1 and points its EventSource at localhost: different hosts, so a
// different origin, as a browser app and the gateway are. allowOrigin is
// what the events server puts in Access-Control-Allow-Origin ("" for
// nothing; "page" for the page's own origin). It returns the page URL, its
// origin, and a channel that receives the Origin header of each request for
// events.
func sseServers(t *testing.T, allowOrigin string) (pageURL, pageOrigin string, origins <-chan string) {
	t.Helper()
	quit := make(chan struct{})
	got := make(chan string, 8)
	// Both listeners are bound before either server starts, so each
	// handler knows the other's address without sharing a variable.
	events := httptest.NewUnstartedServer(nil)
	page := httptest.NewUnstartedServer(nil)
	pageOrigin = "http://" + page.Listener.Addr().String()
	_, eventsPort, err := net.SplitHostPort(events.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	eventsURL := "http://localhost:" + eventsPort + "/events"

	events.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Origin"):
		default:
		}
		switch allowOrigin {
		case "":
		case "page":
			w.Header().Set("Access-Control-Allow-Origin", pageOrigin)
		default:
			w.Header().Set("Access-Control-Allow-Origin", allowOrigin)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		for i, data := range []string{"alpha", "beta", "gamma"} {
			fmt.Fprintf(w, "id: %d\ndata: %s\n\n", i+1, data)
		}
		fmt.Fprint(w, "event: done\ndata: end\n\n")
		w.(http.Flusher).Flush()
		// Hold the stream open, as a gateway does, until the browser leaves.
		select {
		case <-r.Context().Done():
		case <-quit:
		}
	})
	page.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, ssePage, eventsURL)
	})
	events.Start()
	t.Cleanup(events.Close)
	page.Start()
	t.Cleanup(page.Close)
	// Runs before the servers close (cleanups run last-in first-out) and
	// after the browser's, which the caller registers later.
	t.Cleanup(func() { close(quit) })
	return pageOrigin + "/", pageOrigin, got
}

func TestCrossOriginEventSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc        string
		allowOrigin string
		status      string
		events      []string
	}{
		{desc: "CORS allows the page origin", allowOrigin: "page", status: "done", events: []string{"1:alpha", "2:beta", "3:gamma"}},
		{desc: "CORS allows another origin", allowOrigin: "https://app.example.com", status: "error"},
		{desc: "no CORS header", allowOrigin: "", status: "error"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			pageURL, pageOrigin, origins := sseServers(t, tc.allowOrigin)
			b := New(t)

			b.WaitText(t, pageURL, "#status", tc.status, waitTimeout)
			got := Eval[[]string](t, b, `[...document.querySelectorAll("#events li")].map(li => li.textContent)`)
			if !slices.Equal(got, tc.events) {
				t.Errorf("page shows events %q, want %q", got, tc.events)
			}
			select {
			case o := <-origins:
				if o != pageOrigin {
					t.Errorf("events request had Origin %q, want the page's %q", o, pageOrigin)
				}
			default:
				t.Error("the events server got no request")
			}
			if tc.status == "error" {
				// Chromium says why in its log; Console must carry it so that
				// a failing gateway test shows the reason.
				if !slices.ContainsFunc(b.Console(), func(l string) bool { return strings.Contains(l, "CORS") }) {
					t.Errorf("console does not mention CORS: %q", b.Console())
				}
			}
		})
	}
}

func TestScreenshot(t *testing.T) {
	t.Parallel()
	pageURL, _, _ := sseServers(t, "page")
	b := New(t)
	b.WaitText(t, pageURL, "#status", "done", waitTimeout)
	path := filepath.Join(t.TempDir(), "shots", "page.png")
	b.Screenshot(t, "", path)

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if w := img.Bounds().Dx(); w != ViewportWidth {
		t.Errorf("screenshot is %d px wide, want %d", w, ViewportWidth)
	}
	// The page is black text on white: a blank capture has one colour.
	colours := map[uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 4 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 4 {
			r, _, _, _ := img.At(x, y).RGBA()
			colours[r] = true
		}
	}
	if len(colours) < 2 {
		t.Error("screenshot is blank")
	}
}

func TestExactFlagsAndNoLeftovers(t *testing.T) {
	t.Parallel()
	var dir string
	t.Run("browse", func(t *testing.T) {
		pageURL, _, _ := sseServers(t, "page")
		b := New(t)
		dir = b.root
		b.WaitText(t, pageURL, "#status", "done", waitTimeout)

		pids := processesUsing(dir)
		// The browser, its zygotes, renderers, network service and crash
		// handler: all found by the profile's directory.
		var main []string
		kinds := map[string]bool{}
		for _, pid := range pids {
			args := cmdline(t, pid)
			switch joined := strings.Join(args, " "); {
			case strings.Contains(joined, "chrome_crashpad_handler"):
				kinds["crashpad"] = true
			case strings.Contains(joined, "--type=renderer"):
				kinds["renderer"] = true
			case !strings.Contains(joined, "--type="):
				main = args
			}
		}
		if !kinds["renderer"] || !kinds["crashpad"] {
			t.Errorf("processes of this browser found: %v; want renderers and the crash handler among them", kinds)
		}
		if main == nil {
			t.Fatal("no browser process among the profile's processes")
		}
		want := []string{"--user-data-dir=" + filepath.Join(dir, "profile"), "--remote-debugging-pipe", "about:blank"}
		for _, f := range flags {
			want = append(want, "--"+f)
		}
		got := slices.Sorted(slices.Values(main[1:]))
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("browser runs with %q, want exactly %q", got, want)
		}
	})
	if dir == "" {
		t.Fatal("the browser did not start")
	}
	if left := processesUsing(dir); len(left) > 0 {
		t.Errorf("chromium processes %v outlived their test", left)
	}
}

func TestNamesPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		cmdline string
		want    bool
	}{
		{desc: "flag argument", cmdline: "chromium\x00--user-data-dir=/tmp/T/001/profile\x00about:blank", want: true},
		{desc: "rewritten title", cmdline: "chromium --type=renderer --user-data-dir=/tmp/T/001/profile --lang=en", want: true},
		{desc: "path under dir in another flag", cmdline: "crashpad\x00--database=/tmp/T/001/config/chromium/Crash Reports", want: true},
		{desc: "dir itself at the end", cmdline: "x --user-data-dir=/tmp/T/001", want: true},
		{desc: "longer sibling directory", cmdline: "x --user-data-dir=/tmp/T/0010/profile", want: false},
		{desc: "dir inside another path", cmdline: "x --user-data-dir=/home/tmp/T/001/profile", want: false},
		{desc: "sibling first, then dir", cmdline: "x --a=/tmp/T/0010 --b=/tmp/T/001/p", want: true},
		{desc: "unrelated process", cmdline: "/usr/sbin/sshd\x00-D", want: false},
		{desc: "empty cmdline (kernel thread)", cmdline: "", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := namesPath([]byte(tc.cmdline), "/tmp/T/001"); got != tc.want {
				t.Errorf("namesPath(%q) = %v, want %v", tc.cmdline, got, tc.want)
			}
		})
	}
}

func cmdline(t *testing.T, pid int) []string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatalf("cmdline of %d: %v", pid, err)
	}
	return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
}

// fakeT records how a helper ends a test, without ending the real one.
type fakeT struct {
	testing.TB
	mu      sync.Mutex
	fatal   string
	skipped string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatal(args ...any) { f.end(&f.fatal, fmt.Sprint(args...)) }

func (f *fakeT) Fatalf(format string, args ...any) { f.end(&f.fatal, fmt.Sprintf(format, args...)) }

func (f *fakeT) Skip(args ...any) { f.end(&f.skipped, fmt.Sprint(args...)) }

func (f *fakeT) end(field *string, msg string) {
	f.mu.Lock()
	*field = msg
	f.mu.Unlock()
	runtime.Goexit()
}

// capture runs fn with a fakeT on its own goroutine, as the testing
// package runs a test, and returns how it ended.
func capture(real testing.TB, fn func(testing.TB)) (fatal, skipped string) {
	f := &fakeT{TB: real}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal, f.skipped
}

func TestWaitTextFailures(t *testing.T) {
	t.Parallel()
	pageURL, _, _ := sseServers(t, "page")
	b := New(t)
	b.WaitText(t, pageURL, "#status", "done", waitTimeout)

	// One tab: these run one after the other.
	tests := []struct {
		desc     string
		selector string
		want     string
	}{
		{desc: "text never appears", selector: "#status", want: `"#status" did not contain "never" within 200ms; it holds "done"`},
		{desc: "no element matches", selector: "#missing", want: `no element matches "#missing" after 200ms`},
		{desc: "selector is invalid", selector: "#[", want: `read "#["`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			fatal, _ := capture(t, func(ft testing.TB) {
				b.WaitText(ft, "", tc.selector, "never", 200*time.Millisecond)
			})
			if !strings.Contains(fatal, tc.want) {
				t.Errorf("WaitText failed with %q, want it to say %q", fatal, tc.want)
			}
		})
	}
}

func TestMissingChromium(t *testing.T) {
	// Not parallel: it sets the environment.
	t.Setenv(EnvChromium, filepath.Join(t.TempDir(), "no-such-chromium"))
	tests := []struct {
		desc    string
		require string
		fatal   bool
	}{
		{desc: "skips by default", require: "", fatal: false},
		{desc: "fails when services are required", require: "1", fatal: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Setenv(EnvRequireServices, tc.require)
			fatal, skipped := capture(t, func(ft testing.TB) { New(ft) })
			if tc.fatal && (fatal == "" || skipped != "") {
				t.Errorf("fatal %q, skipped %q; want a failure", fatal, skipped)
			}
			if !tc.fatal && (skipped == "" || fatal != "") {
				t.Errorf("fatal %q, skipped %q; want a skip", fatal, skipped)
			}
			if msg := fatal + skipped; !strings.Contains(msg, "apt-get install chromium") {
				t.Errorf("message %q does not say how to install chromium", msg)
			}
		})
	}
}
