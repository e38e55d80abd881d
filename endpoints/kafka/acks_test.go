package kafka

import (
	"testing"
)

// ackModel is the obvious, unbounded definition of the commit point: the
// lowest yielded offset not acked, else the offset after the last yielded.
type ackModel struct {
	yielded []int64
	acked   map[int64]bool
}

func (m *ackModel) point() (int64, bool) {
	if len(m.yielded) == 0 {
		return 0, false
	}
	for _, o := range m.yielded {
		if !m.acked[o] {
			return o, true
		}
	}
	return m.yielded[len(m.yielded)-1] + 1, true
}

func TestPartAcks(t *testing.T) {
	t.Parallel()
	type op struct {
		yield  int64 // >= 0: yield this offset
		settle int64 // >= 0: settle this offset
		ok     bool
	}
	y := func(o int64) op { return op{yield: o, settle: -1} }
	ack := func(o int64) op { return op{yield: -1, settle: o, ok: true} }
	nack := func(o int64) op { return op{yield: -1, settle: o} }
	for _, tc := range []struct {
		desc string
		ops  []op
		want int64 // -1: nothing to commit
	}{
		{"nothing yielded", nil, -1},
		{"yielded, not acked", []op{y(4), y(5)}, 4},
		{"acked in order", []op{y(4), y(5), ack(4), ack(5)}, 6},
		{"a gap in offsets (compaction) is no hole", []op{y(4), y(9), ack(4), ack(9)}, 10},
		{"an ack behind a pending message waits", []op{y(1), y(2), y(3), ack(2), ack(3)}, 1},
		{"then the pending one is acked", []op{y(1), y(2), y(3), ack(2), ack(3), ack(1)}, 4},
		{"a nack stops the partition there", []op{y(1), y(2), y(3), ack(1), nack(2), ack(3), y(4), ack(4)}, 2},
		{"the lowest nack wins", []op{y(1), y(2), y(3), nack(3), nack(2), ack(1)}, 2},
		{"settling twice is harmless", []op{y(1), y(2), ack(1), ack(1), ack(2)}, 3},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := newPartAcks()
			for _, o := range tc.ops {
				if o.yield >= 0 {
					p.yielded(o.yield)
				} else {
					p.settle(o.settle, o.ok)
				}
			}
			got, ok := p.commitPoint()
			if !ok {
				got = -1
			}
			if got != tc.want {
				t.Fatalf("commit point %d, want %d", got, tc.want)
			}
		})
	}
}

// FuzzPartAcks checks the tracker against the model for any interleaving
// of yields, acks and nacks, and that it keeps only unsettled offsets.
func FuzzPartAcks(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0x81, 0x80, 0x41})
	f.Add([]byte{0, 0, 0, 0, 0x83, 0x82, 0x81, 0x80})
	f.Fuzz(func(t *testing.T, ops []byte) {
		p := newPartAcks()
		m := &ackModel{acked: map[int64]bool{}}
		nacked := map[int64]bool{}
		next := int64(0)
		for _, b := range ops {
			if b&0x80 == 0 { // yield, skipping b&0x7 offsets
				next += int64(b & 0x7)
				p.yielded(next)
				m.yielded = append(m.yielded, next)
				next++
				continue
			}
			if len(m.yielded) == 0 {
				continue
			}
			o := m.yielded[int(b&0x3f)%len(m.yielded)]
			ok := b&0x40 == 0
			if !m.acked[o] && !nacked[o] { // only the first settlement reaches the tracker, as with Message.Ack/Nack
				p.settle(o, ok)
				if ok {
					m.acked[o] = true
				} else {
					nacked[o] = true
				}
			}
		}
		want, wantOK := m.point()
		got, gotOK := p.commitPoint()
		if wantOK != gotOK || want != got {
			t.Fatalf("commit point %d (%v), model %d (%v)", got, gotOK, want, wantOK)
		}
		unsettled := 0
		for _, o := range m.yielded {
			if !m.acked[o] && !nacked[o] {
				unsettled++
			}
		}
		if len(p.pending) != unsettled {
			t.Fatalf("tracker holds %d offsets, %d are unsettled", len(p.pending), unsettled)
		}
	})
}
