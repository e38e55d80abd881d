package sse

import (
	"bytes"
	"testing"
)

// BenchmarkAppendEvent is the encoding of one 100-byte single-line event.
func BenchmarkAppendEvent(b *testing.B) {
	data := bytes.Repeat([]byte("x"), 100)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for range b.N {
		buf = AppendEvent(buf[:0], "", "message", data)
	}
}
