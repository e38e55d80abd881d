package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse. It must never panic or
// hang, must either succeed or return *Errors, and every problem must be
// one non-empty line with a sane position (line >= 1 whenever it has one).
func FuzzParse(f *testing.F) {
	reg := testRegistry()
	f.Add([]byte(minimalAPI))
	f.Add([]byte("apis: [{id: a, listeners: *x}]"))
	f.Add([]byte("a: ${X:-y} $$ ${"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data, reg)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) == 0 {
			t.Fatalf("want a non-empty *Errors, got %T: %v", err, err)
		}
		for _, e := range errs.List {
			switch {
			case e.Line < 0 || e.Col < 0:
				t.Errorf("negative position: %+v", e)
			case (e.Line == 0) != (e.Col == 0):
				t.Errorf("half a position: %+v", e)
			case e.Msg == "" || strings.ContainsAny(e.Msg, "\r\n"):
				t.Errorf("message is not one line: %q", e.Msg)
			case e.File != "f.yaml":
				t.Errorf("file %q", e.File)
			}
		}
	})
}

// FuzzExpandEnv checks the expander keeps the line structure, leaves text
// without references alone, and maps every column back into the source.
func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{"a: ${A}", "${A:-x}$$${B}\n${", "é${A}é ${} $$", "${A:-}${NL}"} {
		f.Add([]byte(s))
	}
	env := mapEnv(map[string]string{"A": "ünï", "B": "", "NL": "x\ny"})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, cols, errs := expandEnv(data, env)
		if !strings.Contains(string(data), "$") && string(out) != string(data) {
			t.Fatalf("text without references changed: %q → %q", data, out)
		}
		lines := strings.Split(string(data), "\n")
		for _, e := range errs {
			if e.line < 1 || e.line > len(lines) || e.col < 1 || e.msg == "" {
				t.Fatalf("bad problem %+v for %q", e, data)
			}
		}
		if len(errs) > 0 {
			return
		}
		outLines := strings.Split(string(out), "\n")
		if len(outLines) != len(lines) {
			t.Fatalf("expansion changed the number of lines: %q → %q", data, out)
		}
		for i, l := range outLines {
			srcLen := len([]rune(lines[i]))
			for c := 1; c <= len([]rune(l))+1; c++ {
				if s := cols.source(i+1, c); s < 1 || s > srcLen+1 {
					t.Fatalf("line %d: column %d maps to %d, outside 1..%d (%q → %q)", i+1, c, s, srcLen+1, lines[i], l)
				}
			}
		}
	})
}

// FuzzCheckNesting checks the nesting guard ends and reports positions
// inside the text.
func FuzzCheckNesting(f *testing.F) {
	for _, s := range []string{"a: [[{b: c}]]", "- - - x", "a: |\n  [[[\nb: '[['", "\"\\", "a: b [c\n# [[["} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		line, col, msg := checkNesting(data)
		if line == 0 {
			return
		}
		if line > strings.Count(string(data), "\n")+1 || col < 1 || msg == "" {
			t.Fatalf("bad position %d:%d %q", line, col, msg)
		}
	})
}
