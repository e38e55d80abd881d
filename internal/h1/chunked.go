package h1

import (
	"errors"
	"fmt"
	"math"
)

// ErrBadChunk means a chunked body is malformed or outside the subset
// ChunkScanner accepts. Scan wraps it with detail; test with errors.Is.
var ErrBadChunk = errors.New("h1: malformed chunked body")

// Detailed errors, made once so that a refusal does not allocate either.
var (
	errChunkSize     = fmt.Errorf("%w: chunk size is not hex digits followed by CRLF or ';'", ErrBadChunk)
	errChunkTooLarge = fmt.Errorf("%w: chunk size above 16 hex digits or int64", ErrBadChunk)
	errChunkExt      = fmt.Errorf("%w: control byte or over-long chunk extension", ErrBadChunk)
	errChunkLF       = fmt.Errorf("%w: line does not end in CRLF", ErrBadChunk)
	errChunkDataEnd  = fmt.Errorf("%w: chunk data not followed by CRLF", ErrBadChunk)
	errChunkOverhead = fmt.Errorf("%w: too much chunk overhead for the data", ErrBadChunk)
	errTrailerLine   = fmt.Errorf("%w: malformed trailer line", ErrBadChunk)
	errTrailerSize   = fmt.Errorf("%w: trailer section too large", ErrBadChunk)
)

const (
	// maxChunkSizeDigits is net/http's limit, leading zeros included.
	maxChunkSizeDigits = 16
	// maxChunkLine bounds a chunk-size line without its CRLF, extensions
	// included; net/http allows up to 4095 bytes.
	maxChunkLine = 1024
	// maxTrailerSize bounds the trailer section, from after the last
	// chunk's line to the final CRLF inclusive. net/http allows what fits
	// its read buffer (4 KiB by default).
	maxTrailerSize = 16 << 10
	// maxChunkOverhead is net/http's allowance for chunk overhead beyond
	// 16 bytes per chunk plus twice the chunk's data.
	maxChunkOverhead = 16 << 10
)

// ChunkScanner finds the end of a chunked message body (RFC 9112 section
// 7.1) so that a proxy can pass the body through verbatim, chunk framing,
// extensions and trailers included, without decoding it. The zero value is
// ready to scan a body from its first byte.
//
// It accepts a strict subset of what net/http's chunked reader accepts:
// chunk sizes are 1 to 16 hex digits (leading zeros allowed, as net/http
// does) and at most math.MaxInt64, directly followed by CRLF or by
// extensions after ';' made of visible ASCII, SP and HTAB, the whole line at
// most 1024 bytes; chunk data is followed by CRLF; trailer lines are header
// lines as Response.Parse accepts them (no obs-fold, CRLF only), at most
// 16 KiB in all. Like net/http, it refuses bodies whose chunk overhead grows
// beyond 16 KiB more than 16 bytes per chunk plus twice the data, which
// stops a backend from trickling extensions with little data.
type ChunkScanner struct {
	state   chunkState
	digits  uint8
	n       int64 // chunk size being read, then data bytes left in the chunk
	line    int   // bytes of the current chunk-size line, CRLF excluded
	excess  int64 // net/http's chunk overhead accounting
	trailer int   // bytes of the trailer section so far
	err     error
}

type chunkState uint8

const (
	csSize         chunkState = iota // hex digits of a chunk-size line
	csExt                            // after ';', up to CR
	csSizeLF                         // LF ending a chunk-size line
	csData                           // n data bytes left
	csDataCR                         // CR after chunk data
	csDataLF                         // LF after chunk data
	csTrailer                        // start of a trailer line, or of the final CRLF
	csTrailerName                    // trailer field name
	csTrailerValue                   // trailer field value, up to CR
	csTrailerLF                      // LF ending a trailer line
	csEndLF                          // LF of the final CRLF
	csDone
)

// Reset makes s ready for a new body.
func (s *ChunkScanner) Reset() { *s = ChunkScanner{} }

// Scan consumes the next bytes of the body, p, which may end anywhere: in
// a size line, in chunk data or between CR and LF. n is how many bytes of
// p belong to the body: all of p, unless the body ends inside p, in which
// case done is true and p[n:] is what follows the body (the next response).
// Once done, Scan returns 0, true, nil until Reset.
//
// On a malformed body err wraps ErrBadChunk, n counts the bytes before the
// offending one, and every later call returns the same error. Scan never
// blocks and does not allocate.
func (s *ChunkScanner) Scan(p []byte) (n int, done bool, err error) {
	return s.scan(p, nil)
}

// scan is Scan that also hands the chunk data to data, which tests use to
// compare the data with net/http's reader.
func (s *ChunkScanner) scan(p []byte, data func([]byte)) (int, bool, error) {
	if s.err != nil {
		return 0, false, s.err
	}
	if s.state == csDone {
		return 0, true, nil
	}
	i := 0
	for i < len(p) {
		if s.state == csData {
			k := len(p) - i
			if int64(k) > s.n {
				k = int(s.n)
			}
			if data != nil {
				data(p[i : i+k])
			}
			i += k
			if s.n -= int64(k); s.n == 0 {
				s.state = csDataCR
			}
			continue
		}
		c := p[i]
		if s.state >= csTrailer {
			if s.trailer++; s.trailer > maxTrailerSize {
				return s.fail(i, errTrailerSize)
			}
		}
		switch s.state {
		case csSize:
			if charClass[c]&classHex != 0 {
				if s.digits == maxChunkSizeDigits || s.n > math.MaxInt64>>4 {
					return s.fail(i, errChunkTooLarge)
				}
				s.n = s.n<<4 | int64(hexValue(c))
				s.digits++
				s.line++
				break
			}
			switch {
			case s.digits == 0:
				return s.fail(i, errChunkSize)
			case c == ';':
				s.state = csExt
				s.line++
			case c == '\r':
				s.state = csSizeLF
			default:
				return s.fail(i, errChunkSize) // spaces, bare LF, other bytes
			}
		case csExt:
			switch {
			case c == '\r':
				s.state = csSizeLF
			case c != '\t' && (c < ' ' || c >= 0x7f), s.line == maxChunkLine:
				return s.fail(i, errChunkExt)
			default:
				s.line++
			}
		case csSizeLF:
			if c != '\n' {
				return s.fail(i, errChunkLF)
			}
			if s.n == 0 {
				// net/http does no overhead check on the last chunk.
				s.state = csTrailer
				break
			}
			// Exactly net/http's arithmetic (internal/chunked.go), so
			// that Scan never accepts what net/http refuses.
			s.excess += int64(s.line) + 2
			s.excess -= 16 + 2*s.n
			s.excess = max(s.excess, 0)
			if s.excess > maxChunkOverhead {
				return s.fail(i, errChunkOverhead)
			}
			s.state = csData
		case csDataCR:
			if c != '\r' {
				return s.fail(i, errChunkDataEnd)
			}
			s.state = csDataLF
		case csDataLF:
			if c != '\n' {
				return s.fail(i, errChunkDataEnd)
			}
			s.state, s.digits, s.n, s.line = csSize, 0, 0, 0
		case csTrailer:
			switch {
			case c == '\r':
				s.state = csEndLF
			case charClass[c]&classToken != 0:
				s.state = csTrailerName
			default:
				return s.fail(i, errTrailerLine) // obs-fold, bare LF, empty name
			}
		case csTrailerName:
			switch {
			case c == ':':
				s.state = csTrailerValue
			case charClass[c]&classToken == 0:
				return s.fail(i, errTrailerLine)
			}
		case csTrailerValue:
			switch {
			case c == '\r':
				s.state = csTrailerLF
			case charClass[c]&classValue == 0:
				return s.fail(i, errTrailerLine)
			}
		case csTrailerLF:
			if c != '\n' {
				return s.fail(i, errChunkLF)
			}
			s.state = csTrailer
		case csEndLF:
			if c != '\n' {
				return s.fail(i, errChunkLF)
			}
			s.state = csDone
			return i + 1, true, nil
		}
		i++
	}
	return i, false, nil
}

func (s *ChunkScanner) fail(i int, err error) (int, bool, error) {
	s.err = err
	return i, false, err
}

// hexValue returns the value of the hex digit c.
func hexValue(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
