package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait for something that must happen; generous,
// so that a busy machine does not fail a test.
const waitTimeout = 60 * time.Second

// sharedServer is the machine's NATS server with JetStream.
const sharedServer = "127.0.0.1:4222"

// localNATS returns the URL of the machine's NATS server, skipping the test
// when it is not running (failing instead with SLUICE_REQUIRE_SERVICES=1).
func localNATS(t testing.TB) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", sharedServer, 2*time.Second)
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("NATS is required (SLUICE_REQUIRE_SERVICES=1) but %s is unreachable: %v", sharedServer, err)
		}
		t.Skipf("NATS with JetStream is not running at %s (set SLUICE_REQUIRE_SERVICES=1 to make this a failure): %v", sharedServer, err)
	}
	_ = conn.Close()
	return "nats://" + sharedServer
}

// unique returns a name no other test uses: letters, digits and '_', so
// that it is a valid stream name and subject token.
func unique(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return fmt.Sprintf("sluice_%s_%08x", name, rand.Uint32())
}

// rawConn is a plain client, so that each side is tested independently of
// the endpoint.
func rawConn(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// newStream creates a file-stored stream of the given name on subjects
// "<name>.>" and deletes it at cleanup. It leaves no connection open.
func newStream(t testing.TB, url, name string) {
	t.Helper()
	withJS(t, url, func(js jetstream.JetStream) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatalf("create stream %s: %v", name, err)
		}
	})
	t.Cleanup(func() {
		nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
		if err != nil {
			return // the server of a fault test is gone with its stream
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", name, err)
		}
	})
}

// streamHandle returns the stream through a connection closed at cleanup.
func streamHandle(t testing.TB, url, name string) jetstream.Stream {
	t.Helper()
	_, js := rawConn(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withJS runs f with a JetStream client whose connection is closed when f
// returns.
func withJS(t testing.TB, url string, f func(jetstream.JetStream)) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	f(js)
}

// coreConfig publishes and subscribes on subject with core NATS.
func coreConfig(url, subject string) *Config {
	cfg := DefaultConfig()
	cfg.Servers = []string{url}
	cfg.Consumer.Subject = subject
	cfg.Producer.Subject = subject
	return cfg
}

// jsConfig reads stream (all its subjects) and publishes to "<stream>.in".
func jsConfig(url, stream string) *Config {
	cfg := DefaultConfig()
	cfg.Servers = []string{url}
	cfg.Consumer.Stream = stream
	cfg.Producer.Subject = stream + ".in"
	return cfg
}

func newEndpoint(t testing.TB, cfg *Config) *Endpoint {
	t.Helper()
	e, err := New(cfg, quietLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

func quietLogger() *slog.Logger {
	level := slog.LevelError
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func subscribe(t testing.TB, e *Endpoint, req mediation.SubscribeRequest) mediation.Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sub, err := e.Subscribe(ctx, req)
	if err != nil {
		t.Fatalf("Subscribe(%+v): %v", req, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// next reads one message or fails the test.
func next(t testing.TB, sub mediation.Subscription) *mediation.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return m
}

// readContents reads n messages and returns their contents.
func readContents(t testing.TB, sub mediation.Subscription, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		out = append(out, string(next(t, sub).Content))
	}
	return out
}

// expectNone asserts that nothing arrives for d.
func expectNone(t testing.TB, sub mediation.Subscription, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if m, err := sub.Next(ctx); err == nil {
		t.Fatalf("unexpected message %q (position %+v)", m.Content, m.Position)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v, want nothing until the deadline", err)
	}
}

// publishJS stores contents on subject through JetStream, returning their
// sequences.
func publishJS(t testing.TB, js jetstream.JetStream, subject string, contents ...string) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	seqs := make([]uint64, 0, len(contents))
	for _, c := range contents {
		ack, err := js.Publish(ctx, subject, []byte(c))
		if err != nil {
			t.Fatalf("publish %q: %v", c, err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

func numbered(prefix string, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%03d", prefix, i))
	}
	return out
}

func wantErrIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one wrapping %v", err, target)
	}
}
