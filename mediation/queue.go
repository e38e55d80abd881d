package mediation

import (
	"sync"
	"sync/atomic"
)

// BufferedSubscription is implemented by subscriptions that know how many
// messages Next would return without blocking (a fetched batch). The engine
// then moves messages to the client in batches, taking one lock per batch
// instead of one channel operation per message.
type BufferedSubscription interface {
	Subscription
	// Buffered is called from the goroutine that calls Next.
	Buffered() int
}

// msgQueue is a stream's read-ahead between one producer (the stream's pump,
// or the hub) and the client's goroutine. The producer appends under a lock;
// the consumer swaps the whole backlog out at once and then reads it without
// locking, so the hand-off costs a lock per batch.
type msgQueue struct {
	mu     sync.Mutex
	items  []*Message    // appended by the producer
	ready  chan struct{} // cap 1: items went from empty to non-empty
	queued atomic.Int64  // items plus what the consumer has not taken
	local  []*Message    // consumer-owned batch
	next   int           // consumer's position in local
}

func newMsgQueue() msgQueue { return msgQueue{ready: make(chan struct{}, 1)} }

// push appends ms (producer side).
func (q *msgQueue) push(ms ...*Message) {
	q.queued.Add(int64(len(ms)))
	q.mu.Lock()
	wasEmpty := len(q.items) == 0
	q.items = append(q.items, ms...)
	q.mu.Unlock()
	if wasEmpty {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
}

// take returns the oldest queued message (consumer side).
func (q *msgQueue) take() (*Message, bool) {
	if q.next == len(q.local) {
		clear(q.local)
		q.mu.Lock()
		q.local, q.items = q.items, q.local[:0]
		q.mu.Unlock()
		q.next = 0
		if len(q.local) == 0 {
			return nil, false
		}
	}
	m := q.local[q.next]
	q.local[q.next] = nil
	q.next++
	q.queued.Add(-1)
	return m, true
}

// dropOldest discards the oldest message the consumer has not swapped out
// yet (producer side); false when there is none.
func (q *msgQueue) dropOldest() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return false
	}
	q.items[0] = nil
	q.items = q.items[1:]
	q.queued.Add(-1)
	return true
}
