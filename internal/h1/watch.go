package h1

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
)

// The fast path's requests carry no context that ends when the client
// leaves (net/http's does, by reading the connection in the background).
// A handler that may wait long for something other than the client (a
// backend's streamed body) asks for the same with WatchClient, only then:
// the watch costs a goroutine and a read.

// clientWatch reads the client's connection while a handler waits.
type clientWatch struct {
	cn      *conn
	gone    func()
	stopped atomic.Bool
	done    chan struct{}
}

// WatchClient calls gone, from another goroutine, if the client closes or
// resets its connection before stop is called; bytes the client sends
// meanwhile (its next request) are kept for after this response. It is
// for a handler about to wait on something else (a backend) for long.
// stop ends the watch and returns once gone cannot be called any more;
// the handler calls it before releasing what gone touches, and the server
// calls it when the handler returns. A second watch in one response, a
// watch while the request body is unread, or a watch with the client's
// next bytes already buffered does nothing.
func (w *ResponseWriter) WatchClient(gone func()) (stop func()) {
	cn := w.cn
	if cn == nil || cn.watch != nil || cn.body.remaining > 0 || cn.end > cn.start || cn.end == len(cn.buf) {
		return func() {}
	}
	// The read goes after what the buffer holds: the current request's
	// head, which the handler may still be reading, stays as it is.
	cn.deadline.clear(cn.c)
	wt := &clientWatch{cn: cn, gone: gone, done: make(chan struct{})}
	cn.watch = wt
	go wt.run()
	return wt.stop
}

func (wt *clientWatch) run() {
	defer close(wt.done)
	cn := wt.cn
	n, err := cn.c.Read(cn.buf[cn.end:])
	cn.end += n
	if n > 0 || wt.stopped.Load() || errors.Is(err, os.ErrDeadlineExceeded) {
		return // the client is there (or the watch was stopped)
	}
	wt.gone()
}

// stop ends the watch: its read is interrupted through the deadline,
// which the connection's next wait sets anew.
func (wt *clientWatch) stop() {
	if wt.stopped.Swap(true) {
		<-wt.done
		return
	}
	_ = wt.cn.c.SetReadDeadline(aLongTimeAgo)
	<-wt.done
	_ = wt.cn.c.SetReadDeadline(time.Time{})
	wt.cn.deadline = readDeadline{}
}

// aLongTimeAgo is a deadline that has passed: it ends a read at once.
var aLongTimeAgo = time.Unix(1, 0)
