package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pollInterval is how often WaitText looks at the page again.
const pollInterval = 50 * time.Millisecond

// elementText is what textOf reports about one element.
type elementText struct {
	Found bool   `json:"found"`
	Text  string `json:"text"`
}

// textOf returns an expression that reports the textContent of the first
// element matching selector. The selector is passed as a JSON string, so no
// selector can break out of the expression.
func textOf(selector string) string {
	sel, _ := json.Marshal(selector)
	return `(() => { const el = document.querySelector(` + string(sel) + `);` +
		` return el === null ? {found: false, text: ""} : {found: true, text: el.textContent ?? ""}; })()`
}

// Text returns the textContent of the first element matching the CSS
// selector, failing the test when none matches.
func (b *Browser) Text(t testing.TB, selector string) string {
	t.Helper()
	res := Eval[elementText](t, b, textOf(selector))
	if !res.Found {
		t.Fatalf("browsertest: no element matches %q", selector)
	}
	return res.Text
}

// WaitText navigates to url (unless it is empty, to stay on the current
// page) and waits until the textContent of the first element matching the
// CSS selector contains substring; it returns that text. It fails the test
// after timeout, saying what the element held last.
func (b *Browser) WaitText(t testing.TB, url, selector, substring string, timeout time.Duration) string {
	t.Helper()
	if url != "" {
		b.Run(t, chromedp.Navigate(url))
	}
	expr := textOf(selector)
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
		res, err := chromedp.Run(ctx, chromedp.Evaluate[elementText](expr))
		cancel()
		if err != nil {
			t.Fatalf("browsertest: read %q: %v", selector, err)
		}
		if res.Found && strings.Contains(res.Text, substring) {
			return res.Text
		}
		if time.Now().After(deadline) {
			if !res.Found {
				t.Fatalf("browsertest: no element matches %q after %s", selector, timeout)
			}
			t.Fatalf("browsertest: %q did not contain %q within %s; it holds %q", selector, substring, timeout, res.Text)
		}
		time.Sleep(pollInterval)
	}
}

// Screenshot navigates to url (unless it is empty) and writes a PNG of the
// whole page to path, creating its directory.
func (b *Browser) Screenshot(t testing.TB, url, path string) {
	t.Helper()
	if url != "" {
		b.Run(t, chromedp.Navigate(url))
	}
	png := RunValue(t, b, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("browsertest: screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("browsertest: screenshot: %v", err)
	}
}
