package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// EnvRequireServices names the environment variable that, set to "1",
// turns a missing Chromium from a skipped test into a failed one.
const EnvRequireServices = "SLUICE_REQUIRE_SERVICES"

// DefaultTimeout bounds the browser's start and each Run, RunValue and
// Eval. It is generous on purpose: it only stops a broken test from hanging
// on a busy machine, it never measures speed.
const DefaultTimeout = 60 * time.Second

// Viewport is the size of the page area, in CSS pixels, that every browser
// starts with, so that screenshots have the same size everywhere.
const (
	ViewportWidth  = 1280
	ViewportHeight = 800
)

// closeTimeout bounds the graceful close of the browser at the test's end;
// whatever is left then is killed.
const closeTimeout = 10 * time.Second

// Browser is one headless Chromium with one tab, owned by one test. Its
// methods take the test and fail it on error; call them from the test's
// goroutine, as t.Fatal requires.
type Browser struct {
	ctx     context.Context // the tab's chromedp context
	root    string          // the directory of the profile and every file the browser writes
	console *console
}

// New starts a headless Chromium with a fresh profile in t.TempDir() and
// returns it once its first tab is open. The browser, and every process it
// forked, is stopped when the test ends; on a failed test, the page's
// console lines are logged first.
//
// When no Chromium is found, New skips the test, or fails it when
// SLUICE_REQUIRE_SERVICES=1. A Chromium that is found but does not start
// always fails the test.
func New(t testing.TB) *Browser {
	t.Helper()
	path, err := ChromiumPath()
	if err != nil {
		msg := "browsertest: " + err.Error() + "; install Debian's chromium (apt-get install chromium) or set " + EnvChromium
		if os.Getenv(EnvRequireServices) == "1" {
			t.Fatal(msg + " (" + EnvRequireServices + "=1 forbids skipping)")
		}
		t.Skip(msg)
	}

	// One directory holds everything the browser writes: the profile, and
	// through XDG_* the crash-report database and caches that Chromium
	// otherwise puts under the real ~/.config and ~/.cache.
	root := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(filepath.Join(root, "profile")),
		chromedp.Env("XDG_CONFIG_HOME="+filepath.Join(root, "config"), "XDG_CACHE_HOME="+filepath.Join(root, "cache")),
	}
	for _, f := range flags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: ctx, root: root, console: new(console)}
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() { b.close(t, cancel, allocCancel) })

	// The first chromedp call starts the browser, and the context of that
	// call lives as long as the browser: no timeout on it, a watchdog here.
	started := make(chan error, 1)
	go func() {
		if err := chromedp.Listen(ctx, b.console.handle); err != nil {
			started <- err
			return
		}
		started <- chromedp.Do(ctx, chromedp.EmulateViewport(ViewportWidth, ViewportHeight))
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("browsertest: start %s: %v", path, err)
		}
	case <-time.After(DefaultTimeout):
		cancel()
		<-started
		t.Fatalf("browsertest: %s did not start within %s", path, DefaultTimeout)
	}
	return b
}

// close stops the browser: gracefully first, then by killing whatever
// process of this profile is left.
func (b *Browser) close(t testing.TB, cancel, allocCancel context.CancelFunc) {
	if t.Failed() {
		lines, dropped := b.console.snapshot()
		if dropped > 0 {
			t.Logf("browser console (%d earlier lines dropped):", dropped)
		} else if len(lines) > 0 {
			t.Logf("browser console:")
		}
		for _, l := range lines {
			t.Logf("  %s", l)
		}
	}
	ctx, stop := context.WithTimeout(b.ctx, closeTimeout)
	if err := chromedp.Cancel(ctx); err != nil {
		t.Logf("browsertest: graceful close: %v", err)
	}
	stop()
	cancel()
	allocCancel() // waits until the allocator has reaped the browser
	if left := killLeftovers(b.root, closeTimeout); len(left) > 0 {
		t.Errorf("browsertest: chromium processes %v outlived the test", left)
	}
}

// Context returns the tab's chromedp context, for what the helpers do not
// cover (chromedp.Events, chromedp.Listen, ...). Derive a timeout from it
// for each call; do not cancel it.
func (b *Browser) Context() context.Context { return b.ctx }

// Console returns the last lines (up to 500) the page wrote to its console,
// its uncaught exceptions, and the browser's log entries, which is where
// Chromium reports a blocked cross-origin request.
func (b *Browser) Console() []string {
	lines, _ := b.console.snapshot()
	return lines
}

// Run runs the steps in the tab, in order, within DefaultTimeout, and fails
// the test at the first error.
func (b *Browser) Run(t testing.TB, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
}

// RunValue runs one action that returns a value, such as
// chromedp.Title() or chromedp.FullScreenshot(100), within DefaultTimeout,
// and fails the test on error.
func RunValue[T any](t testing.TB, b *Browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	return v
}

// Eval evaluates the JavaScript expression in the page and decodes its
// JSON value into T, failing the test on an exception or a value that does
// not fit T.
func Eval[T any](t testing.TB, b *Browser, expression string) T {
	t.Helper()
	return RunValue(t, b, chromedp.Evaluate[T](expression))
}
