package ticker

import (
	"strconv"
	"testing"

	"github.com/sluicegw/sluice/endpoints/conformance"
	"github.com/sluicegw/sluice/mediation"
)

// TestConformance runs the suite every connector passes. The ticker has no
// broker (no fault tests) and yields a sequence of its own (Generator).
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		New: func(testing.TB, string, string) mediation.Endpoint {
			return &Endpoint{cfg: Config{Message: "tick {n}"}} // no interval: the suite reads hundreds
		},
	},
		conformance.Generator(func(m *mediation.Message) (int, error) { return strconv.Atoi(m.ID) }),
		conformance.Skip(conformance.RoundTrip, "the ticker cannot publish"),
	)
}
