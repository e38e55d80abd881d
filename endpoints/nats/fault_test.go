package nats

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/mediation"
)

// ownServer is a nats-server process of the test's own, with JetStream
// storing into a directory that survives restarts, so that a test can kill
// it and start it again on the same port.
type ownServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// startOwnServer starts a nats-server on a free port, skipping the test
// when the binary is not installed (failing with SLUICE_REQUIRE_SERVICES=1).
func startOwnServer(t testing.TB) *ownServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("nats-server is required (SLUICE_REQUIRE_SERVICES=1) but not installed: %v", err)
		}
		t.Skipf("nats-server is not installed (set SLUICE_REQUIRE_SERVICES=1 to make this a failure): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &ownServer{t: t, bin: bin, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *ownServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

func (s *ownServer) start() {
	s.t.Helper()
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", filepath.Join(s.dir, "js"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	// Ready when it answers a client, JetStream included.
	deadline := time.Now().Add(waitTimeout)
	for {
		nc, err := nats.Connect(s.url(), nats.Timeout(time.Second))
		if err == nil {
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
			nc.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			s.t.Fatalf("nats-server on port %d not ready: %v\n%s", s.port, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the server abruptly, as a crash would.
func (s *ownServer) kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // in case it was paused
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// restart kills the server and starts it again on the same port and store.
func (s *ownServer) restart() {
	s.t.Helper()
	s.kill()
	s.start()
}

// pause stops the process without closing its connections: a server that
// hangs. It is resumed by kill.
func (s *ownServer) pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
	// The signal is delivered asynchronously: wait until the process is
	// stopped, so that nothing sent from now on is answered.
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(stat)
		if err != nil {
			time.Sleep(200 * time.Millisecond) // no procfs: give it time
			return
		}
		// The state follows the parenthesized command name.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.t.Fatal("nats-server did not stop")
}

// faultConfig makes the endpoint reconnect quickly.
func faultConfig(cfg *Config) *Config {
	cfg.ReconnectWait = Duration(100 * time.Millisecond)
	cfg.ConnectTimeout = Duration(time.Second)
	return cfg
}

// A client reading a stream from its own position keeps going through a
// server crash and restart: no error, nothing lost, nothing repeated.
func TestFaultRestartOwnReads(t *testing.T) {
	t.Parallel()
	srv := startOwnServer(t)
	name := unique(t)
	newStream(t, srv.url(), name)
	e := newEndpoint(t, faultConfig(jsConfig(srv.url(), name)))
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest})

	all := numbered("m", 0, 30)
	_, js := rawConn(t, srv.url())
	publishJS(t, js, name+".a", all[:10]...)
	got := readContents(t, sub, 10)

	srv.restart()
	_, js = rawConn(t, srv.url())
	publishJS(t, js, name+".a", all[10:20]...)
	got = append(got, readContents(t, sub, 10)...)

	srv.restart() // once more, while the subscription waits for messages
	_, js = rawConn(t, srv.url())
	publishJS(t, js, name+".a", all[20:]...)
	got = append(got, readContents(t, sub, 10)...)
	if !slices.Equal(got, all) {
		t.Fatalf("read %v, want %v", got, all)
	}
	expectNone(t, sub, 300*time.Millisecond)
}

// A durable group that acks what it reads receives every published message
// through a server crash and restart (some twice, at least once).
func TestFaultRestartDurableGroup(t *testing.T) {
	t.Parallel()
	srv := startOwnServer(t)
	name := unique(t)
	newStream(t, srv.url(), name)
	cfg := faultConfig(jsConfig(srv.url(), name))
	cfg.Consumer.AckWait = Duration(2 * time.Second) // what was on the wire comes back soon
	e := newEndpoint(t, cfg)
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest, Group: "webhook", QoS: mediation.QoSAtLeastOnce})

	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readErr := make(chan error, 1)
	go func() {
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				readErr <- err
				return
			}
			mu.Lock()
			seen[string(m.Content)] = true
			mu.Unlock()
			m.Ack()
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(waitTimeout)
		for !cond() {
			select {
			case err := <-readErr:
				t.Fatalf("Next failed while waiting for %s: %v", what, err)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (%d messages seen)", what, count())
			}
		}
	}

	all := numbered("m", 0, 40)
	_, js := rawConn(t, srv.url())
	publishJS(t, js, name+".a", all[:20]...)
	waitFor("some messages", func() bool { return count() >= 5 })
	srv.restart()
	_, js = rawConn(t, srv.url())
	publishJS(t, js, name+".a", all[20:]...)
	waitFor("every message", func() bool { return count() == len(all) })
	cancel()
	if err := <-readErr; err != context.Canceled {
		t.Fatalf("Next ended with %v", err)
	}
	for _, c := range all {
		if !seen[c] {
			t.Errorf("%s was published (acknowledged by the stream) and never delivered", c)
		}
	}
}

// A core subscription is resubscribed after a restart and goes on without
// an error (what was published while the server was down is gone, as core
// NATS promises).
func TestFaultRestartCoreSubscription(t *testing.T) {
	t.Parallel()
	srv := startOwnServer(t)
	subject := unique(t)
	e := newEndpoint(t, faultConfig(coreConfig(srv.url(), subject)))
	sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartLatest})
	nc, _ := rawConn(t, srv.url())
	if err := nc.Publish(subject, []byte("before")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sub); string(m.Content) != "before" {
		t.Fatalf("read %q", m.Content)
	}

	srv.restart()
	nc, _ = rawConn(t, srv.url())
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	got := make(chan *mediation.Message, 1)
	readErr := make(chan error, 1)
	go func() {
		m, err := sub.Next(ctx)
		if err != nil {
			readErr <- err
			return
		}
		got <- m
	}()
	// Publish until the endpoint is back and subscribed again.
	for i := 0; ; i++ {
		if err := nc.Publish(subject, fmt.Appendf(nil, "after-%d", i)); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if !strings.HasPrefix(string(m.Content), "after-") {
				t.Fatalf("read %q", m.Content)
			}
			return
		case err := <-readErr:
			t.Fatalf("Next after the restart: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// With the server down or hanging, a publish fails with ErrUnavailable
// within publishTimeout; once the server is back, publishing works again.
func TestFaultPublishUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc      string
		jetstream bool
		hang      bool
	}{
		{desc: "core, server down"},
		{desc: "jetstream, server down", jetstream: true},
		{desc: "core, server hangs", hang: true},
		{desc: "jetstream, server hangs", jetstream: true, hang: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			srv := startOwnServer(t)
			name := unique(t)
			cfg := coreConfig(srv.url(), name+".in")
			if tc.jetstream {
				newStream(t, srv.url(), name)
				cfg = jsConfig(srv.url(), name)
			}
			const timeout = 2 * time.Second
			cfg.PublishTimeout = Duration(timeout)
			e := newEndpoint(t, faultConfig(cfg))
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := e.Publish(ctx, mediation.NewMessage([]byte("up"))); err != nil {
				t.Fatalf("Publish with the server up: %v", err)
			}

			if tc.hang {
				srv.pause()
			} else {
				srv.kill()
			}
			begin := time.Now()
			err := e.Publish(ctx, mediation.NewMessage([]byte("down")))
			elapsed := time.Since(begin)
			wantErrIs(t, err, mediation.ErrUnavailable)
			// Bounded by publishTimeout, not by the caller's minute; the
			// slack is for a busy machine.
			if elapsed > timeout+10*time.Second {
				t.Errorf("Publish took %v with publishTimeout %v", elapsed, timeout)
			}

			if tc.hang {
				srv.kill()
			}
			srv.start()
			deadline := time.Now().Add(waitTimeout)
			for {
				err := e.Publish(ctx, mediation.NewMessage([]byte("back")))
				if err == nil {
					break
				}
				wantErrIs(t, err, mediation.ErrUnavailable)
				if time.Now().After(deadline) {
					t.Fatalf("Publish still fails after the restart: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// An endpoint whose server is not running yet is created anyway; what it
// is asked to do fails with ErrUnavailable until the server is there.
func TestFaultServerNotStarted(t *testing.T) {
	t.Parallel()
	srv := startOwnServer(t)
	srv.kill()
	name := unique(t)
	for _, tc := range []struct {
		desc string
		cfg  *Config
		req  mediation.SubscribeRequest
	}{
		{"core", coreConfig(srv.url(), name+".in"), mediation.SubscribeRequest{}},
		{"jetstream", jsConfig(srv.url(), name), mediation.SubscribeRequest{Start: mediation.StartEarliest}},
		{"jetstream group", jsConfig(srv.url(), name), mediation.SubscribeRequest{Start: mediation.StartEarliest, Group: "g"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			tc.cfg.PublishTimeout = Duration(time.Second)
			tc.cfg.RequestTimeout = Duration(time.Second)
			e := newEndpoint(t, faultConfig(tc.cfg))
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			wantErrIs(t, e.Publish(ctx, mediation.NewMessage([]byte("x"))), mediation.ErrUnavailable)
			sub, err := e.Subscribe(ctx, tc.req)
			if err == nil {
				_ = sub.Close()
			}
			wantErrIs(t, err, mediation.ErrUnavailable)
		})
	}
}
