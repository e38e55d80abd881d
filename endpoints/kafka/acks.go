package kafka

import "slices"

// partAcks tracks the messages of one assigned partition of a consumer
// group, so that the committed position never passes a message that was not
// acknowledged.
//
// Only unsettled offsets are stored, so its memory is bounded by the
// messages in flight (the engine's window), not by how far acks run ahead of
// a slow one. The commit point is the lowest of: the oldest unsettled
// offset, the lowest nacked offset, and the offset after the last yielded.
type partAcks struct {
	pending []int64 // yielded, neither acked nor nacked; increasing
	next    int64   // offset after the last yielded; -1 before the first
	nacked  int64   // lowest nacked offset; -1 when none
	// committed is the last position committed; -1 before the first commit.
	committed int64
	// dropped is set when the partition is revoked or the subscription
	// closed: late acks are ignored, the next owner reads them again.
	dropped bool
}

func newPartAcks() *partAcks {
	return &partAcks{next: -1, nacked: -1, committed: -1}
}

// yielded records that the message at off was handed out. Offsets of one
// partition are yielded in increasing order.
func (p *partAcks) yielded(off int64) {
	p.pending = append(p.pending, off)
	p.next = off + 1
}

// settle records the ack (ok) or nack of the message at off.
func (p *partAcks) settle(off int64, ok bool) {
	if i, found := slices.BinarySearch(p.pending, off); found {
		if i == 0 {
			p.pending = p.pending[1:] // the usual, in-order case: no copy
		} else {
			p.pending = slices.Delete(p.pending, i, i+1)
		}
	}
	if !ok && (p.nacked < 0 || off < p.nacked) {
		p.nacked = off
	}
}

// commitPoint returns the position that may be committed, and whether it is
// ahead of what was committed.
func (p *partAcks) commitPoint() (int64, bool) {
	if p.next < 0 {
		return 0, false // nothing yielded yet: keep the group's position
	}
	w := p.next
	if len(p.pending) > 0 {
		w = min(w, p.pending[0])
	}
	if p.nacked >= 0 {
		w = min(w, p.nacked)
	}
	return w, w > p.committed
}
