package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrRefused is matched (errors.Is) by every refusal of the SSRF guard.
var ErrRefused = errors.New("callback address refused")

// RefusedError says which callback target the guard refused and why.
type RefusedError struct {
	// Target is the URL, host or address that was refused.
	Target string
	// Reason says why, e.g. "127.0.0.1 is a loopback address".
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("callback %s refused: %s", e.Target, e.Reason)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func refuse(target, format string, args ...any) error {
	return &RefusedError{Target: target, Reason: fmt.Sprintf(format, args...)}
}

// Guard keeps webhook callbacks from reaching the gateway's own network
// (server-side request forgery). CheckURL vets a URL when a subscription is
// made; DialContext re-checks the address actually dialed, after DNS
// resolution, so a hostname that resolves (or later re-resolves) to a
// forbidden address is refused too. The zero value is the safe default.
type Guard struct {
	// AllowPrivate lets callbacks reach loopback, private (RFC 1918,
	// fc00::/7), link-local and CGNAT addresses: for tests and trusted
	// internal deployments (server.webhooks.allowPrivateNetworks).
	AllowPrivate bool
}

// ipRange is one forbidden block. always marks blocks that are never a
// valid unicast TCP destination, refused even when AllowPrivate is set.
type ipRange struct {
	prefix netip.Prefix
	what   string
	always bool
}

var forbidden = []ipRange{
	{netip.MustParsePrefix("0.0.0.0/8"), `a "this network" address (0.0.0.0/8)`, true},
	{netip.MustParsePrefix("::/128"), "the unspecified address", true},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address", true},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address", true},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address (240.0.0.0/4)", true},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address", false},
	{netip.MustParsePrefix("::1/128"), "a loopback address", false},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address (RFC 1918)", false},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address (RFC 1918)", false},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address (RFC 1918)", false},
	{netip.MustParsePrefix("fc00::/7"), "a private address (unique local, fc00::/7)", false},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (169.254.0.0/16, cloud metadata lives here)", false},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address (fe80::/10)", false},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address (fec0::/10)", false},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT address (100.64.0.0/10)", false},
}

var (
	ipv4Compatible = netip.MustParsePrefix("::/96")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address an IPv6 address carries when it is
// one of the forms that reach IPv4 hosts: IPv4-mapped (::ffff:a.b.c.d),
// IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) or 6to4 (2002::/16).
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case ip.Is4In6():
		return ip.Unmap(), true
	case ipv4Compatible.Contains(ip) && ip != netip.IPv6Unspecified() && ip != netip.IPv6Loopback():
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// CheckIP refuses an address the guard does not let callbacks reach.
func (g Guard) CheckIP(ip netip.Addr) error {
	if !ip.IsValid() {
		return refuse("address", "not a valid IP address")
	}
	ip = ip.WithZone("")
	check := ip
	via := ""
	if v4, ok := embeddedIPv4(ip); ok {
		check, via = v4, fmt.Sprintf(" (embedded in %s)", ip)
	}
	for _, r := range forbidden {
		if r.prefix.Contains(check) && (r.always || !g.AllowPrivate) {
			hint := ""
			if !r.always {
				hint = "; set server.webhooks.allowPrivateNetworks to allow it"
			}
			return refuse(ip.String(), "%s%s is %s%s", check, via, r.what, hint)
		}
	}
	return nil
}

// CheckURL vets a callback URL before any request: scheme http or https,
// a host, no user info, a valid port, and, when the host is an IP literal,
// an address CheckIP accepts. Hostnames are checked at dial time.
func (g Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return refuse(strconv.Quote(raw), "not a valid URL: %v", unwrapURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return refuse(strconv.Quote(raw), "scheme must be http or https, not %q", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return refuse(strconv.Quote(raw), "no host")
	}
	if u.User != nil {
		return refuse(strconv.Quote(raw), "user info in a callback URL is not allowed (send credentials as subscription headers)")
	}
	host := u.Hostname()
	if host == "" {
		return refuse(strconv.Quote(raw), "no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return refuse(strconv.Quote(raw), "port %q is not between 1 and 65535", p)
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.CheckIP(ip)
	}
	// A hostname whose last label is numeric is an IPv4 shorthand some
	// resolvers accept ("127.1", "2130706433", "0x7f.1"), never a DNS name.
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if last := strings.ToLower(labels[len(labels)-1]); isNumericLabel(last) {
		return refuse(strconv.Quote(raw), "host %q looks like a numeric IPv4 shorthand; write the address in dotted-quad form", host)
	}
	return nil
}

func isNumericLabel(s string) bool {
	if s == "" {
		return false
	}
	if strings.HasPrefix(s, "0x") {
		s = s[2:]
		return strings.Trim(s, "0123456789abcdef") == ""
	}
	return strings.Trim(s, "0123456789") == ""
}

// unwrapURLError drops url.Error's repetition of the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// CheckResolved is CheckURL plus a DNS lookup of a hostname, refusing it
// when any address it resolves to is refused: the early, user-facing check
// for subscription creation. The dial-time check still applies later,
// since DNS answers can change.
func (g Guard) CheckResolved(ctx context.Context, raw string) error {
	if err := g.CheckURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw) // CheckURL parsed it already
	host := u.Hostname()
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("callback host %q does not resolve: %w", host, err)
	}
	for _, a := range addrs {
		if err := g.CheckIP(a); err != nil {
			reason := err.Error()
			var re *RefusedError
			if errors.As(err, &re) {
				reason = re.Reason
			}
			return refuse(strconv.Quote(raw), "host %s resolves to %s", host, reason)
		}
	}
	return nil
}

// Control is a net.Dialer Control function: it runs after DNS resolution,
// just before connect(2), with the literal address being dialed, and
// refuses it unless CheckIP accepts it. Only TCP is allowed.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return refuse(address, "network %q is not TCP", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refuse(address, "cannot parse the dialed address: %v", err)
	}
	return g.CheckIP(ap.Addr())
}

// Dialer returns a net.Dialer whose Control applies the guard.
func (g Guard) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: g.Control}
}

// DialContext dials through the guard; use it as http.Transport.DialContext.
// Refusals come back wrapped in *net.OpError; errors.Is(err, ErrRefused)
// and errors.As(err, **RefusedError) see through it.
func (g Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return g.Dialer().DialContext(ctx, network, address)
}
