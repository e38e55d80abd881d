package mediation_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: a pump,
// a hub or a subscription that outlives its stream is a leak in production.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
