package httpproxy

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"sync/atomic"

	"github.com/sluicegw/sluice/internal/h1"
)

// bodyCopy copies a response body from the backend to the client.
type bodyCopy struct {
	dst  *bufio.Writer // the client's
	c    *h1.Conn
	w    *h1.ResponseWriter
	stop func()       // ends the watch on the client, once one began
	gone *atomic.Bool // set when the watch closed c: it must not be reused
}

// fill makes sure c has buffered bytes. When reading would block it
// flushes dst first, so that the client sees what came before the wait,
// lifts the read deadline, which bounds only the wait for the head, and
// watches the client: a stream may wait for its next event for as long as
// the backend likes, and a client that left must not hold the backend
// connection all that time.
func (b *bodyCopy) fill() error {
	dst, c := b.dst, b.c
	if c.R.Buffered() > 0 {
		return nil
	}
	if dst.Buffered() > 0 {
		if err := dst.Flush(); err != nil {
			return err
		}
	}
	c.ClearReadTimeout()
	if b.stop == nil {
		// Only the watch's own state is captured: b stays on the stack of
		// the common, unwatched copy.
		gone := new(atomic.Bool)
		b.gone = gone
		b.stop = b.w.WatchClient(func() {
			gone.Store(true)
			_ = c.Conn.Close()
		})
	}
	_, err := c.R.Peek(1)
	return err
}

// stopWatch ends the watch, if any, and reports whether it closed c.
func (b *bodyCopy) stopWatch() (closed bool) {
	if b.stop == nil {
		return false
	}
	b.stop()
	return b.gone.Load()
}

func (b *bodyCopy) length(n int64) error {
	dst, src := b.dst, b.c.R
	for n > 0 {
		if err := b.fill(); err != nil {
			return err
		}
		p, _ := src.Peek(int(min(int64(src.Buffered()), n)))
		if _, err := dst.Write(p); err != nil {
			return err
		}
		_, _ = src.Discard(len(p))
		n -= int64(len(p))
	}
	return nil
}

// chunked passes a chunked body through verbatim, stopping at its end.
func (b *bodyCopy) chunked() error {
	dst, src := b.dst, b.c.R
	var s h1.ChunkScanner
	for {
		if err := b.fill(); err != nil {
			return err
		}
		p, _ := src.Peek(src.Buffered())
		n, done, err := s.Scan(p)
		if err != nil {
			return err
		}
		if _, err := dst.Write(p[:n]); err != nil {
			return err
		}
		_, _ = src.Discard(n)
		if done {
			return nil
		}
	}
}

// untilClose re-frames a body that ends with the backend's connection
// as chunks.
func (b *bodyCopy) untilClose() error {
	dst, src := b.dst, b.c.R
	for {
		err := b.fill()
		if errors.Is(err, io.EOF) {
			_, err = dst.WriteString("0\r\n\r\n")
			return err
		}
		if err != nil {
			return err
		}
		p, _ := src.Peek(src.Buffered())
		dst.WriteString(strconv.FormatInt(int64(len(p)), 16))
		dst.WriteString("\r\n")
		dst.Write(p)
		if _, err := dst.WriteString("\r\n"); err != nil {
			return err
		}
		_, _ = src.Discard(len(p))
	}
}
