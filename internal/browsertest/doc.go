// Package browsertest drives a real headless Chromium from Go tests, through
// chromedp, so that tests can check what a person's browser does with the
// gateway: EventSource streams, cross-origin requests and CORS, WebSocket
// pages, screenshots of the demo page.
//
// New starts one browser for one test and stops it, with every process it
// forked, when the test ends:
//
//	b := browsertest.New(t)
//	text := b.WaitText(t, pageURL, "#events", "order 1", 30*time.Second)
//
// When no Chromium is installed, New skips the test, or fails it when the
// environment sets SLUICE_REQUIRE_SERVICES=1 (as CI does). Debian's package
// `chromium` provides one.
package browsertest
