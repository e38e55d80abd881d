package devbrokers

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes what it starts, so no goroutine of kfake, mochi or the
// NATS server may outlive the package's tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
