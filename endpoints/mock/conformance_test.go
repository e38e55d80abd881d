package mock

import (
	"strconv"
	"testing"

	"github.com/sluicegw/sluice/endpoints/conformance"
	"github.com/sluicegw/sluice/mediation"
)

// TestConformance runs the connector conformance suite. The mock has no
// broker (no fault tests) and discards what is published: its
// subscriptions read the generated sequence instead.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		New: func(testing.TB, string, string) mediation.Endpoint {
			// No interval: the tests read hundreds of messages.
			return &Endpoint{cfg: Config{MessageContent: "mock message"}}
		},
	},
		conformance.Generator(func(m *mediation.Message) (int, error) { return strconv.Atoi(m.ID) }),
		conformance.Skip(conformance.RoundTrip, "the mock discards published messages; its subscriptions yield a generated sequence"),
	)
}
