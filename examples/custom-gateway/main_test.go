package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// TestCustomGatewayServesTheExtraPlugin builds this folder into a binary
// with `go build`, as a plugin author would, starts it on gateway.yaml, and
// reads three ticks of the ticker endpoint, which only this binary has,
// through the http-get entrypoint. Then it stops the binary with SIGTERM.
func TestCustomGatewayServesTheExtraPlugin(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	bin := filepath.Join(t.TempDir(), "custom-gateway")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "run", "-c", "gateway.yaml")
	cmd.Env = append(os.Environ(), "LISTEN=127.0.0.1:0", "DATA_DIR="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // a no-op once it exited
		<-exited
	})

	// The binary logs its address once it serves; the rest of its log is
	// drained so that it never blocks on a full pipe.
	addrs := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`"msg":"gateway started","http":"([^"]+)"`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log(sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-exited:
		exited <- err
		t.Fatalf("the gateway exited before serving: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the gateway did not start serving within 60s")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/ticks", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Items []struct{ Content string } `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ticks: %s, %v", resp.Status, err)
	}
	if len(page.Items) != 3 || page.Items[0].Content != "tick 0" || page.Items[2].Content != "tick 2" {
		t.Fatalf("GET /ticks = %+v, want tick 0, tick 1, tick 2", page.Items)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("the gateway did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the gateway did not stop within 60s of SIGTERM")
	}
}
