package browsertest

import (
	"testing"

	"go.uber.org/goleak"
)

// Each Browser is stopped in its test's cleanup, so no chromedp goroutine
// may outlive the package's tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
