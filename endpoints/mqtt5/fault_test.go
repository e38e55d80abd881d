package mqtt5

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/testutil/tcpproxy"
	"github.com/sluicegw/sluice/mediation"
)

// mosquitto is a broker process of the test's own, on a port of its own,
// that the test may kill and restart.
type mosquitto struct {
	t    testing.TB
	addr string
	conf string
	cmd  *exec.Cmd
	out  *lockedBuffer
	// exited is closed when the running process ended; nil when stopped.
	exited chan struct{}
}

// startMosquitto runs a private Mosquitto without persistence, or skips
// the test when the binary is missing (fails with SLUICE_REQUIRE_SERVICES=1).
// security holds configuration lines about clients; "" allows anonymous
// clients everything.
func startMosquitto(t testing.TB, security string) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("mosquitto is required (SLUICE_REQUIRE_SERVICES=1): %v", err)
		}
		t.Skipf("no mosquitto binary to run a private broker: %v", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if security == "" {
		security = "allow_anonymous true\n"
	}
	text := fmt.Sprintf("listener %s 127.0.0.1\n%spersistence false\nlog_dest stderr\n", port, security)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &mosquitto{t: t, addr: addr, conf: conf, out: &lockedBuffer{}}
	m.cmd = exec.Command(bin, "-c", conf) // resolved path, kept for restarts
	m.start()
	t.Cleanup(m.stop)
	return m
}

// start runs the broker and waits until it accepts connections.
func (m *mosquitto) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.cmd.Path, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	m.exited = exited
	go func() { _ = m.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(waitTimeout)
	for {
		c, err := net.DialTimeout("tcp", m.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			m.t.Fatalf("mosquitto exited:\n%s", m.out)
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto on %s did not come up: %v\n%s", m.addr, err, m.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the broker abruptly, as a crash would.
func (m *mosquitto) stop() {
	if m.exited == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.exited = nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A broker crash and restart does not end a subscription: it reconnects,
// subscribes again and receives what is published after the restart. While
// the broker is down a publish fails with ErrUnavailable within
// publishTimeout; once it is back publishing works again.
func TestBrokerRestart(t *testing.T) {
	t.Parallel()
	broker := startMosquitto(t, "")
	cfg := testConfig(broker.addr, "sluice/restart")
	cfg.PublishTimeout = Duration(2 * time.Second)
	cfg.MaxReconnectDelay = Duration(500 * time.Millisecond)
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{QoS: mediation.QoSAuto})

	for i := range 5 {
		publish(t, e, mediation.NewMessage(fmt.Appendf(nil, "before-%d", i)))
	}
	for i := range 5 {
		if m := next(t, sub); string(m.Content) != fmt.Sprintf("before-%d", i) {
			t.Fatalf("message %d before the restart: %q", i, m.Content)
		}
	}

	broker.stop()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	start := time.Now()
	err := e.Publish(ctx, mediation.NewMessage([]byte("lost")))
	took := time.Since(start)
	if !errors.Is(err, mediation.ErrUnavailable) {
		t.Fatalf("Publish with the broker down = %v, want ErrUnavailable", err)
	}
	// publishTimeout is 2s; the margin absorbs a busy machine and still
	// tells "bounded by the timeout" from "hangs".
	if took > 2*time.Second+8*time.Second {
		t.Fatalf("Publish with the broker down took %v, want about publishTimeout (2s)", took)
	}

	broker.start()
	// Messages published before the subscription is back are lost (MQTT
	// keeps no session here): probe until one comes through.
	for i := 0; ; i++ {
		if time.Since(start) > waitTimeout {
			t.Fatal("the subscription did not come back after the broker restarted")
		}
		pctx, pcancel := context.WithTimeout(context.Background(), waitTimeout)
		_ = e.Publish(pctx, mediation.NewMessage(fmt.Appendf(nil, "probe-%d", i))) // may fail while reconnecting
		pcancel()
		rctx, rcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		m, err := sub.Next(rctx)
		rcancel()
		if err == nil && strings.HasPrefix(string(m.Content), "probe-") {
			break
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next after the broker restart: %v, want the subscription to carry on", err)
		}
	}
	for i := range 10 {
		publish(t, e, mediation.NewMessage(fmt.Appendf(nil, "after-%d", i)))
	}
	for i := 0; i < 10; {
		m := next(t, sub)
		if strings.HasPrefix(string(m.Content), "probe-") {
			continue // a late probe
		}
		if string(m.Content) != fmt.Sprintf("after-%d", i) {
			t.Fatalf("message %d after the restart: %q", i, m.Content)
		}
		i++
	}
}

// What the broker refuses for good (credentials, a topic the client may not
// use) is reported at once as such, not as "unavailable, retry later".
func TestBrokerRefusals(t *testing.T) {
	t.Parallel()
	// Mosquitto started as root reads these files as user mosquitto.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	passwd, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	if out, err := exec.Command("mosquitto_passwd", "-b", "-c", passwd, "gw", "secret").CombinedOutput(); err != nil {
		t.Skipf("mosquitto_passwd: %v %s", err, out)
	}
	if err := os.Chmod(passwd, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(acl, []byte("user gw\ntopic readwrite allowed/#\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broker := startMosquitto(t, fmt.Sprintf("allow_anonymous false\npassword_file %s\nacl_file %s\n", passwd, acl))

	endpoint := func(password, topic string) *Endpoint {
		cfg := testConfig(broker.addr, topic)
		cfg.Username, cfg.Password = "gw", password
		// Long timeouts: a refusal must not wait for them.
		cfg.ConnectTimeout, cfg.PublishTimeout = Duration(waitTimeout), Duration(waitTimeout)
		return newEndpoint(t, cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()

	t.Run("wrong password", func(t *testing.T) {
		e := endpoint("wrong", "allowed/a")
		sub, err := e.Subscribe(ctx, mediation.SubscribeRequest{})
		if sub != nil || err == nil || errors.Is(err, mediation.ErrUnavailable) || !strings.Contains(err.Error(), "refused the connection") {
			t.Fatalf("Subscribe = %v, %v; want a refusal", sub, err)
		}
		err = e.Publish(ctx, mediation.NewMessage([]byte("x")))
		if err == nil || errors.Is(err, mediation.ErrUnavailable) || !strings.Contains(err.Error(), "refused the connection") {
			t.Fatalf("Publish = %v, want a refusal", err)
		}
	})
	t.Run("topic not allowed", func(t *testing.T) {
		// (Mosquitto 2.0 grants any subscription and filters on delivery.)
		e := endpoint("secret", "denied/a")
		err := e.Publish(ctx, mediation.NewMessage([]byte("x")))
		if err == nil || errors.Is(err, mediation.ErrUnavailable) || !strings.Contains(err.Error(), "not authorized") {
			t.Fatalf("Publish = %v, want the message refused as not authorized", err)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		e := endpoint("secret", "allowed/a")
		sub := subscribe(t, e, mediation.SubscribeRequest{})
		publish(t, e, mediation.NewMessage([]byte("ok")))
		if m := next(t, sub); string(m.Content) != "ok" {
			t.Fatalf("got %q", m.Content)
		}
	})
}

// Publishes that share socket writes (coalesce.go) lose nothing when the
// connection is cut under them: 16 publishers send 300 numbered messages
// at QoS 1 through a proxy that cuts every connection twice, retrying what
// failed as an HTTP client retries a 503; a subscriber on its own
// connection receives every number the broker acknowledged, which is every
// number.
func TestPublishesAcknowledgedAcrossCutsArrive(t *testing.T) {
	t.Parallel()
	broker := needBroker(t)
	topic := uniqueTopic(t)
	sub := subscribe(t, newEndpoint(t, testConfig(broker, topic)), mediation.SubscribeRequest{QoS: mediation.QoSAuto})

	proxy := tcpproxy.New(t, broker)
	cfg := testConfig(proxy.Addr(), topic)
	cfg.PublishTimeout = Duration(2 * time.Second)
	cfg.MaxReconnectDelay = Duration(200 * time.Millisecond)
	pub := newEndpoint(t, cfg)

	const total, publishers = 300, 16
	var acked sync.Map
	var done sync.WaitGroup
	var sent atomic.Int64
	for w := range publishers {
		done.Go(func() {
			for i := w; i < total; i += publishers {
				for {
					ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
					err := pub.Publish(ctx, mediation.NewMessage(fmt.Appendf(nil, "m-%03d", i)))
					cancel()
					if err == nil {
						acked.Store(i, true)
						break
					}
					time.Sleep(20 * time.Millisecond) // then again, as a client would
				}
				if n := sent.Add(1); n == total/3 || n == 2*total/3 {
					proxy.CutAll()
				}
			}
		})
	}
	done.Wait()
	if proxy.Accepted() < 3 {
		t.Fatalf("the proxy saw %d connections: the cuts did not happen under the publishes", proxy.Accepted())
	}

	seen := map[string]bool{}
	for len(seen) < total {
		seen[string(next(t, sub).Content)] = true
	}
	for i := range total {
		if _, ok := acked.Load(i); !ok || !seen[fmt.Sprintf("m-%03d", i)] {
			t.Fatalf("message %d: acknowledged %v, received %v", i, ok, seen[fmt.Sprintf("m-%03d", i)])
		}
	}
}
