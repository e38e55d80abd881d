package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// rawBackend serves each connection with serve until it returns, and
// closes it then.
func rawBackend(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// answerAll answers every request with its body's length, at once.
func answerAll(c net.Conn, br *bufio.Reader) {
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, req.Body)
		body := strconv.FormatInt(n, 10)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}

// roundTrip sends a request with body on c and returns the response body.
func roundTrip(t *testing.T, c *Conn, body []byte) (string, error) {
	t.Helper()
	fmt.Fprintf(c.W, "POST / HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n", len(body))
	c.W.Write(body)
	if err := c.W.Flush(); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(c.R, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// One connection carries thousands of requests, each waited for under a
// read deadline renewed only now and then.
func TestPoolRoundTrips(t *testing.T) {
	p := NewPool(PoolConfig{Addr: rawBackend(t, answerAll)})
	defer p.Close()
	for i := range 3000 {
		c, err := p.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadTimeout(5 * time.Second)
		body := make([]byte, i%100)
		got, err := roundTrip(t, c, body)
		if err != nil || got != strconv.Itoa(len(body)) {
			t.Fatalf("request %d: %q, %v", i, got, err)
		}
		c.Put()
	}
}

// A request larger than the socket buffers, to a backend that reads it
// slowly.
func TestPoolLargeRequest(t *testing.T) {
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		time.Sleep(200 * time.Millisecond) // let the buffers fill
		answerAll(c, br)
	})
	p := NewPool(PoolConfig{Addr: addr})
	defer p.Close()
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadTimeout(5 * time.Second)
	body := make([]byte, 8<<20)
	if got, err := roundTrip(t, c, body); err != nil || got != strconv.Itoa(len(body)) {
		t.Fatalf("%q, %v", got, err)
	}
}

// A backend that closed a pooled connection while it was idle: the next
// exchange ends at once with the connection's end, not at the read timeout.
func TestPoolConnectionClosedWhileIdle(t *testing.T) {
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
		// and close, as a backend with a short keep-alive does
	})
	p := NewPool(PoolConfig{Addr: addr})
	defer p.Close()
	c, _ := p.Get(context.Background())
	c.SetReadTimeout(5 * time.Second)
	if _, err := roundTrip(t, c, nil); err != nil {
		t.Fatal(err)
	}
	c.Put()
	time.Sleep(50 * time.Millisecond) // the FIN arrives
	c, _ = p.Get(context.Background())
	if !c.Reused {
		t.Fatal("the pool did not reuse the connection")
	}
	c.SetReadTimeout(5 * time.Second)
	start := time.Now()
	_, err := roundTrip(t, c, nil)
	c.Close()
	if err == nil {
		t.Fatal("a request on a closed connection succeeded")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("found out after %v (%v), want at once", took, err)
	}
}

// A backend that never answers: the read ends with the deadline, no
// sooner than the timeout and not much later than 5/4 of it, also when
// the deadline was armed by earlier requests.
func TestConnReadTimeout(t *testing.T) {
	requests := 0
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if requests++; requests <= 3 {
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
			}
		}
	})
	const timeout = 300 * time.Millisecond
	p := NewPool(PoolConfig{Addr: addr})
	defer p.Close()
	c, _ := p.Get(context.Background())
	defer c.Close()
	for range 3 {
		c.SetReadTimeout(timeout)
		if _, err := roundTrip(t, c, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(timeout / 3)
	}
	c.SetReadTimeout(timeout)
	start := time.Now()
	_, err := roundTrip(t, c, nil)
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want a deadline", err)
	}
	if took < timeout || took > timeout*5/4+200*time.Millisecond {
		t.Errorf("timed out after %v, want %v to 5/4 of it", took, timeout)
	}
}

// A backend that answers after the head, before reading the body (a 413, a
// refusal): the answer is there to read as soon as the request is written.
func TestPoolEarlyAnswer(t *testing.T) {
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		fmt.Fprint(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		_, _ = io.Copy(io.Discard, br) // keep reading so the client's write completes
	})
	p := NewPool(PoolConfig{Addr: addr})
	defer p.Close()
	for _, size := range []int{1 << 10, 1 << 20} {
		c, err := p.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadTimeout(5 * time.Second)
		start := time.Now()
		fmt.Fprintf(c.W, "POST / HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n", size)
		c.W.Write(make([]byte, size))
		if err := c.W.Flush(); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		resp, err := http.ReadResponse(c.R, nil)
		if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%d bytes: %v %v", size, resp, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%d bytes: the early answer took %v", size, took)
		}
		c.Close()
	}
}

// A connection idle for a while is looked at before reuse: one the backend
// closed is dropped, so a request with a body (which could not be resent)
// goes on a new connection; one the backend kept is reused.
func TestPoolDropsConnectionsClosedWhileIdle(t *testing.T) {
	for _, closes := range []bool{true, false} {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				n, _ := io.Copy(io.Discard, req.Body)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(strconv.FormatInt(n, 10)), n)
				if closes {
					return // a short keep-alive, as many backends have
				}
			}
		})
		p := NewPool(PoolConfig{Addr: addr})
		c, _ := p.Get(context.Background())
		c.SetReadTimeout(5 * time.Second)
		if _, err := roundTrip(t, c, []byte("first")); err != nil {
			t.Fatal(err)
		}
		c.Put()
		time.Sleep(probeAfter + 100*time.Millisecond)
		c, err := p.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c.Reused == closes {
			t.Errorf("backend closes: %v; connection reused: %v", closes, c.Reused)
		}
		c.SetReadTimeout(5 * time.Second)
		if got, err := roundTrip(t, c, []byte("second")); err != nil || got != "6" {
			t.Errorf("backend closes: %v; request with a body: %q, %v", closes, got, err)
		}
		c.Close()
		p.Close()
	}
}
