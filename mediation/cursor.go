package mediation

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// Position is the place of one message in a replayable source: a Kafka
// topic-partition-offset, a JetStream stream sequence (Partition 0), a mock
// sequence.
type Position struct {
	Stream    string // topic or stream name
	Partition int32
	Offset    int64
}

// Cursor is where a client resumes: for every partition it has read, the
// next offset to read. It travels as an opaque base64url token (the SSE id,
// the GET nextCursor, Last-Event-ID, ?cursor=).
//
// The token is versioned binary: byte 1, then a table of stream names, then
// (stream index, partition, next offset) triples as varints. Positions are kept
// sorted by stream and partition, so equal cursors have equal tokens.
type Cursor struct {
	positions []Position
	last      int // index of the last position set: the next is often the same
}

// Cursor token limits: a decoder never allocates more than these allow.
const (
	cursorVersion  = 1
	maxStreamName  = 249 // Kafka's topic name limit
	maxCursorToken = 64 << 10
)

// NewCursor returns a cursor holding the given next-to-read positions.
func NewCursor(next ...Position) Cursor {
	var c Cursor
	for _, p := range next {
		c.Set(p)
	}
	return c
}

// Positions returns the next-to-read positions, sorted. The slice is shared.
func (c Cursor) Positions() []Position { return c.positions }

// IsZero reports whether the cursor holds no position.
func (c Cursor) IsZero() bool { return len(c.positions) == 0 }

// Next returns the next offset to read in stream/partition.
func (c Cursor) Next(stream string, partition int32) (int64, bool) {
	i, ok := c.find(stream, partition)
	if !ok {
		return 0, false
	}
	return c.positions[i].Offset, true
}

// Set records p.Offset as the next offset to read in p's stream/partition.
func (c *Cursor) Set(p Position) {
	if c.last < len(c.positions) {
		if q := &c.positions[c.last]; q.Partition == p.Partition && q.Stream == p.Stream {
			q.Offset = p.Offset
			return
		}
	}
	i, ok := c.find(p.Stream, p.Partition)
	c.last = i
	if ok {
		c.positions[i].Offset = p.Offset
		return
	}
	c.positions = slices.Insert(c.positions, i, p)
}

// Advance records that the message at p was consumed: the next offset to read
// in its partition becomes p.Offset+1.
func (c *Cursor) Advance(p Position) {
	p.Offset++
	c.Set(p)
}

// Clone returns a cursor that does not share storage with c.
func (c Cursor) Clone() Cursor { return Cursor{positions: slices.Clone(c.positions)} }

func (c Cursor) find(stream string, partition int32) (int, bool) {
	return slices.BinarySearchFunc(c.positions, Position{Stream: stream, Partition: partition}, comparePosition)
}

func comparePosition(a, b Position) int {
	if c := strings.Compare(a.Stream, b.Stream); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}

// String returns the token; the empty cursor has a token too, so that a page
// with no message still carries a nextCursor.
func (c Cursor) String() string {
	// Stack buffers: a token is built for every message a client receives.
	var raw [96]byte
	b := c.appendBinary(raw[:0])
	var enc [128]byte
	if n := base64.RawURLEncoding.EncodedLen(len(b)); n <= len(enc) {
		base64.RawURLEncoding.Encode(enc[:n], b)
		return string(enc[:n])
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// AppendToken appends the base64url token of c to dst.
func (c Cursor) AppendToken(dst []byte) []byte {
	var raw [96]byte
	b := c.appendBinary(raw[:0])
	n := base64.RawURLEncoding.EncodedLen(len(b))
	dst = slices.Grow(dst, n)
	base64.RawURLEncoding.Encode(dst[len(dst):len(dst)+n], b)
	return dst[:len(dst)+n]
}

func (c Cursor) appendBinary(b []byte) []byte {
	return c.appendPositions(c.appendHead(b))
}

// appendHead appends the token's version, stream table and position count:
// what stays the same while only offsets change.
func (c Cursor) appendHead(b []byte) []byte {
	b = append(b, cursorVersion)
	// Stream table: positions are sorted by stream, so equal names are adjacent.
	streams := 0
	for i, p := range c.positions {
		if i == 0 || p.Stream != c.positions[i-1].Stream {
			streams++
		}
	}
	b = binary.AppendUvarint(b, uint64(streams))
	for i, p := range c.positions {
		if i == 0 || p.Stream != c.positions[i-1].Stream {
			b = binary.AppendUvarint(b, uint64(len(p.Stream)))
			b = append(b, p.Stream...)
		}
	}
	return binary.AppendUvarint(b, uint64(len(c.positions)))
}

// appendPositions appends the (stream index, partition, offset) triples.
func (c Cursor) appendPositions(b []byte) []byte {
	idx := -1
	for i, p := range c.positions {
		if i == 0 || p.Stream != c.positions[i-1].Stream {
			idx++
		}
		b = binary.AppendUvarint(b, uint64(idx))
		b = binary.AppendVarint(b, int64(p.Partition))
		b = binary.AppendVarint(b, p.Offset)
	}
	return b
}

// tokenCache appends the tokens of a cursor that keeps its partitions and
// only moves their offsets (a stream's, between two new partitions), with
// the unchanging start of the token encoded once: base64 encodes every 3
// bytes on their own, so the whole 3-byte groups of the head keep their
// text while the offsets after them change.
type tokenCache struct {
	positions int    // len(Cursor.positions) the cache was made for; 0: none
	text      []byte // base64 of head[:len(head)/3*3]
	tail      []byte // the last len(head)%3 bytes of the head
}

// appendToken appends c.AppendToken().
func (t *tokenCache) appendToken(dst []byte, c *Cursor) []byte {
	if len(c.positions) == 0 {
		return c.AppendToken(dst)
	}
	if t.positions != len(c.positions) {
		// Partitions are only ever added to a stream's cursor, so the same
		// count means the same stream table.
		var raw [96]byte
		head := c.appendHead(raw[:0])
		whole := len(head) / 3 * 3
		t.text = base64.RawURLEncoding.AppendEncode(t.text[:0], head[:whole])
		t.tail = append(t.tail[:0], head[whole:]...)
		t.positions = len(c.positions)
	}
	var raw [96]byte
	rest := c.appendPositions(append(raw[:0], t.tail...))
	dst = append(dst, t.text...)
	return base64.RawURLEncoding.AppendEncode(dst, rest)
}

// ParseCursor decodes a token made by Cursor.String. Every failure wraps
// ErrBadCursor and says what is wrong; it never panics, whatever the input.
func ParseCursor(token string) (Cursor, error) {
	bad := func(format string, args ...any) (Cursor, error) {
		return Cursor{}, fmt.Errorf("%w: %s", ErrBadCursor, fmt.Sprintf(format, args...))
	}
	if token == "" {
		return bad("empty token")
	}
	if len(token) > maxCursorToken {
		return bad("token longer than %d bytes", maxCursorToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(token, "="))
	if err != nil {
		return bad("not base64url: %v", err)
	}
	r := cursorReader{b: raw}
	if v := r.byte(); v != cursorVersion {
		return bad("unknown version %d", v)
	}
	nStreams := r.uvarint()
	if nStreams > uint64(len(r.b)) { // a name takes at least its length byte
		return bad("%d streams in a %d-byte token", nStreams, len(raw))
	}
	streams := make([]string, 0, nStreams)
	for range nStreams {
		n := r.uvarint()
		if n > maxStreamName {
			return bad("stream name of %d bytes, at most %d", n, maxStreamName)
		}
		streams = append(streams, string(r.bytes(int(n))))
	}
	nPos := r.uvarint()
	if nPos > uint64(len(r.b))/3 { // a position takes at least 3 bytes
		return bad("%d positions in a %d-byte token", nPos, len(raw))
	}
	var c Cursor
	c.positions = make([]Position, 0, min(nPos, uint64(len(raw))))
	for range nPos {
		idx, part, off := r.uvarint(), r.varint(), r.varint()
		if r.err != "" {
			break
		}
		if idx >= uint64(len(streams)) {
			return bad("stream index %d out of range", idx)
		}
		if part < 0 || part > 1<<31-1 {
			return bad("partition %d out of range", part)
		}
		if off < 0 {
			return bad("negative offset %d", off)
		}
		p := Position{Stream: streams[idx], Partition: int32(part), Offset: off}
		if n := len(c.positions); n > 0 && comparePosition(c.positions[n-1], p) >= 0 {
			return bad("positions not in canonical order")
		}
		c.positions = append(c.positions, p)
	}
	if r.err != "" {
		return bad("%s", r.err)
	}
	if len(r.b) != 0 {
		return bad("%d trailing bytes", len(r.b))
	}
	return c, nil
}

// cursorReader reads varints and records the first error instead of panicking.
type cursorReader struct {
	b   []byte
	err string
}

func (r *cursorReader) byte() byte {
	if len(r.b) == 0 {
		r.err = "truncated"
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *cursorReader) bytes(n int) []byte {
	if r.err != "" {
		return nil
	}
	if n > len(r.b) {
		r.err = "truncated"
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *cursorReader) uvarint() uint64 {
	if r.err != "" {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = "truncated or overlong varint"
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *cursorReader) varint() int64 {
	if r.err != "" {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = "truncated or overlong varint"
		return 0
	}
	r.b = r.b[n:]
	return v
}
