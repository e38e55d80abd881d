package browsertest

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processesUsing returns the ids of the processes whose command line names
// a path in dir. Every process of one browser does: Chromium passes
// --user-data-dir to each child it forks (zygote, renderers, network
// service) and the crash handler gets a --database under XDG_CONFIG_HOME,
// which New puts in dir too; and each test's dir is unique. Forked children
// rewrite their command line as one space-separated string, so this looks
// for the path as a word rather than as a whole argument. It reads /proc
// and finds nothing where there is none.
func processesUsing(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if namesPath(cmdline, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// namesPath reports whether cmdline holds dir, or a path under it, as a
// word: after '=', a space, a NUL or the start, and before '/', a space, a
// NUL or the end. So /tmp/x/001 does not match /tmp/x/0010.
func namesPath(cmdline []byte, dir string) bool {
	if dir == "" {
		return false
	}
	d := []byte(dir)
	for i := 0; ; {
		j := bytes.Index(cmdline[i:], d)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(d)
		before := start == 0 || strings.IndexByte("= \x00", cmdline[start-1]) >= 0
		after := end == len(cmdline) || strings.IndexByte("/ \x00", cmdline[end]) >= 0
		if before && after {
			return true
		}
		i = start + 1
	}
}

// killLeftovers kills what is left of the browser that used dir, looking
// again until a few passes in a row find nothing: a child can fork just as
// its parent dies. It gives up after limit.
func killLeftovers(dir string, limit time.Duration) (left []int) {
	const quietPasses = 3
	deadline := time.Now().Add(limit)
	for quiet := 0; quiet < quietPasses; {
		pids := processesUsing(dir)
		if len(pids) == 0 {
			quiet++
		} else {
			quiet = 0
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if time.Now().After(deadline) {
			return processesUsing(dir)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
