package sse

import (
	"bytes"
)

// AppendEvent appends one Server-Sent Event to dst and returns the extended
// buffer:
//
//	id: <id>
//	event: <event>
//	data: <first line of data>
//	data: <next line ...>
//	<blank line>
//
// The id and event lines are left out when empty. Every line of data becomes
// its own data: line, whatever its line ending (\r\n, \r or \n), so no
// newline in the content can end the event or start a field of its own; a
// client joins the lines back with \n. The id and event are single-line
// fields: CR, LF and NUL (which makes browsers ignore an id) are removed
// from them. Cursor tokens are base64url and never contain any of these.
func AppendEvent(dst []byte, id, event string, data []byte) []byte {
	if id != "" {
		dst = append(dst, "id: "...)
		dst = appendLine(dst, id)
		dst = append(dst, '\n')
	}
	if event != "" {
		dst = append(dst, "event: "...)
		dst = appendLine(dst, event)
		dst = append(dst, '\n')
	}
	return appendData(dst, data)
}

// appendData appends the data: lines of data and the blank line that ends
// the event (see AppendEvent).
func appendData(dst []byte, data []byte) []byte {
	// Content rarely holds a CR: look for LF alone, which is much faster,
	// unless it does.
	hasCR := bytes.IndexByte(data, '\r') >= 0
	for {
		var i int
		if hasCR {
			i = bytes.IndexAny(data, "\r\n")
		} else {
			i = bytes.IndexByte(data, '\n')
		}
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			dst = append(dst, '\n')
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n')
}

// AppendComment appends a comment line (":<text>\n"), with CR, LF and NUL
// dropped from text so that the comment stays one line. Comments are ignored
// by EventSource and keep proxies from closing an idle stream.
func AppendComment(dst []byte, text string) []byte {
	dst = append(dst, ':')
	dst = appendLine(dst, text)
	return append(dst, '\n')
}

// heartbeat is an empty comment and the blank line that ends it.
const heartbeat = ":\n\n"

// lineSafe reports whether s holds no CR, LF or NUL. A plain loop: ids are
// short and checked for every event, where strings.ContainsAny's set
// construction costs more than the scan.
func lineSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// appendLine appends s without CR, LF and NUL, the bytes that would end a
// single-line field early or make a browser ignore it.
func appendLine(dst []byte, s string) []byte {
	if lineSafe(s) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r', '\n', 0:
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
