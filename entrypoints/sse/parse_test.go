package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
)

// This file is a Server-Sent Events parser written from the WHATWG HTML
// "event stream interpretation" rules, so that the tests read the stream
// the way a browser's EventSource does.

// item is one thing read from a stream: a dispatched event or a comment.
type item struct {
	Comment   string // the comment text without ':', when IsComment
	IsComment bool
	Event     string // event type; "message" when the stream gave none
	Data      string
	LastID    string // the last event ID after this event, as EventSource keeps it
	Retry     int    // the last retry: value seen, or 0
}

// eventReader reads items from a stream.
type eventReader struct {
	br            *bufio.Reader
	lastID        string
	eventType     string
	data          strings.Builder
	hasData       bool
	retry         int
	started       bool
	pendingLineCR bool
}

func newEventReader(r io.Reader) *eventReader { return &eventReader{br: bufio.NewReader(r)} }

// line reads one line ending in CRLF, CR or LF; it returns io.EOF at the end
// of the stream (an unterminated last line is discarded, as the spec says).
func (p *eventReader) line() (string, error) {
	var b []byte
	for {
		c, err := p.br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", io.EOF
			}
			return "", err
		}
		if p.pendingLineCR {
			p.pendingLineCR = false
			if c == '\n' {
				continue // the LF of a CRLF
			}
		}
		switch c {
		case '\n':
			return p.stripBOM(b), nil
		case '\r':
			p.pendingLineCR = true
			return p.stripBOM(b), nil
		default:
			b = append(b, c)
		}
	}
}

func (p *eventReader) stripBOM(b []byte) string {
	if !p.started {
		p.started = true
		b = bytes.TrimPrefix(b, []byte("\ufeff"))
	}
	return string(b)
}

// next returns the next comment or dispatched event.
func (p *eventReader) next() (item, error) {
	for {
		ln, err := p.line()
		if err != nil {
			return item{}, err
		}
		if ln == "" {
			if !p.hasData {
				p.eventType = ""
				continue
			}
			data := strings.TrimSuffix(p.data.String(), "\n")
			ev := item{Event: p.eventType, Data: data, LastID: p.lastID, Retry: p.retry}
			if ev.Event == "" {
				ev.Event = "message"
			}
			p.data.Reset()
			p.hasData = false
			p.eventType = ""
			return ev, nil
		}
		if strings.HasPrefix(ln, ":") {
			return item{IsComment: true, Comment: ln[1:]}, nil
		}
		field, value, found := strings.Cut(ln, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			p.eventType = value
		case "data":
			p.data.WriteString(value)
			p.data.WriteByte('\n')
			p.hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				p.lastID = value
			}
		case "retry":
			if n, err := strconv.Atoi(value); err == nil && strings.Trim(value, "0123456789") == "" {
				p.retry = n
			}
		}
	}
}

// nextEvent skips comments.
func (p *eventReader) nextEvent() (item, error) {
	for {
		it, err := p.next()
		if err != nil || !it.IsComment {
			return it, err
		}
	}
}
