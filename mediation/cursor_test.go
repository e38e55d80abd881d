package mediation_test

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	many := func(streams, partitions int) []mediation.Position {
		var out []mediation.Position
		for s := range streams {
			for p := range partitions {
				out = append(out, mediation.Position{Stream: fmt.Sprintf("topic-%03d", s), Partition: int32(p), Offset: int64(s*1000 + p)})
			}
		}
		return out
	}
	tests := []struct {
		desc string
		pos  []mediation.Position
	}{
		{desc: "empty cursor, as on a page with no message", pos: nil},
		{desc: "one partition at offset zero", pos: offsets(0)},
		{desc: "JetStream-like sequence on partition 0", pos: []mediation.Position{{Stream: "ORDERS", Offset: 1 << 40}}},
		{desc: "largest offset and partition", pos: []mediation.Position{{Stream: "t", Partition: math.MaxInt32, Offset: math.MaxInt64}}},
		{desc: "empty stream name (mock sequence)", pos: []mediation.Position{{Offset: 42}}},
		{desc: "unicode and punctuation in stream names", pos: []mediation.Position{{Stream: "commandes.été/β", Partition: 3, Offset: 7}, {Stream: "a_b-c.d", Offset: 1}}},
		{desc: "stream name of Kafka's maximum length", pos: []mediation.Position{{Stream: strings.Repeat("x", 249), Partition: 1, Offset: 2}}},
		{desc: "three partitions of one topic", pos: offsets(5, 0, 17)},
		{desc: "sparse partitions", pos: []mediation.Position{{Stream: "t", Partition: 2, Offset: 1}, {Stream: "t", Partition: 900, Offset: 3}}},
		{desc: "several topics of several partitions", pos: many(7, 12)},
		{desc: "64 topics", pos: many(64, 2)},
		{desc: "1000 partitions of one topic", pos: many(1, 1000)},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := mediation.NewCursor(tc.pos...)
			token := c.String()
			if strings.ContainsAny(token, "+/=") {
				t.Errorf("token %q is not unpadded base64url: it would need escaping in a URL", token)
			}
			got, err := mediation.ParseCursor(token)
			if err != nil {
				t.Fatalf("ParseCursor(String()) = %v", err)
			}
			want := slices.SortedFunc(slices.Values(tc.pos), comparePositions)
			if !slices.Equal(got.Positions(), want) {
				t.Errorf("round trip gave %v, want %v", got.Positions(), want)
			}
			if got.String() != token {
				t.Errorf("re-encoding gave %q, want %q", got.String(), token)
			}
			for _, p := range tc.pos {
				if off, ok := got.Next(p.Stream, p.Partition); !ok || off != p.Offset {
					t.Errorf("Next(%q, %d) = %d, %v; want %d, true", p.Stream, p.Partition, off, ok, p.Offset)
				}
			}
			if _, ok := got.Next("no-such-topic", 0); ok {
				t.Error("Next found a partition the cursor does not hold")
			}
		})
	}
}

// A cursor the gateway hands out must be one it accepts back: a Kafka
// topicPattern over many topics is an ordinary subscription, and its clients
// must be able to resume.
func TestCursorOfLargeSubscriptionIsAccepted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc              string
		topics, partsEach int
	}{
		{desc: "65 topics of 1 partition", topics: 65, partsEach: 1},
		{desc: "100 topics of 50 partitions", topics: 100, partsEach: 50},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var c mediation.Cursor
			for s := range tc.topics {
				for p := range tc.partsEach {
					c.Set(mediation.Position{Stream: fmt.Sprintf("events.%d", s), Partition: int32(p), Offset: 123456})
				}
			}
			token := c.String()
			got, err := mediation.ParseCursor(token)
			if err != nil {
				t.Fatalf("the gateway emits a %d-byte cursor for %d positions that it then refuses: %v", len(token), len(c.Positions()), err)
			}
			if !slices.Equal(got.Positions(), c.Positions()) {
				t.Error("round trip changed the positions")
			}
		})
	}
}

func TestCursorIsCanonical(t *testing.T) {
	t.Parallel()
	a := mediation.Position{Stream: "a", Partition: 1, Offset: 10}
	b := mediation.Position{Stream: "b", Partition: 0, Offset: 20}
	c := mediation.Position{Stream: "a", Partition: 0, Offset: 30}
	want := mediation.NewCursor(c, a, b).String()
	tests := []struct {
		desc string
		cur  func() mediation.Cursor
	}{
		{desc: "other order", cur: func() mediation.Cursor { return mediation.NewCursor(b, a, c) }},
		{desc: "reversed", cur: func() mediation.Cursor { return mediation.NewCursor(b, c, a) }},
		{desc: "set one by one", cur: func() mediation.Cursor {
			var x mediation.Cursor
			x.Set(a)
			x.Set(b)
			x.Set(c)
			return x
		}},
		{desc: "a later Set replaces the offset", cur: func() mediation.Cursor {
			return mediation.NewCursor(mediation.Position{Stream: "a", Partition: 1, Offset: 99}, b, c, a)
		}},
		{desc: "Advance past the message before", cur: func() mediation.Cursor {
			x := mediation.NewCursor(b, c)
			x.Advance(mediation.Position{Stream: "a", Partition: 1, Offset: 9})
			return x
		}},
		{desc: "parsed back", cur: func() mediation.Cursor {
			x, err := mediation.ParseCursor(want)
			if err != nil {
				t.Fatal(err)
			}
			return x
		}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := tc.cur().String(); got != want {
				t.Errorf("token %q, want %q: equal positions must give equal tokens", got, want)
			}
		})
	}
}

func TestCursorCloneDoesNotShare(t *testing.T) {
	t.Parallel()
	orig := mediation.NewCursor(offsets(1, 2)...)
	token := orig.String()
	clone := orig.Clone()
	clone.Advance(mediation.Position{Stream: fakeStream, Partition: 0, Offset: 5})
	clone.Set(mediation.Position{Stream: "u", Offset: 1})
	if orig.String() != token {
		t.Errorf("changing a clone changed the original: %v", orig.Positions())
	}
	if off, _ := clone.Next(fakeStream, 0); off != 6 {
		t.Errorf("Advance past offset 5 gave next offset %d, want 6", off)
	}
	if !mediation.NewCursor().IsZero() || orig.IsZero() {
		t.Error("IsZero is wrong")
	}
}

// cursorBytes builds a raw token from bytes and varints: int values are
// appended as uvarints, int64 values as zig-zag varints, strings as is.
func cursorBytes(parts ...any) string {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			b = append(b, v)
		case int:
			b = binary.AppendUvarint(b, uint64(v))
		case uint64:
			b = binary.AppendUvarint(b, v)
		case int64:
			b = binary.AppendVarint(b, v)
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("cursorBytes: %T", p))
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestParseCursorRejects(t *testing.T) {
	t.Parallel()
	const v = byte(1)
	tests := []struct {
		desc  string
		token string
	}{
		{desc: "empty", token: ""},
		{desc: "not base64", token: "not a cursor!"},
		{desc: "standard base64 alphabet", token: "AQAB+/8"},
		{desc: "JSON", token: `{"partition":0,"offset":1}`},
		{desc: "plain number", token: "42"},
		{desc: "only padding", token: "===="},
		{desc: "unknown version", token: cursorBytes(byte(2), 0, 0)},
		{desc: "version 0", token: cursorBytes(byte(0), 0, 0)},
		{desc: "no position count", token: cursorBytes(v, 0)},
		{desc: "trailing bytes", token: cursorBytes(v, 0, 0, byte(0))},
		{desc: "stream name longer than declared data", token: cursorBytes(v, 1, 10, "abc")},
		{desc: "stream name over 249 bytes", token: cursorBytes(v, 1, 250, strings.Repeat("x", 250), 0)},
		{desc: "stream index out of range", token: cursorBytes(v, 1, 1, "t", 1, 1, 0, int64(0))},
		{desc: "position without a stream table", token: cursorBytes(v, 0, 1, 0, int64(0), int64(0))},
		{desc: "negative offset", token: cursorBytes(v, 1, 1, "t", 1, 0, int64(0), int64(-1))},
		{desc: "most negative offset", token: cursorBytes(v, 1, 1, "t", 1, 0, int64(0), int64(math.MinInt64))},
		{desc: "negative partition", token: cursorBytes(v, 1, 1, "t", 1, 0, int64(-1), int64(0))},
		{desc: "partition over int32", token: cursorBytes(v, 1, 1, "t", 1, 0, int64(math.MaxInt32+1), int64(0))},
		{desc: "partitions out of order", token: cursorBytes(v, 1, 1, "t", 2, 0, int64(1), int64(0), 0, int64(0), int64(0))},
		{desc: "duplicate partition", token: cursorBytes(v, 1, 1, "t", 2, 0, int64(0), int64(5), 0, int64(0), int64(6))},
		{desc: "streams out of order", token: cursorBytes(v, 2, 1, "b", 1, "a", 2, 0, int64(0), int64(0), 1, int64(0), int64(0))},
		{desc: "huge position count", token: cursorBytes(v, 1, 1, "t", uint64(1)<<40, 0, int64(0), int64(0))},
		{desc: "position count above the bytes present", token: cursorBytes(v, 1, 1, "t", 4096, 0, int64(0), int64(0))},
		{desc: "huge stream count", token: cursorBytes(v, uint64(1)<<62, 1, "t")},
		{desc: "largest uvarint as stream count", token: cursorBytes(v, uint64(math.MaxUint64))},
		{desc: "varint overflow", token: cursorBytes(v, 1, 1, "t", 1, 0, int64(0), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})},
		{desc: "unterminated varint", token: cursorBytes(v, 1, 1, "t", 1, 0, int64(0), []byte{0x80})},
		{desc: "longer than 64 KiB", token: strings.Repeat("A", 64<<10+4)},
	}
	// Every strict prefix of a valid token is truncated.
	valid := mediation.NewCursor(offsets(3, 300, 70000)...).String()
	raw, err := base64.RawURLEncoding.DecodeString(valid)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(raw) {
		tests = append(tests, struct{ desc, token string }{
			desc:  fmt.Sprintf("truncated to %d of %d bytes", n, len(raw)),
			token: base64.RawURLEncoding.EncodeToString(raw[:n]),
		})
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c, err := mediation.ParseCursor(tc.token)
			if !errors.Is(err, mediation.ErrBadCursor) {
				t.Fatalf("ParseCursor = %v, %v; want an error wrapping ErrBadCursor", c.Positions(), err)
			}
			if !c.IsZero() {
				t.Errorf("a rejected token still yielded positions %v", c.Positions())
			}
			if msg := err.Error(); !strings.HasPrefix(msg, mediation.ErrBadCursor.Error()+": ") || len(msg) <= len(mediation.ErrBadCursor.Error())+2 {
				t.Errorf("error %q does not say what is wrong", msg)
			}
		})
	}
}

// FuzzParseCursor checks that no input panics the decoder and that every
// accepted token means a well-formed cursor that re-encodes to itself.
func FuzzParseCursor(f *testing.F) {
	f.Add(mediation.NewCursor().String())
	f.Add(mediation.NewCursor(offsets(1, 2, 3)...).String())
	f.Fuzz(func(t *testing.T, token string) {
		c, err := mediation.ParseCursor(token)
		if err != nil {
			if !errors.Is(err, mediation.ErrBadCursor) {
				t.Fatalf("error %v does not wrap ErrBadCursor", err)
			}
			return
		}
		pos := c.Positions()
		for i, p := range pos {
			if p.Offset < 0 || p.Partition < 0 {
				t.Fatalf("accepted negative position %+v", p)
			}
			if i > 0 && comparePositions(pos[i-1], p) >= 0 {
				t.Fatalf("positions %v are not sorted and unique", pos)
			}
		}
		canon := c.String()
		again, err := mediation.ParseCursor(canon)
		if err != nil {
			t.Fatalf("token %q was accepted but its re-encoding %q is not: %v", token, canon, err)
		}
		if !slices.Equal(again.Positions(), pos) {
			t.Fatalf("re-encoding changed the positions: %v became %v", pos, again.Positions())
		}
		if again.String() != canon {
			t.Fatalf("re-encoding is not stable: %q then %q", canon, again.String())
		}
	})
}

func comparePositions(a, b mediation.Position) int {
	if c := strings.Compare(a.Stream, b.Stream); c != 0 {
		return c
	}
	switch {
	case a.Partition < b.Partition:
		return -1
	case a.Partition > b.Partition:
		return 1
	}
	return 0
}
