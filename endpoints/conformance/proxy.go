package conformance

import (
	"testing"

	"github.com/sluicegw/sluice/internal/testutil/tcpproxy"
)

// Proxy is a TCP proxy that the fault tests put between an endpoint and its
// broker, to drop connections and simulate outages. Run makes one in front of
// Harness.BrokerAddr by itself; a Harness.FaultyBroker makes its own with
// NewProxy.
type Proxy struct{ p *tcpproxy.Proxy }

// NewProxy starts a proxy on 127.0.0.1 that forwards every connection to
// target (host:port). It is closed when t's test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	return &Proxy{tcpproxy.New(t, target)}
}

// Addr is the host:port clients connect to instead of the target.
func (p *Proxy) Addr() string { return p.p.Addr() }

// CutAll closes every open connection both ways, as a network failure
// would; new connections are forwarded as before.
func (p *Proxy) CutAll() { p.p.CutAll() }

// Pause cuts open connections and black-holes new ones (accepted, never
// answered) until Resume: a broker that hangs.
func (p *Proxy) Pause() { p.p.Pause() }

// Refuse cuts open connections and resets new ones until Resume: a broker
// that is down.
func (p *Proxy) Refuse() { p.p.Refuse() }

// Resume forwards new connections again.
func (p *Proxy) Resume() { p.p.Resume() }

// Open is the number of connections the proxy forwards now.
func (p *Proxy) Open() int { return p.p.Open() }

// Accepted is the number of connections the proxy accepted since it
// started.
func (p *Proxy) Accepted() int64 { return p.p.Accepted() }
