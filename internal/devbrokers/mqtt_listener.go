package devbrokers

import (
	"log/slog"
	"net"
	"sync"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// tcpListener is a mochi listener for plain TCP that, unlike mochi's own
// listeners.TCP (v2.7.9), lets every connection handler finish before Close
// returns. Mochi's handler registers itself in a WaitGroup that the server's
// Close waits on; with listeners.TCP a connection accepted just before Close
// registers concurrently with that wait (a data race that `go test -race`
// reports) and a client still in its handshake can keep Close waiting.
type tcpListener struct {
	id      string
	address string
	log     *slog.Logger
	ln      net.Listener

	mu        sync.Mutex
	closed    bool
	serving   bool
	serveDone chan struct{}         // closed when Serve's accept loop ends
	conns     map[net.Conn]struct{} // accepted and not yet finished
	handlers  sync.WaitGroup        // running establish calls
}

func newTCPListener(id, address string) *tcpListener {
	return &tcpListener{
		id:        id,
		address:   address,
		serveDone: make(chan struct{}),
		conns:     make(map[net.Conn]struct{}),
	}
}

// ID returns the listener's id.
func (l *tcpListener) ID() string { return l.id }

// Protocol returns "tcp".
func (l *tcpListener) Protocol() string { return listeners.TypeTCP }

// Address returns the bound address once Init has run, so that a port of 0
// reads back as the port the kernel chose.
func (l *tcpListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

// Init binds the socket.
func (l *tcpListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// Serve accepts connections until Close and hands each to establish in its
// own goroutine.
func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.serving = true
	l.mu.Unlock()
	defer close(l.serveDone)

	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			conn.Close()
			continue
		}
		l.conns[conn] = struct{}{}
		l.handlers.Add(1)
		l.mu.Unlock()

		go func() {
			defer l.handlers.Done()
			if err := establish(l.id, conn); err != nil {
				l.log.Debug("mqtt connection ended", "remote", conn.RemoteAddr().String(), "error", err)
			}
			l.mu.Lock()
			delete(l.conns, conn)
			l.mu.Unlock()
		}()
	}
}

// Close stops accepting, disconnects the clients through closeClients (an
// MQTT DISCONNECT saying the server shuts down), drops connections still in
// their handshake, and waits for every handler to return.
func (l *tcpListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	serving := l.serving
	l.mu.Unlock()

	if l.ln != nil {
		l.ln.Close()
	}
	if serving {
		<-l.serveDone
	}
	closeClients(l.id)
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.handlers.Wait()
}

// Interface guard.
var _ listeners.Listener = (*tcpListener)(nil)
