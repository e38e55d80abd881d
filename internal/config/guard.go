package config

import (
	"fmt"
	"unicode/utf8"
)

// MaxFileSize bounds a configuration file or API document. The YAML parser
// needs about a second per few hundred KiB, so this keeps a bad upload from
// pinning a core; real gateway files are a few KiB.
const MaxFileSize = 1 << 20

// maxNesting bounds how deeply collections nest. The YAML parser's cost
// grows with the square of the nesting depth, so "[[[[...", 100k deep, would
// take minutes; no configuration comes anywhere near this.
const maxNesting = 64

// checkNesting scans YAML text, before it is parsed, for flow collections
// ("[", "{") nested deeper than maxNesting, and for lines that open more than
// maxNesting block collections at once ("- - - - x"). It follows YAML well
// enough to ignore brackets inside quoted scalars, comments and block
// scalars ("|", ">"), and in plain text ("msg: a [b"); what it cannot tell
// apart errs towards counting, which only matters past maxNesting.
//
// It returns the position of the first excess, or line 0.
func checkNesting(data []byte) (line, col int, msg string) {
	s := nestScanner{data: data, line: 1, col: 1}
	return s.run()
}

type nestScanner struct {
	data      []byte
	i         int
	line, col int
	depth     int // flow depth
}

func (s *nestScanner) peek(off int) byte {
	if s.i+off < len(s.data) {
		return s.data[s.i+off]
	}
	return 0
}

// advance moves past one rune, keeping line and col.
func (s *nestScanner) advance() {
	if s.data[s.i] == '\n' {
		s.line, s.col = s.line+1, 1
		s.i++
		return
	}
	_, n := utf8.DecodeRune(s.data[s.i:])
	s.i += n
	s.col++
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 }

func (s *nestScanner) run() (int, int, string) {
	// A block scalar's lines are text. It opens on a line indented by
	// blockIndent; its content is indented by contentIndent, set by its
	// first non-empty line (YAML's auto-detection), and it ends at the
	// first non-empty line indented less.
	blockIndent, contentIndent := -1, -1
	for s.i < len(s.data) {
		// At a line start: measure indentation.
		indent := 0
		for s.peek(0) == ' ' {
			s.advance()
			indent++
		}
		if blockIndent >= 0 {
			c := s.peek(0)
			empty := c == '\n' || c == '\r' || s.i == len(s.data)
			if !empty && contentIndent < 0 && indent > blockIndent {
				contentIndent = indent
			}
			if empty || (contentIndent >= 0 && indent >= contentIndent) {
				s.skipLine()
				if s.i < len(s.data) {
					s.advance()
				}
				continue
			}
			blockIndent, contentIndent = -1, -1
		}
		start := true // at the start of a scalar or collection
		compact := 0  // block indicators opened on this line
		for s.i < len(s.data) && s.peek(0) != '\n' {
			c := s.peek(0)
			switch {
			case c == ' ' || c == '\t' || c == '\r':
				s.advance()
				continue
			case c == '#':
				s.skipLine()
				continue
			case start && (c == '"' || c == '\''):
				s.skipQuoted(c)
				start = false
				continue
			case c == '[' || c == '{':
				if s.depth > 0 || start {
					s.depth++
					if s.depth > maxNesting {
						return s.line, s.col, fmt.Sprintf("collections nested deeper than %d levels", maxNesting)
					}
				}
				s.advance()
				start = s.depth > 0
				continue
			case c == ']' || c == '}':
				if s.depth > 0 {
					s.depth--
				}
				s.advance()
				start = false
				continue
			case c == ',' && s.depth > 0:
				s.advance()
				start = true
				continue
			case (c == '-' || c == '?' || c == ':') && isBlank(s.peek(1)) && s.depth == 0:
				if c != ':' {
					compact++
					if compact > maxNesting {
						return s.line, s.col, fmt.Sprintf("collections nested deeper than %d levels", maxNesting)
					}
				}
				s.advance()
				start = true
				continue
			case c == ':' && s.depth > 0:
				s.advance()
				start = true
				continue
			case start && s.depth == 0 && (c == '|' || c == '>'):
				blockIndent = indent
				s.skipLine()
				continue
			}
			// Anything else is plain text; it ends at a blank, so a word
			// such as an anchor or tag lets a scalar start after it.
			from := s.i
			for s.i < len(s.data) && !isBlank(s.peek(0)) && !(s.depth > 0 && isFlowIndicator(s.peek(0))) {
				if s.peek(0) == ':' && isBlank(s.peek(1)) {
					break
				}
				s.advance()
			}
			if s.i == from {
				s.advance() // never stall on a byte no case consumes
			}
			start = c == '&' || c == '!'
		}
		if s.i < len(s.data) {
			s.advance() // the newline
		}
	}
	return 0, 0, ""
}

func isFlowIndicator(c byte) bool {
	return c == '[' || c == ']' || c == '{' || c == '}' || c == ','
}

// skipLine moves to the newline ending the current line.
func (s *nestScanner) skipLine() {
	for s.i < len(s.data) && s.peek(0) != '\n' {
		s.advance()
	}
}

// skipQuoted moves past a quoted scalar, which may span lines.
func (s *nestScanner) skipQuoted(q byte) {
	s.advance()
	for s.i < len(s.data) {
		c := s.peek(0)
		switch {
		case q == '"' && c == '\\' && s.i+1 < len(s.data):
			s.advance()
		case c == q && q == '\'' && s.peek(1) == '\'':
			s.advance()
		case c == q:
			s.advance()
			return
		}
		s.advance()
	}
}
