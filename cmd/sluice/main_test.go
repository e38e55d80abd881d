package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicegw/sluice/cmd/sluice/cli"
	"github.com/sluicegw/sluice/internal/browsertest"
)

// Must show 1: `sluice validate` accepts the example of DESIGN.md.
func TestValidateDesignExample(t *testing.T) {
	var out, errb bytes.Buffer
	path := filepath.Join("..", "..", "internal", "config", "testdata", "design-example.yaml")
	if code := cli.Main([]string{"validate", "-c", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

// Must show 1: a misspelled key is reported as file:line:col with exit
// status 1, and a broken file never starts a gateway.
func TestMisspelledKey(t *testing.T) {
	path := filepath.Join("testdata", "misspelled.yaml")
	var out, errb bytes.Buffer
	if code := cli.Main([]string{"validate", "-c", path}, &out, &errb); code != 1 {
		t.Fatalf("validate exit %d, want 1", code)
	}
	if !regexp.MustCompile(`testdata/misspelled\.yaml:12:31: .*messageIntervall`).MatchString(errb.String()) {
		t.Fatalf("validate said %q; want file:line:col naming messageIntervall", errb.String())
	}

	// run refuses the same file before opening any listener.
	port := freePort(t)
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	data, _ := os.ReadFile(path)
	data = bytes.Replace(data, []byte("127.0.0.1:0"), []byte(port), 1)
	if err := os.WriteFile(broken, data, 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := cli.Main([]string{"run", "-c", broken}, &out, &errb); code != 1 {
		t.Fatalf("run exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "messageIntervall") {
		t.Fatalf("run said %q", errb.String())
	}
	if c, err := net.DialTimeout("tcp", port, time.Second); err == nil {
		c.Close()
		t.Fatalf("something listens on %s after a refused configuration", port)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Must show 7: `sluice dev` on a clean checkout prints a URL whose page shows
// messages arriving, in a real browser; SIGINT stops it cleanly.
func TestDevPageShowsMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "dev", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-feed-interval", "200ms")
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed once Wait returned: stderr is complete
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sluice dev stderr:\n%s", stderr.String())
		}
	})

	pageURL := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`^\s+(http://\S+/)$`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				pageURL <- m[1]
				break
			}
		}
		for sc.Scan() { // keep draining so the process never blocks on stdout
		}
	}()
	var url string
	select {
	case url = <-pageURL:
	case <-exited:
		t.Fatalf("sluice dev exited before printing a URL: %v", waitErr)
	case <-time.After(90 * time.Second):
		t.Fatal("sluice dev printed no URL")
	}

	b := browsertest.New(t)
	b.WaitText(t, url, "#events", `"status"`, 60*time.Second)
	b.WaitText(t, "", "#status", "live", 30*time.Second)
	if n := b.Text(t, "#count"); n == "0" || n == "" {
		t.Fatalf("message count %q", n)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("sluice dev exit: %v", waitErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal(fmt.Sprintf("sluice dev did not stop on SIGINT"))
	}
}
