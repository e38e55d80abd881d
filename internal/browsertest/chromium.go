package browsertest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
)

// EnvChromium names the environment variable that, when set, is the path of
// the Chromium binary to use.
const EnvChromium = "SLUICE_CHROMIUM"

// candidates lists where Chromium is looked for, in order. Debian's
// /usr/bin/chromium is a shell wrapper that adds flags of its own (from
// /etc/chromium.d: extensions, GPU rasterization, ...); its target
// /usr/lib/chromium/chromium comes first so that the browser runs with
// exactly the flags below.
var candidates = []string{
	"/usr/lib/chromium/chromium",
	"/usr/bin/chromium",
	"chromium",
	"chromium-browser",
	"google-chrome",
}

// flags are the command-line switches every browser runs with, besides the
// per-test --user-data-dir and chromedp's own --remote-debugging-pipe. Each
// keeps the browser from doing anything a test did not ask for:
// no sandbox (tests run as root in containers), no GPU, no QUIC, no first-run
// UI and no background traffic to Google services.
var flags = []string{
	"headless",
	"no-sandbox",
	"disable-gpu",
	"disable-quic",
	"no-first-run",
	"disable-background-networking",
	"disable-component-update",
	"disable-sync",
}

// ChromiumPath returns the Chromium binary New would start: the value of
// SLUICE_CHROMIUM when set, else the first of Debian's locations or a
// chromium found on PATH.
func ChromiumPath() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", err
		}
		return p, nil
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium binary found (looked for " + strings.Join(candidates, ", ") + ")")
}
