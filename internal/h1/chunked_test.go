package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// chunkedBody is what a net/http server sends: httputil's chunked writer,
// then trailers and the final CRLF.
func chunkedBody(t testing.TB, pieces []string, trailer string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := httputil.NewChunkedWriter(&b)
	for _, p := range pieces {
		if _, err := io.WriteString(w, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil { // the last chunk, "0\r\n"
		t.Fatal(err)
	}
	b.WriteString(trailer)
	b.WriteString("\r\n")
	return b.Bytes()
}

// scanAll feeds parts to a fresh scanner one after the other, as a proxy
// reading a connection would, and returns the body length it found, the
// chunk data it saw and its error.
func scanAll(parts ...[]byte) (n int, done bool, data []byte, err error) {
	var s ChunkScanner
	collect := func(b []byte) { data = append(data, b...) }
	for _, p := range parts {
		k, d, e := s.scan(p, collect)
		n += k
		if e != nil {
			return n, false, data, e
		}
		if d {
			return n, true, data, nil
		}
		if k != len(p) {
			return n, false, data, errors.New("scan consumed part of p without being done")
		}
	}
	return n, false, data, nil
}

func TestChunkScannerRoundTrip(t *testing.T) {
	next := []byte("HTTP/1.1 200 OK\r\n") // the next response on the connection
	big := strings.Repeat("0123456789abcdef", 300)
	for _, tc := range []struct {
		name    string
		pieces  []string
		trailer string
	}{
		{"empty body", nil, ""},
		{"one chunk", []string{"hello"}, ""},
		{"many sizes", []string{"a", "bc", big[:15], big[:16], big[:255], big[:256], big}, ""},
		{"CRLF and chunk syntax inside data", []string{"\r\n0\r\n\r\n", "5\r\n"}, ""},
		{"trailers", []string{"hello", " world"}, "X-Checksum: abc\r\nServer-Timing: db;dur=53\r\nX-Empty:\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := chunkedBody(t, tc.pieces, tc.trailer)
			in := append(append([]byte(nil), body...), next...)
			want := strings.Join(tc.pieces, "")
			// Every split of the input into two reads, including
			// inside size lines and between CR and LF.
			for k := 0; k <= len(in); k++ {
				n, done, data, err := scanAll(in[:k], in[k:])
				if err != nil || !done || n != len(body) || string(data) != want {
					t.Fatalf("split at %d: n %d done %v err %v data %d bytes; want n %d done, %d bytes",
						k, n, done, err, len(data), len(body), len(want))
				}
			}
			// One byte per read.
			parts := make([][]byte, len(in))
			for i := range in {
				parts[i] = in[i : i+1]
			}
			if n, done, data, err := scanAll(parts...); err != nil || !done || n != len(body) || string(data) != want {
				t.Fatalf("byte by byte: n %d done %v err %v; want n %d", n, done, err, len(body))
			}
			checkChunkedAgainstNetHTTP(t, in, len(in)/2)
		})
	}
}

func TestChunkScannerAccepts(t *testing.T) {
	for _, tc := range []struct{ name, body, data string }{
		{"extensions", "5;name=value;quoted=\"a b\"\r\nhello\r\n0;last\r\n\r\n", "hello"},
		{"extension with OWS", "5; a = b\t\r\nhello\r\n0\r\n\r\n", "hello"},
		{"upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
		{"16 digits", "000000000000000a\r\n0123456789\r\n0000000000000000\r\n\r\n", "0123456789"},
		{"trailer with OWS and obs-text", "0\r\nX-A:\t b c \r\nX-B: caf\xc3\xa9\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, done, data, err := scanAll([]byte(tc.body + "rest"))
			if err != nil || !done || n != len(tc.body) || string(data) != tc.data {
				t.Fatalf("n %d done %v err %v data %q; want n %d done, data %q", n, done, err, data, len(tc.body), tc.data)
			}
			checkChunkedAgainstNetHTTP(t, []byte(tc.body+"rest"), 3)
		})
	}
}

func TestChunkScannerRefuses(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"empty size", "\r\nhello\r\n0\r\n\r\n"},
		{"leading space", " 5\r\nhello\r\n0\r\n\r\n"},
		{"trailing space", "5 \r\nhello\r\n0\r\n\r\n"},
		{"space before extension", "5 ;a\r\nhello\r\n0\r\n\r\n"},
		{"empty size before extension", ";a\r\nhello\r\n0\r\n\r\n"},
		{"sign", "+5\r\nhello\r\n0\r\n\r\n"},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
		{"non-hex", "g\r\n"},
		{"17 digits", "00000000000000005\r\nhello\r\n0\r\n\r\n"},
		{"above int64", "8000000000000000\r\n"},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n"},
		{"bare CR after size", "5\rhello\r\n0\r\n\r\n"},
		{"bare LF in extension", "5;a\nhello\r\n0\r\n\r\n"},
		{"CR in extension", "5;a\rb\r\nhello\r\n0\r\n\r\n"},
		{"NUL in extension", "5;a\x00\r\nhello\r\n0\r\n\r\n"},
		{"obs-text in extension", "5;a=\xff\r\nhello\r\n0\r\n\r\n"},
		{"long extension", "5;" + strings.Repeat("a", maxChunkLine) + "\r\nhello\r\n0\r\n\r\n"},
		{"data too long", "5\r\nhello!\r\n0\r\n\r\n"},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n"},
		{"no CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n"},
		{"bare LF after last chunk", "0\n\r\n"},
		{"bare LF ending the body", "0\r\n\n"},
		{"bare CR ending the body", "0\r\n\rX"},
		{"trailer obs-fold", "0\r\nX-A: b\r\n c\r\n\r\n"},
		{"trailer without colon", "0\r\nX-A\r\n\r\n"},
		{"trailer empty name", "0\r\n: b\r\n\r\n"},
		{"trailer space before colon", "0\r\nX-A : b\r\n\r\n"},
		{"trailer bare LF", "0\r\nX-A: b\n\r\n"},
		{"trailer NUL", "0\r\nX-A: b\x00\r\n\r\n"},
		{"trailer too large", "0\r\nX-A: " + strings.Repeat("b", maxTrailerSize) + "\r\n\r\n"},
		{"extension flood", strings.Repeat("1;"+strings.Repeat("e", 100)+"\r\nx\r\n", 200) + "0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.body)
			n, done, _, err := scanAll(in)
			if !errors.Is(err, ErrBadChunk) || done || n > len(in) {
				t.Fatalf("Scan(%.60q) = %d, %v, %v; want ErrBadChunk", in, n, done, err)
			}
			checkChunkedAgainstNetHTTP(t, in, len(in)/2)
		})
	}
}

// net/http's own reader refuses an extension flood too, at the same chunk:
// Scan replicates its overhead accounting. Each chunk here adds 86 bytes of
// overhead, so the 191st crosses the 16 KiB allowance.
func TestChunkScannerOverheadLikeNetHTTP(t *testing.T) {
	ext := ";" + strings.Repeat("e", 100)
	for chunks := 150; chunks <= 250; chunks++ {
		in := []byte(strings.Repeat("1"+ext+"\r\nx\r\n", chunks) + "0\r\n\r\n")
		_, _, _, err := scanAll(in)
		_, _, netErr := netHTTPChunked(in)
		if (err == nil) != (netErr == nil) || (err == nil) != (chunks <= 190) {
			t.Fatalf("%d chunks: Scan %v, net/http %v", chunks, err, netErr)
		}
	}
	// Streaming one byte per chunk is legitimate and stays allowed.
	in := []byte(strings.Repeat("1\r\nx\r\n", 100000) + "0\r\n\r\n")
	if _, done, _, err := scanAll(in); err != nil || !done {
		t.Fatalf("one byte per chunk: done %v, err %v", done, err)
	}
}

func TestChunkScannerStates(t *testing.T) {
	var s ChunkScanner
	if n, done, err := s.Scan([]byte("5\r\nhel")); n != 6 || done || err != nil {
		t.Fatalf("first part: %d, %v, %v", n, done, err)
	}
	if n, done, err := s.Scan(nil); n != 0 || done || err != nil {
		t.Fatalf("empty part: %d, %v, %v", n, done, err)
	}
	if n, done, err := s.Scan([]byte("lo\r\n0\r\n\r\nNEXT")); n != 9 || !done || err != nil {
		t.Fatalf("second part: %d, %v, %v", n, done, err)
	}
	if n, done, err := s.Scan([]byte("NEXT")); n != 0 || !done || err != nil {
		t.Fatalf("after the end: %d, %v, %v", n, done, err)
	}

	s.Reset()
	_, _, err := s.Scan([]byte("5\r\nhelloXX"))
	if !errors.Is(err, ErrBadChunk) {
		t.Fatalf("bad chunk: %v", err)
	}
	if n, done, err2 := s.Scan([]byte("0\r\n\r\n")); n != 0 || done || err2 != err {
		t.Fatalf("after an error: %d, %v, %v; want the same error", n, done, err2)
	}

	s.Reset()
	if n, done, err := s.Scan([]byte("0\r\n\r\n")); n != 5 || !done || err != nil {
		t.Fatalf("after Reset: %d, %v, %v", n, done, err)
	}
}

// The refusal is reported at the offending byte, so a caller that logs or
// forwards what came before knows where the body went wrong.
func TestChunkScannerErrorOffset(t *testing.T) {
	var s ChunkScanner
	in := []byte("5\r\nhello\r\nZ\r\n")
	if n, _, err := s.Scan(in); n != 10 || err == nil {
		t.Fatalf("Scan = %d, %v; want 10 and an error", n, err)
	}
}

func TestChunkScannerDoesNotAllocate(t *testing.T) {
	in := chunkedBody(t, []string{"hello", strings.Repeat("x", 1000), "world"}, "X-Sum: 1\r\n")
	var s ChunkScanner
	allocs := testing.AllocsPerRun(100, func() {
		s.Reset()
		for k := 0; k < len(in); k += 7 {
			if _, _, err := s.Scan(in[k:min(k+7, len(in))]); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Scan allocates %v times per body", allocs)
	}
}

// BenchmarkChunkScan scans a 64 KiB body of 4 KiB chunks, as a streaming
// backend sends it.
func BenchmarkChunkScan(b *testing.B) {
	pieces := make([]string, 16)
	for i := range pieces {
		pieces[i] = strings.Repeat("x", 4096)
	}
	in := chunkedBody(b, pieces, "")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var s ChunkScanner
	for b.Loop() {
		s.Reset()
		if _, done, err := s.Scan(in); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}

// BenchmarkChunkScanSmall is the worst case: 16-byte chunks.
func BenchmarkChunkScanSmall(b *testing.B) {
	pieces := make([]string, 1024)
	for i := range pieces {
		pieces[i] = "data: 0123456\n\n"
	}
	in := chunkedBody(b, pieces, "")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var s ChunkScanner
	for b.Loop() {
		s.Reset()
		if _, done, err := s.Scan(in); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}

// FuzzChunkScanner checks Scan against net/http's chunked body reader:
// a body Scan finds complete, net/http reads to the same data and the same
// end; a body net/http reads, Scan finds complete at the same end or
// refuses; and splitting the input between two Scan calls changes nothing.
func FuzzChunkScanner(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\nNEXT"), uint16(3))
	f.Add([]byte("5;a=\"b c\"\r\nhello\r\n0\r\nX-A: b\r\nX-B:c\r\n\r\n"), uint16(20))
	f.Add([]byte("0005\r\nhello\r\n00;x\r\n\r\n"), uint16(1))
	f.Add([]byte("5 \r\nhello\r\n0\r\n\r\n"), uint16(0))
	f.Add([]byte("5\r\nhello\n0\r\n\r\n"), uint16(0))
	f.Add([]byte("0\r\nX-A: b\r\n c\r\n\r\n"), uint16(0))
	f.Add([]byte("ffffffffffffffff\r\n"), uint16(0))
	f.Add([]byte("10\r\n0123456789abcdef\r\n0\r\n\r\n"), uint16(9))
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		checkChunkedAgainstNetHTTP(t, in, int(split))
	})
}

// checkChunkedAgainstNetHTTP fails t when Scan's reading of the chunked
// body at the start of in disagrees with net/http's.
func checkChunkedAgainstNetHTTP(t *testing.T, in []byte, split int) {
	t.Helper()
	n, done, data, err := scanAll(in)
	switch {
	case err != nil && (done || n > len(in)),
		err == nil && !done && n != len(in),
		done && (n <= 0 || n > len(in)):
		t.Fatalf("Scan(%q) = %d, %v, %v: inconsistent", in, n, done, err)
	}
	split = min(split, len(in))
	n2, done2, data2, err2 := scanAll(in[:split], in[split:])
	if n2 != n || done2 != done || (err2 == nil) != (err == nil) || !bytes.Equal(data2, data) {
		t.Fatalf("%q: one Scan gives %d, %v, %v; split at %d gives %d, %v, %v", in, n, done, err, split, n2, done2, err2)
	}

	netData, consumed, netErr := netHTTPChunked(in)
	if done {
		if netErr != nil {
			t.Fatalf("Scan accepted %q, net/http refused it: %v", in, netErr)
		}
		if consumed != n || !bytes.Equal(netData, data) {
			t.Fatalf("%q: Scan's body is %d bytes with data %q; net/http's %d with %q", in, n, data, consumed, netData)
		}
		// httputil's reader, which stops before the trailers, reads the
		// same data.
		hu, err := io.ReadAll(httputil.NewChunkedReader(bufio.NewReader(bytes.NewReader(in))))
		if err != nil || !bytes.Equal(hu, data) {
			t.Fatalf("%q: httputil.NewChunkedReader read %q, %v; Scan saw %q", in, hu, err, data)
		}
	} else if netErr == nil && err == nil {
		t.Fatalf("net/http read %q to its end at %d, Scan wants more", in, consumed)
	}
}

// netHTTPChunked reads the chunked body at the start of in the way
// http.Transport does: as the body of a response, trailers included. It
// uses the same chunked reader as httputil.NewChunkedReader, plus the
// trailer handling that only the response body has.
func netHTTPChunked(in []byte) (data []byte, consumed int, err error) {
	const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	all := append([]byte(head), in...)
	src := bytes.NewReader(all)
	// A buffer beyond maxTrailerSize: net/http bounds trailers by it.
	br := bufio.NewReaderSize(src, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		panic(err)
	}
	data, err = io.ReadAll(resp.Body)
	return data, len(all) - src.Len() - br.Buffered() - len(head), err
}
