package conformance_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/endpoints/conformance"
	"github.com/sluicegw/sluice/mediation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memHarness runs the suite on a memBroker with the given bugs; with produce,
// subscribe-side tests write to the broker directly.
func memHarness(b bugs, produce bool) conformance.Harness {
	broker := newMemBroker()
	h := conformance.Harness{
		New: func(_ testing.TB, _, channel string) mediation.Endpoint {
			return &memEndpoint{b: broker, channel: channel, bugs: b}
		},
	}
	if produce {
		h.Produce = broker.produce
	}
	return h
}

// The reference connector passes, whether messages are sent through it or
// straight to its broker.
func TestReferenceConnectorConforms(t *testing.T) {
	for _, produce := range []bool{false, true} {
		name := "publish"
		if produce {
			name = "produce"
		}
		t.Run(name, func(t *testing.T) {
			conformance.Run(t, memHarness(bugs{}, produce))
		})
	}
}

// brokenEnv names the broken connector TestBrokenConnector runs: set only
// in the child processes of TestSuiteCatchesBrokenConnectors.
const brokenEnv = "SLUICE_CONFORMANCE_BROKEN"

// broken are connectors that break one promise each, and the case of the
// suite that must fail for it, with a phrase of the failure.
var broken = []struct {
	desc    string
	harness func(t *testing.T) conformance.Harness
	fails   conformance.Case
	says    string
}{
	{"messages out of order", mem(bugs{reorder: true}), conformance.Ordering, "message 11 arrived where message 10 was due"},
	{"cursor resumes one message early", mem(bugs{cursorReplays: true}), conformance.CursorResume, "message 6 arrived where message 7 was due"},
	{"group commits past a nack", mem(bugs{commitPastAck: true}), conformance.AtLeastOnce, "did not come again"},
	{"subscription leaks a goroutine", mem(bugs{leak: true}), conformance.OpenClose, "goroutines still running"},
	{"header names not lower-cased", mem(bugs{upperHeaders: true}), conformance.Headers, "is not lower-case"},
	{"Next after Close returns no error", mem(bugs{forgetClose: true}), conformance.OpenClose, "want ErrClosed"},
	{"cursor of another stream accepted", mem(bugs{anyCursor: true}), conformance.BadCursor, "want an error wrapping ErrBadCursor"},
	{"key lost", mem(bugs{dropKey: true}), conformance.Keys, "key = "},
	{"publish error does not wrap ErrUnavailable", kafkaHarness(unwrapUnavailable), conformance.PublishUnavailable, "want an error wrapping mediation.ErrUnavailable"},
	{"broker reached around the proxy", kafkaHarness(aroundTheProxy), conformance.PublishUnavailable, "Publish succeeded with the broker unreachable"},
	{"subscription reached around the proxy", kafkaHarness(aroundTheProxy), conformance.DroppedConnection, "reaches the broker around the proxy"},
}

func mem(b bugs) func(*testing.T) conformance.Harness {
	return func(*testing.T) conformance.Harness { return memHarness(b, true) }
}

// TestBrokenConnector runs the suite on the broken connector named by the
// environment; it does nothing in a normal test run.
func TestBrokenConnector(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("runs only as a child of TestSuiteCatchesBrokenConnectors")
	}
	for _, b := range broken {
		if b.desc == name {
			// Short waits: the failures expected are things that never come.
			conformance.Run(t, b.harness(t), conformance.Timeout(10*time.Second))
			return
		}
	}
	t.Fatalf("no broken connector %q", name)
}

// Every broken connector fails the case that checks its promise: the suite
// can fail. Each runs in a child process, since the failure must not fail
// this test.
func TestSuiteCatchesBrokenConnectors(t *testing.T) {
	for _, b := range broken {
		t.Run(b.desc, func(t *testing.T) {
			t.Parallel()
			top, _, _ := strings.Cut(string(b.fails), "/")
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenConnector$/^"+top+"$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+b.desc)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a connector whose %s:\n%s", b.desc, out)
			}
			if want := "--- FAIL: TestBrokenConnector/" + string(b.fails); !strings.Contains(string(out), want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
			if !strings.Contains(string(out), b.says) {
				t.Fatalf("output lacks %q:\n%s", b.says, out)
			}
		})
	}
}
