package memtest

import (
	"context"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// WaitTimeout bounds every wait of the helpers: generous, so that a busy
// machine never fails a test that would pass.
const WaitTimeout = 20 * time.Second

// State is a snapshot of the endpoint for assertions.
type State struct {
	// Log is every stored message, in offset order.
	Log []*mediation.Message
	// Acked and Nacked count the acks and nacks per offset.
	Acked, Nacked map[int64]int
	// Open is the number of open subscriptions.
	Open   int
	Closed bool
}

// State returns a snapshot.
func (e *Endpoint) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stateLocked()
}

func (e *Endpoint) stateLocked() State {
	st := State{
		Log:   append([]*mediation.Message(nil), e.log...),
		Acked: map[int64]int{}, Nacked: map[int64]int{},
		Open: e.open, Closed: e.closed,
	}
	for off := range e.log {
		if n := e.acked[off]; n > 0 {
			st.Acked[int64(off)] = int(n)
		}
		if n := e.nacked[off]; n > 0 {
			st.Nacked[int64(off)] = int(n)
		}
	}
	return st
}

// Await blocks until cond holds for the endpoint's state, and fails t with
// what when it does not within WaitTimeout. It wakes on every change rather
// than polling.
func (e *Endpoint) Await(t testing.TB, what string, cond func(State) bool) State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	for {
		e.mu.Lock()
		st := e.stateLocked()
		ch := e.waitCh()
		e.mu.Unlock()
		if cond(st) {
			return st
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; acked %v, nacked %v, open subscriptions %d, log length %d",
				what, st.Acked, st.Nacked, st.Open, len(st.Log))
			return st
		}
	}
}

// AckedAll reports whether every offset in [from, to) was acked.
func (s State) AckedAll(from, to int64) bool {
	for o := from; o < to; o++ {
		if s.Acked[o] == 0 {
			return false
		}
	}
	return true
}
