package h1

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A handler waiting on something else hears of the client leaving; one
// whose client sends its next request meanwhile does not, and that request
// is served after it.
func TestWatchClient(t *testing.T) {
	gone := make(chan string, 2)
	release := make(chan struct{})
	addr, _ := testServer(t, func(w *ResponseWriter, r *Request, _ io.Reader) bool {
		if string(r.Path) != "/fast/wait" {
			fmt.Fprintf(w, "fast %s", r.Path)
			return true
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "waiting\n")
		w.Flush()
		path := r.Query
		stop := w.WatchClient(func() { gone <- string(path) })
		select {
		case <-release:
		case <-time.After(3 * time.Second):
		}
		stop()
		return true
	})

	// The client leaves: gone is called while the handler still waits.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET /fast/wait?leaves HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("%q %v", line, err)
	}
	c.Close()
	select {
	case q := <-gone:
		if q != "leaves" {
			t.Fatalf("gone for %q", q)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the handler never heard the client left")
	}

	// The client pipelines its next request: no gone, and it is answered.
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET /fast/wait?stays HTTP/1.1\r\nHost: x\r\n\r\n")
	br = bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET /fast/next HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // the watch reads it
	close(release)
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "waiting\n" {
		t.Fatalf("first body %q, %v", b, err)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "fast /fast/next" {
		t.Fatalf("pipelined request answered %q", b)
	}
	select {
	case q := <-gone:
		t.Fatalf("gone called for %q, a client that stayed", q)
	default:
	}
}
