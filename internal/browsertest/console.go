package browsertest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
)

// maxConsoleLines bounds the console lines kept per browser: a page that
// logs in a loop must not grow the test's memory without end.
const maxConsoleLines = 500

// console keeps the last lines a page wrote to its console, its uncaught
// exceptions and the browser's own log entries (where Chromium reports
// blocked CORS requests and failed loads).
type console struct {
	mu      sync.Mutex
	lines   []string
	dropped int
}

// handle is a chromedp.Listen callback: it must be fast and never block.
func (c *console) handle(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		parts := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			parts = append(parts, remoteString(a))
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		if d == nil {
			return
		}
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		line = fmt.Sprintf("exception: %s (%s:%d)", text, d.URL, d.LineNumber+1)
	case *log.EventEntryAdded:
		e := ev.Entry
		if e == nil {
			return
		}
		line = fmt.Sprintf("browser %s %s: %s", e.Source, e.Level, e.Text)
		if e.URL != "" {
			line += " (" + e.URL + ")"
		}
	default:
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lines) == maxConsoleLines {
		c.lines = append(c.lines[:0], c.lines[1:]...)
		c.dropped++
	}
	c.lines = append(c.lines, line)
}

func (c *console) snapshot() (lines []string, dropped int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...), c.dropped
}

// remoteString renders one console argument as the DevTools console would,
// roughly: strings bare, other values as JSON or their description.
func remoteString(o *runtime.RemoteObject) string {
	if o == nil {
		return "undefined"
	}
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	if o.UnserializableValue != "" {
		return string(o.UnserializableValue)
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Type)
}
