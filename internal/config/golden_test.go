package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.golden from the current output")

// noEnv is an empty environment, so that golden output does not depend on
// the machine.
func noEnv(string) (string, bool) { return "", false }

// TestInvalidFiles loads every testdata/invalid/*.yaml and compares the
// problems reported, one "file:line:col: message" per line, with the
// .golden file next to it.
func TestInvalidFiles(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	reg := testRegistry()
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseConfig(file, data, reg, noEnv)
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want *Errors, got %T: %v", err, err)
			}
			for _, e := range errs.List {
				if e.Line < 1 || e.Col < 1 {
					t.Errorf("problem without a position: %v", e)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}
