package tcpproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait for something that must happen; generous,
// so that a busy machine does not fail a test.
const waitTimeout = 30 * time.Second

// echoServer answers every line with the same line, and half-closes its
// side when the client half-closes its own. It is closed at test cleanup.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes line and reads the echo.
func roundTrip(t *testing.T, c net.Conn, line string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read echo of %q: %v", line, err)
	}
	if got != line+"\n" {
		t.Fatalf("echo = %q, want %q", got, line+"\n")
	}
}

// wantClosed asserts that the peer closed or reset c: a read ends with an
// error other than a timeout.
func wantClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read = %v, want the connection closed by the proxy", err)
	}
}

// wantSilent asserts that nothing comes back on c for a while: the
// connection is black-holed. It cannot pass wrongly on a slow machine.
func wantSilent(t *testing.T, c net.Conn) {
	t.Helper()
	_, _ = io.WriteString(c, "anyone?\n")
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := c.Read(make([]byte, 16))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read = %d bytes, %v; want silence (a timeout)", n, err)
	}
	_ = c.SetReadDeadline(time.Time{})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestForwardsBothWays(t *testing.T) {
	t.Parallel()
	p := New(t, echoServer(t))
	var conns []net.Conn
	for range 3 {
		conns = append(conns, dial(t, p.Addr()))
	}
	for i, c := range conns {
		roundTrip(t, c, "hello "+string(rune('a'+i)))
	}
	waitFor(t, "3 open connections", func() bool { return p.Open() == 3 })
	if got := p.Accepted(); got != 3 {
		t.Fatalf("Accepted = %d, want 3", got)
	}
}

func TestHalfCloseReachesTheTarget(t *testing.T) {
	t.Parallel()
	p := New(t, echoServer(t))
	c := dial(t, p.Addr())
	if _, err := io.WriteString(c, "last words"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read after half-close: %v", err)
	}
	if string(got) != "last words" {
		t.Fatalf("got %q, want the echo then end of stream", got)
	}
	waitFor(t, "the pair to be released", func() bool { return p.Open() == 0 })
}

func TestCutAllDropsOpenConnectionsAndKeepsListening(t *testing.T) {
	t.Parallel()
	p := New(t, echoServer(t))
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	roundTrip(t, a, "a")
	roundTrip(t, b, "b")

	p.CutAll()
	wantClosed(t, a)
	wantClosed(t, b)
	if n := p.Open(); n != 0 {
		t.Fatalf("Open = %d after CutAll, want 0", n)
	}
	roundTrip(t, dial(t, p.Addr()), "after the cut")
}

func TestPauseBlackHolesUntilResume(t *testing.T) {
	t.Parallel()
	p := New(t, echoServer(t))
	before := dial(t, p.Addr())
	roundTrip(t, before, "up")

	p.Pause()
	wantClosed(t, before)
	during := dial(t, p.Addr()) // accepted, as by a host whose broker hangs
	wantSilent(t, during)

	p.Resume()
	wantClosed(t, during) // so that its client reconnects
	roundTrip(t, dial(t, p.Addr()), "back")
}

func TestRefuseResetsNewConnections(t *testing.T) {
	t.Parallel()
	p := New(t, echoServer(t))
	before := dial(t, p.Addr())
	roundTrip(t, before, "up")

	p.Refuse()
	wantClosed(t, before)
	// The reset may come before the dial returns or on the first read.
	if c, err := net.DialTimeout("tcp", p.Addr(), waitTimeout); err == nil {
		defer c.Close()
		wantClosed(t, c)
	}

	p.Resume()
	roundTrip(t, dial(t, p.Addr()), "back")
}

func TestUnreachableTargetClosesTheClient(t *testing.T) {
	t.Parallel()
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()

	p := New(t, target)
	wantClosed(t, dial(t, p.Addr()))
}

func TestCloseStopsListeningAndIsIdempotent(t *testing.T) {
	t.Parallel()
	p := New(t, echoServer(t))
	open := dial(t, p.Addr())
	roundTrip(t, open, "up")
	p.Pause()
	held := dial(t, p.Addr())
	waitFor(t, "the held connection to be accepted", func() bool { return p.Accepted() == 2 })

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wantClosed(t, open)
	wantClosed(t, held)
	if c, err := net.DialTimeout("tcp", p.Addr(), waitTimeout); err == nil {
		c.Close()
		t.Fatal("dial after Close succeeded, want the port closed")
	}
}

// Connections and cuts racing each other leave no goroutine behind and no
// data race (run with -race); TestMain checks for leaks.
func TestConcurrentCutsAndDials(t *testing.T) {
	t.Parallel()
	p := New(t, echoServer(t))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				c, err := net.DialTimeout("tcp", p.Addr(), waitTimeout)
				if err != nil {
					continue
				}
				_ = c.SetDeadline(time.Now().Add(waitTimeout))
				_, _ = io.WriteString(c, "x\n")
				_, _ = c.Read(make([]byte, 2))
				c.Close()
			}
		}()
		if i%2 == 0 {
			p.CutAll()
		}
	}
	for range 5 {
		p.Pause()
		p.Refuse()
		p.Resume()
		p.CutAll()
	}
	wg.Wait()
	roundTrip(t, dial(t, p.Addr()), "still forwarding")
}
