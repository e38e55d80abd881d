package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a configuration file. Line and Col are 1-based;
// both are 0 when the problem has no position (an unreadable file, a
// plugin check about nothing in particular).
type Error struct {
	File string
	Line int
	Col  int
	Msg  string
}

// Error renders "file:line:col: message", the format editors and CI
// annotations understand.
func (e Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Col)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one load, sorted by position. Load,
// Parse and ParseAPI return it (as *Errors) for anything wrong with the
// content, so that a user fixes a file in one pass.
type Errors struct {
	List []Error
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, x := range e.List {
		lines[i] = x.Error()
	}
	return strings.Join(lines, "\n")
}

// errorList collects problems while a document is checked.
type errorList struct {
	list []Error
}

// add records e. A message is kept to one line, since the output is one
// problem per line; plugin messages may hold line breaks.
func (l *errorList) add(e Error) {
	if strings.ContainsAny(e.Msg, "\r\n") {
		e.Msg = strings.Join(strings.Fields(e.Msg), " ")
	}
	l.list = append(l.list, e)
}

// err returns nil or the sorted, de-duplicated problems. Duplicates happen
// legitimately: a group's sharedConfiguration is decoded once per endpoint.
func (l *errorList) err() error {
	if len(l.list) == 0 {
		return nil
	}
	list := slices.Clone(l.list)
	slices.SortStableFunc(list, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col), cmp.Compare(a.Msg, b.Msg))
	})
	list = slices.Compact(list)
	return &Errors{List: list}
}
