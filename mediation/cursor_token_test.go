package mediation

import (
	"slices"
	"testing"
)

// BenchmarkCursorToken is the cost of the SSE id of every message: the token
// of a one-partition cursor after each advance, built afresh and as a
// stream builds it (Stream.AppendCursor).
func BenchmarkCursorToken(b *testing.B) {
	advance := func(c *Cursor, i int) {
		c.Advance(Position{Stream: "orders", Partition: 0, Offset: int64(100_000 + i)})
	}
	b.Run("AppendToken", func(b *testing.B) {
		c := NewCursor(Position{Stream: "orders", Offset: 100_000})
		buf := make([]byte, 0, 64)
		b.ReportAllocs()
		for i := range b.N {
			advance(&c, i)
			buf = c.AppendToken(buf[:0])
		}
	})
	b.Run("stream", func(b *testing.B) {
		c := NewCursor(Position{Stream: "orders", Offset: 100_000})
		var tc tokenCache
		buf := make([]byte, 0, 64)
		b.ReportAllocs()
		for i := range b.N {
			advance(&c, i)
			buf = tc.appendToken(buf[:0], &c)
		}
	})
}

// A stream's cached token writer must give exactly the token of the cursor,
// whatever the head length, as offsets move and partitions and streams join.
func TestTokenCacheMatchesAppendToken(t *testing.T) {
	var c Cursor
	var tc tokenCache
	steps := []Position{
		{Stream: "b", Partition: 0, Offset: 0},
		{Stream: "b", Partition: 0, Offset: 127},
		{Stream: "b", Partition: 0, Offset: 128},
		{Stream: "b", Partition: 2, Offset: 5},
		{Stream: "a-longer-topic", Partition: 1, Offset: 1 << 40},
		{Stream: "b", Partition: 1, Offset: 9},
		{Stream: "c", Partition: 70000, Offset: 3},
		{Stream: "b", Partition: 0, Offset: 300000},
	}
	for i, p := range steps {
		for d := range int64(200) {
			p := p
			p.Offset += d * 997
			c.Advance(p)
			got := string(tc.appendToken([]byte("id: "), &c))
			want := "id: " + c.String()
			if got != want {
				t.Fatalf("step %d+%d: cached token %q, want %q", i, d, got, want)
			}
			back, err := ParseCursor(got[len("id: "):])
			if err != nil || !slices.Equal(back.Positions(), c.Positions()) {
				t.Fatalf("step %d+%d: token does not parse back: %v", i, d, err)
			}
		}
	}
}
