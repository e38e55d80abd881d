package config

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Environment expansion runs on the text of the file, before YAML parsing,
// so that a variable can stand for any part of a value:
//
//	${NAME}            the variable's value; empty when it is unset
//	${NAME:-default}   the value, or default when the variable is unset or empty
//	$$                 a literal '$'
//
// A '$' followed by anything else is kept as is. Values are inserted
// verbatim: quote the reference in YAML ("${TOKEN}") when a value may hold
// characters YAML treats specially (": ", " #", quotes). Expansion applies to
// comments too, so "$${" writes a literal "${" there. Defaults are literal
// text: they cannot contain '}' or another reference.
//
// Expansion never changes the line structure (a value holding a line break
// is an error), so line numbers in later messages are those of the file.
// Columns are mapped back through the substitutions by columnMap, so they
// are those of the file too; a position inside a substituted value points
// at the "${" that produced it.

// expansion is one replaced span of a line, in rune columns (1-based).
type expansion struct {
	srcCol, srcLen int // the "${...}" or "$$" in the file
	expCol, expLen int // what replaced it in the expanded text
}

// columnMap maps columns of the expanded text back to the file.
type columnMap map[int][]expansion // line → expansions in column order

// source maps an expanded line:col back to the file's column.
func (m columnMap) source(line, col int) int {
	shift := 0
	for _, e := range m[line] {
		switch {
		case col < e.expCol:
			return col + shift
		case col < e.expCol+e.expLen:
			return e.srcCol
		}
		shift = e.srcCol + e.srcLen - (e.expCol + e.expLen)
	}
	return col + shift
}

// envError is a malformed reference, with its position in the file.
type envError struct {
	line, col int
	msg       string
}

// expandEnv expands data with lookup (os.LookupEnv in production). It
// reports every malformed reference, not only the first.
func expandEnv(data []byte, lookup func(string) (string, bool)) ([]byte, columnMap, []envError) {
	if bytes.IndexByte(data, '$') < 0 {
		return data, nil, nil
	}
	var (
		out  = make([]byte, 0, len(data))
		cols = columnMap{}
		errs []envError
		line = 1
		col  = 1 // rune column in the file
		ecol = 1 // rune column in the expanded text
	)
	replace := func(srcText string, with string) {
		n := utf8.RuneCountInString(with)
		cols[line] = append(cols[line], expansion{srcCol: col, srcLen: utf8.RuneCountInString(srcText), expCol: ecol, expLen: n})
		out = append(out, with...)
		col += utf8.RuneCountInString(srcText)
		ecol += n
	}
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == '\n':
			out = append(out, c)
			i++
			line, col, ecol = line+1, 1, 1
			continue
		case c == '$' && i+1 < len(data) && data[i+1] == '$':
			replace("$$", "$")
			i += 2
			continue
		case c == '$' && i+1 < len(data) && data[i+1] == '{':
			ref, value, msg := parseRef(data[i:], lookup)
			if msg != "" {
				errs = append(errs, envError{line, col, msg})
				value = ref // keep the text so later columns stay right
			}
			replace(ref, value)
			i += len(ref)
			continue
		}
		_, size := utf8.DecodeRune(data[i:])
		out = append(out, data[i:i+size]...)
		i += size
		col++
		ecol++
	}
	return out, cols, errs
}

// parseRef reads the reference at the start of s ("${..."). It returns the
// text it spans, the value to substitute, and a message when the reference
// is malformed.
func parseRef(s []byte, lookup func(string) (string, bool)) (ref, value, msg string) {
	end := bytes.IndexAny(s, "}\n")
	if end < 0 || s[end] != '}' {
		// Span only "${" so that scanning resumes right after it and finds
		// the next problem, if any, on its own.
		return "${", "", `unterminated "${": want ${NAME} or ${NAME:-default} on one line`
	}
	ref = string(s[:end+1])
	body := ref[2:end]
	name, def, hasDef := body, "", false
	if i := strings.IndexByte(body, ':'); i >= 0 {
		name = body[:i]
		if !strings.HasPrefix(body[i:], ":-") {
			return ref, "", fmt.Sprintf("invalid reference %q: want ${NAME} or ${NAME:-default}", ref)
		}
		def, hasDef = body[i+2:], true
	}
	if !validEnvName(name) {
		return ref, "", fmt.Sprintf("invalid variable name in %q: use letters, digits and '_', not starting with a digit", ref)
	}
	if strings.Contains(def, "${") {
		return ref, "", fmt.Sprintf("invalid reference %q: a default cannot contain another reference", ref)
	}
	value, ok := lookup(name)
	if hasDef && (!ok || value == "") {
		value = def
	}
	if strings.ContainsAny(value, "\r\n") {
		return ref, "", fmt.Sprintf("environment variable %s holds a line break, which cannot be substituted into YAML text; keep multi-line values (certificates, keys) in files and reference their paths", name)
	}
	return ref, value, ""
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
