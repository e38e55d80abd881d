package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/entrypoints/webhook/delivery"
)

// Must show 2: `kill -9` of the gateway in the middle of deliveries, then a
// restart: every message produced is delivered (duplicates allowed, losses
// not), and the subscription itself survived the restart.
func TestWebhookSurvivesKill9(t *testing.T) {
	bin := buildSluice(t)
	k := newKafka(t, 3, "orders")
	kafkaAddr := k.ListenAddrs()[0]

	// Fixed addresses and data directory: the restarted process must serve
	// the same admin address from the same store.
	httpAddr, adminAddr := freeAddr(t), freeAddr(t)
	cfg := strings.Replace(webhookAPI(kafkaAddr, true, false), `http: {listen: "127.0.0.1:0"}`, fmt.Sprintf("http: {listen: %q}", httpAddr), 1)
	cfg = strings.Replace(cfg, `admin: {listen: "127.0.0.1:0"`, fmt.Sprintf("admin: {listen: %q", adminAddr), 1)
	cfg = strings.Replace(cfg, "server:\n", fmt.Sprintf("server:\n  dataDir: %q\n", t.TempDir()), 1)
	// The killed gateway's group member holds its partitions until its
	// session times out (45s by default): the restarted one waits that long.
	cfg = strings.Replace(cfg, "autoOffsetReset: earliest}", "autoOffsetReset: earliest, sessionTimeout: 8s}", 1)
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := "http://" + adminAddr

	r := newReceiver(t)
	r.secret = delivery.NewSecret() // deliveries may start before the 201 is read
	// A slow callback, so that the kill lands with most messages still to go.
	r.answer = func(string, int) int {
		time.Sleep(2 * time.Millisecond)
		return http.StatusOK
	}
	const n = 3000
	want := numbered("order", 0, n)
	produce(t, kafkaAddr, "orders", want...)

	first := startSluice(t, bin, cfgPath, admin)
	id := subscribe(t, admin, r, "")

	// Kill once the receiver accepted some, but far from all.
	deadline := time.Now().Add(30 * time.Second)
	for r.acceptedCount() <= 900 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages delivered before the kill", r.acceptedCount())
		}
		select {
		case <-r.arrived:
		case <-time.After(10 * time.Millisecond):
		}
	}
	first.kill(t)
	atKill := r.acceptedCount()
	if atKill >= n {
		t.Fatalf("all %d messages were delivered before the kill: it did not land mid-stream", n)
	}
	t.Logf("killed the gateway with %d of %d messages delivered", atKill, n)

	restartedAt := time.Now()
	startSluice(t, bin, cfgPath, admin)
	if st := statusOf(t, admin, id); st.Status != "active" {
		t.Fatalf("after the restart the subscription is %+v, want active", st)
	}
	r.waitFor(t, want, 60*time.Second)
	t.Logf("every message delivered %v after the restart", time.Since(restartedAt).Round(100*time.Millisecond))

	after := numbered("after", 0, 20)
	produce(t, kafkaAddr, "orders", after...)
	r.waitFor(t, after, 30*time.Second)

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.badSig != 0 {
		t.Errorf("%d deliveries had a bad signature", r.badSig)
	}
	dups := 0
	for _, times := range r.delivered {
		dups += times - 1
	}
	t.Logf("%d messages delivered, %d duplicate deliveries (%d were delivered before the kill)", len(r.delivered), dups, atKill)
}

// acceptedCount is how many distinct messages the callback accepted.
func (r *receiver) acceptedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.delivered)
}

// buildSluice builds the gateway binary into a temporary directory.
func buildSluice(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/sluicegw/sluice/cmd/sluice").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// sluiceProcess is a `sluice run` child process.
type sluiceProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, set before exited is closed
	stderr lockedBuffer
}

// startSluice runs `sluice run -c cfgPath` and waits until admin answers
// /readyz. The process is killed when the test ends; its stderr is logged
// if the test failed.
func startSluice(t *testing.T, bin, cfgPath, admin string) *sluiceProcess {
	t.Helper()
	p := &sluiceProcess{cmd: exec.Command(bin, "run", "-c", cfgPath), exited: make(chan struct{})}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("sluice (pid %d) stderr:\n%s", p.cmd.Process.Pid, p.stderr.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("sluice exited before it was ready: %v\n%s", p.err, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice not ready at %s/readyz: %v\n%s", admin, err, p.stderr.String())
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *sluiceProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// lockedBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
