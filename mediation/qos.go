package mediation

import "fmt"

// QoS is the delivery guarantee an entrypoint asks of the path between the
// broker and the client.
type QoS string

const (
	// QoSNone delivers what arrives, acknowledges at once, and may lose
	// messages when a client disconnects. Live clients may share one broker
	// subscription.
	QoSNone QoS = "none"
	// QoSAuto lets the connector pick its natural guarantee; for Sluice's
	// connectors it behaves like QoSNone on the subscribe side.
	QoSAuto QoS = "auto"
	// QoSAtMostOnce commits a position before the message is delivered.
	QoSAtMostOnce QoS = "at-most-once"
	// QoSAtLeastOnce commits a position only after every message up to it
	// was delivered; the client reads from its own position.
	QoSAtLeastOnce QoS = "at-least-once"
)

// AllQoS lists every level, weakest first.
var AllQoS = []QoS{QoSNone, QoSAuto, QoSAtMostOnce, QoSAtLeastOnce}

// ParseQoS accepts the configuration spelling of a level; "" is QoSAuto.
func ParseQoS(s string) (QoS, error) {
	if s == "" {
		return QoSAuto, nil
	}
	for _, q := range AllQoS {
		if string(q) == s {
			return q, nil
		}
	}
	return "", fmt.Errorf("unknown qos %q (want none, auto, at-most-once or at-least-once)", s)
}

// Shareable reports whether clients at this level may share one broker
// subscription (fan-out) when they start live.
func (q QoS) Shareable() bool { return q == QoSNone || q == QoSAuto }
