package browsertest

import (
	"bytes"
	"testing"
)

// FuzzNamesPath checks that the /proc command-line matcher never panics on
// arbitrary bytes and only reports a match where the path occurs.
func FuzzNamesPath(f *testing.F) {
	f.Add([]byte("chromium\x00--user-data-dir=/tmp/T/001/profile\x00about:blank"), "/tmp/T/001")
	f.Add([]byte("x --user-data-dir=/tmp/T/0010/profile"), "/tmp/T/001")
	f.Add([]byte(""), "/tmp")
	f.Add([]byte("ab"), "")
	f.Fuzz(func(t *testing.T, cmdline []byte, dir string) {
		if namesPath(cmdline, dir) && !bytes.Contains(cmdline, []byte(dir)) {
			t.Fatalf("namesPath(%q, %q) matched a path that is not there", cmdline, dir)
		}
	})
}
