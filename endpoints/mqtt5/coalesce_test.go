package mqtt5

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
)

// These tests drive coalescingConn over a real TCP connection with real
// MQTT packets written the way paho writes them (ControlPacket.WriteTo),
// and parse what arrives with paho's reader.

// tcpPair returns a coalescingConn over the client end of a loopback TCP
// connection, the underlying client connection, and the server end.
func tcpPair(t *testing.T, wrap func(net.Conn) net.Conn) (*coalescingConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	if wrap != nil {
		raw = wrap(raw)
	}
	c := newCoalescingConn(raw)
	t.Cleanup(func() { _ = c.Close(); _ = server.Close() })
	return c, server
}

// publishPacket is a QoS 1 PUBLISH that names its writer and sequence.
func publishPacket(writer, seq int, payload []byte) *packets.Publish {
	return &packets.Publish{
		Topic:      "w/" + strconv.Itoa(writer),
		QoS:        1,
		PacketID:   uint16(seq%65535 + 1),
		Properties: &packets.Properties{User: []packets.User{{Key: "seq", Value: strconv.Itoa(seq)}}},
		Payload:    payload,
	}
}

// payloadFor is a payload whose bytes depend on writer and seq, so that
// a packet spliced with another is noticed.
func payloadFor(writer, seq, size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(writer*31 + seq*7 + i)
	}
	return p
}

// readPublishes parses n PUBLISH packets from r and checks that each is
// whole and that every writer's packets arrive in the order written.
func readPublishes(r io.Reader, n int) error {
	br := bufio.NewReader(r)
	next := map[int]int{}
	for i := range n {
		cp, err := packets.ReadPacket(br)
		if err != nil {
			return fmt.Errorf("packet %d of %d: %w", i, n, err)
		}
		p, ok := cp.Content.(*packets.Publish)
		if !ok {
			return fmt.Errorf("packet %d: type %d, want PUBLISH", i, cp.Type)
		}
		var writer, seq int
		if _, err := fmt.Sscanf(p.Topic, "w/%d", &writer); err != nil {
			return fmt.Errorf("packet %d: topic %q", i, p.Topic)
		}
		if len(p.Properties.User) != 1 {
			return fmt.Errorf("packet %d: user properties %v", i, p.Properties.User)
		}
		seq, _ = strconv.Atoi(p.Properties.User[0].Value)
		if seq != next[writer] {
			return fmt.Errorf("writer %d: got packet %d, want %d", writer, seq, next[writer])
		}
		next[writer]++
		if want := payloadFor(writer, seq, len(p.Payload)); !bytes.Equal(p.Payload, want) {
			return fmt.Errorf("writer %d packet %d: payload corrupted", writer, seq)
		}
	}
	return nil
}

// Packets written at once by many goroutines arrive whole, each writer's in
// its order, with sizes from a few bytes to several read buffers.
func TestCoalescingConnConcurrentPackets(t *testing.T) {
	t.Parallel()
	c, server := tcpPair(t, nil)
	const writers, each = 16, 300
	read := make(chan error, 1)
	go func() { read <- readPublishes(server, writers*each) }()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for s := range each {
				size := (w*each + s) % 97
				if s%50 == 0 {
					size = 20_000 // bigger than the read buffer
				}
				if _, err := publishPacket(w, s, payloadFor(w, s, size)).WriteTo(c); err != nil {
					t.Errorf("writer %d packet %d: %v", w, s, err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-read:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the packets did not all arrive")
	}
}

// gatedConn holds its first Write until gate is closed, as a slow socket
// would, and counts the writes that reach the socket.
type gatedConn struct {
	net.Conn
	gate   chan struct{}
	writes atomic.Int32
}

func (g *gatedConn) Write(p []byte) (int, error) {
	if g.writes.Add(1) == 1 {
		<-g.gate
	}
	return g.Conn.Write(p)
}

// While one packet is being written, others do not wait for the socket:
// their WriteTo returns at once, and they all leave in the next write.
func TestCoalescingConnSharesWrites(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	var gated *gatedConn
	c, server := tcpPair(t, func(raw net.Conn) net.Conn {
		gated = &gatedConn{Conn: raw, gate: gate}
		return gated
	})
	read := make(chan error, 1)
	go func() { read <- readPublishes(server, 5) }()

	first := make(chan error, 1)
	go func() {
		_, err := publishPacket(0, 0, payloadFor(0, 0, 10)).WriteTo(c)
		first <- err
	}()
	waitFor(t, "the first packet reaches the socket", func() bool { return gated.writes.Load() == 1 })
	for w := 1; w <= 4; w++ {
		done := make(chan error, 1)
		go func() {
			_, err := publishPacket(w, 0, payloadFor(w, 0, 10)).WriteTo(c)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("writer %d: %v", w, err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("writer %d waited for the socket write of another packet", w)
		}
	}
	close(gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if n := gated.writes.Load(); n != 2 {
		t.Errorf("%d socket writes for 5 packets, want 2 (the first, then the four others together)", n)
	}
}

// A failed socket write is not lost: the connection is closed, so that a
// reader waiting on it (paho's) fails and reconnects, and the next writer
// gets the error.
func TestCoalescingConnWriteError(t *testing.T) {
	t.Parallel()
	c, _ := tcpPair(t, nil)
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	// A write deadline in the past fails the socket write but not reads.
	if err := c.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := publishPacket(0, 0, []byte("lost")).WriteTo(c); err != nil {
		t.Fatalf("the first packet's WriteTo: %v, want nil (its write happens after its parts were appended)", err)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("Read succeeded on a connection whose write failed")
		}
	case <-time.After(waitTimeout):
		t.Fatal("a reader still waits on a connection whose write failed")
	}
	_, err := publishPacket(0, 1, []byte("next")).WriteTo(c)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the next WriteTo: %v, want the write deadline error", err)
	}
	if _, err := c.Write([]byte{0xc0, 0}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a Write without Lock: %v, want the write deadline error", err)
	}
}

// A Write without Lock (paho does not make one) is a packet of its own:
// concurrent ones stay whole and in order, each returns once written, with
// the socket's error, and it keeps its place among the caller's packets.
func TestCoalescingConnWriteWithoutLock(t *testing.T) {
	t.Parallel()
	c, server := tcpPair(t, nil)
	const writers, each = 8, 200
	read := make(chan error, 1)
	go func() { read <- readPublishes(server, writers*each+3) }()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for s := range each {
				var b bytes.Buffer
				_, _ = publishPacket(w, s, payloadFor(w, s, s%40)).WriteTo(&b)
				if n, err := c.Write(b.Bytes()); err != nil || n != b.Len() {
					t.Errorf("writer %d packet %d: wrote %d of %d bytes: %v", w, s, n, b.Len(), err)
					return
				}
			}
		})
	}
	wg.Wait()
	var b bytes.Buffer
	_, _ = publishPacket(writers, 1, payloadFor(writers, 1, 10)).WriteTo(&b)
	for s, write := range []func() error{
		func() error { _, err := publishPacket(writers, 0, payloadFor(writers, 0, 10)).WriteTo(c); return err },
		func() error { _, err := c.Write(b.Bytes()); return err },
		func() error { _, err := publishPacket(writers, 2, payloadFor(writers, 2, 10)).WriteTo(c); return err },
	} {
		if err := write(); err != nil {
			t.Fatalf("packet %d: %v", s, err)
		}
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}

	_ = c.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c.Write([]byte{0xc0, 0}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write without Lock: %v, want the socket's deadline error at once", err)
	}
}

// When the peer stops reading, the bytes waiting in the process stay
// under maxPending however many packets the writers offer; once the peer
// reads again every packet arrives whole. A packet larger than maxPending
// goes through too.
func TestCoalescingConnBoundsMemory(t *testing.T) {
	t.Parallel()
	c, server := tcpPair(t, nil)
	const writers, each, size = 4, 200, 32 << 10 // 25 MB offered in all
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for s := range each {
				pl := payloadFor(w, s, size)
				if w == 0 && s == each/2 {
					pl = payloadFor(w, s, 3*maxPending)
				}
				if _, err := publishPacket(w, s, pl).WriteTo(c); err != nil {
					t.Errorf("writer %d packet %d: %v", w, s, err)
					return
				}
			}
		})
	}
	// Nothing reads: wait until the writers are stuck.
	last := waitStalled(t, c, func(pending int) {
		if pending > maxPending {
			t.Fatalf("%d bytes pending, more than maxPending (%d)", pending, maxPending)
		}
	})
	if last >= writers*each*size {
		t.Fatalf("all %d bytes were taken although nothing reads", last)
	}
	if err := readPublishes(server, writers*each); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// waitStalled waits until nothing was appended to c for a while, as when
// the peer stopped reading, and returns how much was. check sees the
// pending bytes meanwhile.
func waitStalled(t *testing.T, c *coalescingConn, check func(pending int)) uint64 {
	t.Helper()
	var last uint64
	stuck := 0
	waitFor(t, "the writers to block on the full socket", func() bool {
		c.mu.Lock()
		n, pending, writing := c.appended, len(c.pending), c.writing
		c.mu.Unlock()
		if check != nil {
			check(pending)
		}
		if n == last && writing {
			stuck++
		} else {
			stuck, last = 0, n
		}
		time.Sleep(20 * time.Millisecond)
		return stuck >= 10
	})
	return last
}

// Close lets a write in progress finish, with the packets appended behind
// it (a DISCONNECT is written just before paho closes the connection).
func TestCoalescingConnCloseFlushes(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	var gated *gatedConn
	c, server := tcpPair(t, func(raw net.Conn) net.Conn {
		gated = &gatedConn{Conn: raw, gate: gate}
		return gated
	})
	first := make(chan error, 1)
	go func() {
		_, err := publishPacket(0, 0, payloadFor(0, 0, 5)).WriteTo(c)
		first <- err
	}()
	waitFor(t, "the first packet reaches the socket", func() bool { return gated.writes.Load() == 1 })
	if _, err := packets.NewControlPacket(packets.DISCONNECT).WriteTo(c); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	time.Sleep(50 * time.Millisecond)
	close(gate)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte{0xc0, 0}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
	br := bufio.NewReader(server)
	if err := readPublishes(br, 1); err != nil {
		t.Fatal(err)
	}
	cp, err := packets.ReadPacket(br)
	if err != nil || cp.Type != packets.DISCONNECT {
		t.Fatalf("after the PUBLISH: %v, %v; want the DISCONNECT", cp, err)
	}
	if _, err := packets.ReadPacket(br); !errors.Is(err, io.EOF) {
		t.Fatalf("after the DISCONNECT: %v, want EOF", err)
	}
}

// Close does not hang on a peer that stopped reading.
func TestCoalescingConnCloseStalledPeer(t *testing.T) {
	t.Parallel()
	c, _ := tcpPair(t, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := 0; ; s++ {
			if _, err := publishPacket(0, s, payloadFor(0, s, 64<<10)).WriteTo(c); err != nil {
				return
			}
		}
	}()
	waitStalled(t, c, nil)
	start := time.Now()
	_ = c.Close()
	if d := time.Since(start); d > closeFlush+5*time.Second {
		t.Fatalf("Close took %v with a stalled peer", d)
	}
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the writer still blocks after Close")
	}
}

// Writers, a reader and Close running at once neither race nor hang.
func TestCoalescingConnCloseDuringUse(t *testing.T) {
	t.Parallel()
	for range 20 {
		c, server := tcpPair(t, nil)
		var wg sync.WaitGroup
		echoed := make(chan struct{})
		go func() { // c reads its own packets back
			defer close(echoed)
			_, _ = io.Copy(server, server)
		}()
		for w := range 4 {
			wg.Go(func() {
				for s := 0; ; s++ {
					if _, err := publishPacket(w, s, payloadFor(w, s, 50)).WriteTo(c); err != nil {
						return
					}
				}
			})
		}
		wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		time.Sleep(5 * time.Millisecond)
		_ = c.Close()
		wg.Wait()
		<-echoed
		_ = server.Close()
	}
}
