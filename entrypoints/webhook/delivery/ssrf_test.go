package delivery

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestGuardCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		url  string
		// wantStrict / wantPrivate: substring of the refusal, "" = accepted,
		// for the default guard and for AllowPrivate.
		wantStrict, wantPrivate string
	}{
		{desc: "public https", url: "https://hooks.example.com/in"},
		{desc: "public ip with port", url: "http://93.184.216.34:8080/x"},
		{desc: "public ipv6", url: "https://[2606:4700::1111]/"},
		{desc: "hostname is left to the dialer", url: "http://localhost:9999/"},
		{desc: "loopback", url: "http://127.0.0.1/", wantStrict: "loopback"},
		{desc: "loopback elsewhere in 127/8", url: "http://127.9.8.7:80/", wantStrict: "loopback"},
		{desc: "ipv6 loopback", url: "http://[::1]:8080/", wantStrict: "loopback"},
		{desc: "ipv4-mapped loopback", url: "http://[::ffff:127.0.0.1]/", wantStrict: "loopback"},
		{desc: "ipv4-mapped private in hex", url: "http://[::ffff:a01:203]/", wantStrict: "private"},
		{desc: "nat64 of metadata", url: "http://[64:ff9b::a9fe:a9fe]/", wantStrict: "link-local"},
		{desc: "6to4 of loopback", url: "http://[2002:7f00:1::]/", wantStrict: "loopback"},
		{desc: "cloud metadata", url: "http://169.254.169.254/latest/meta-data", wantStrict: "link-local"},
		{desc: "rfc1918 10/8", url: "http://10.1.2.3/", wantStrict: "private"},
		{desc: "rfc1918 172.16/12", url: "http://172.31.255.1/", wantStrict: "private"},
		{desc: "rfc1918 192.168/16", url: "https://192.168.1.1/", wantStrict: "private"},
		{desc: "unique local", url: "http://[fd00::1]/", wantStrict: "private"},
		{desc: "ipv6 link-local with zone", url: "http://[fe80::1%25eth0]/", wantStrict: "link-local"},
		{desc: "cgnat", url: "http://100.64.0.1/", wantStrict: "carrier-grade NAT"},
		{desc: "just outside cgnat", url: "http://100.128.0.1/"},
		{desc: "unspecified v4 refused even when private allowed", url: "http://0.0.0.0:80/", wantStrict: "this network", wantPrivate: "this network"},
		{desc: "0/8", url: "http://0.1.2.3/", wantStrict: "this network", wantPrivate: "this network"},
		{desc: "unspecified v6", url: "http://[::]/", wantStrict: "unspecified", wantPrivate: "unspecified"},
		{desc: "multicast", url: "http://224.0.0.1/", wantStrict: "multicast", wantPrivate: "multicast"},
		{desc: "ipv6 multicast", url: "http://[ff02::1]/", wantStrict: "multicast", wantPrivate: "multicast"},
		{desc: "broadcast", url: "http://255.255.255.255/", wantStrict: "broadcast", wantPrivate: "broadcast"},
		{desc: "numeric shorthand", url: "http://2130706433/", wantStrict: "numeric", wantPrivate: "numeric"},
		{desc: "dotted shorthand", url: "http://127.1/", wantStrict: "numeric", wantPrivate: "numeric"},
		{desc: "hex shorthand", url: "http://0x7f.1/", wantStrict: "numeric", wantPrivate: "numeric"},
		{desc: "ftp scheme", url: "ftp://example.com/", wantStrict: "scheme", wantPrivate: "scheme"},
		{desc: "no scheme", url: "example.com/hook", wantStrict: "scheme", wantPrivate: "scheme"},
		{desc: "file scheme", url: "file:///etc/passwd", wantStrict: "scheme", wantPrivate: "scheme"},
		{desc: "userinfo", url: "https://user:pw@example.com/", wantStrict: "user info", wantPrivate: "user info"},
		{desc: "userinfo trick", url: "https://example.com@127.0.0.1/", wantStrict: "user info", wantPrivate: "user info"},
		{desc: "no host", url: "https:///path", wantStrict: "no host", wantPrivate: "no host"},
		{desc: "opaque", url: "http:example.com", wantStrict: "no host", wantPrivate: "no host"},
		{desc: "port zero", url: "http://example.com:0/", wantStrict: "port", wantPrivate: "port"},
		{desc: "port too big", url: "http://example.com:70000/", wantStrict: "port", wantPrivate: "port"},
		{desc: "unparsable", url: "http://[::1/", wantStrict: "not a valid URL", wantPrivate: "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			for _, g := range []struct {
				guard Guard
				want  string
			}{{Guard{}, tt.wantStrict}, {Guard{AllowPrivate: true}, tt.wantPrivate}} {
				err := g.guard.CheckURL(tt.url)
				if g.want == "" {
					if err != nil {
						t.Errorf("%+v.CheckURL(%q) = %v, want accepted", g.guard, tt.url, err)
					}
					continue
				}
				if err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), g.want) {
					t.Errorf("%+v.CheckURL(%q) = %v, want a refusal mentioning %q", g.guard, tt.url, err, g.want)
				}
			}
		})
	}
}

// TestGuardRefusesAtDialTime dials real listeners: the guard must refuse
// the address after resolution, so a hostname such as localhost cannot
// sneak past CheckURL.
func TestGuardRefusesAtDialTime(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))

	get := func(g Guard, u string) error {
		tr := &http.Transport{DialContext: g.DialContext}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	localhostURL := "http://localhost:" + port + "/"
	if err := (Guard{}).CheckURL(localhostURL); err != nil {
		t.Fatalf("CheckURL(%s) = %v; a hostname should pass and be checked at dial", localhostURL, err)
	}
	err := get(Guard{}, localhostURL)
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "loopback") {
		t.Fatalf("GET %s through the default guard = %v, want a loopback refusal", localhostURL, err)
	}
	if err := get(Guard{}, srv.URL); !errors.Is(err, ErrRefused) {
		t.Fatalf("GET %s through the default guard = %v, want refused", srv.URL, err)
	}
	if err := get(Guard{AllowPrivate: true}, localhostURL); err != nil {
		t.Fatalf("GET %s with AllowPrivate = %v, want success", localhostURL, err)
	}
}

func TestGuardControlRefusesNonTCPAndGarbage(t *testing.T) {
	t.Parallel()
	g := Guard{AllowPrivate: true}
	if err := g.Control("udp", "8.8.8.8:53", nil); !errors.Is(err, ErrRefused) {
		t.Errorf("udp: %v, want refused", err)
	}
	if err := g.Control("tcp", "not-an-address", nil); !errors.Is(err, ErrRefused) {
		t.Errorf("garbage address: %v, want refused", err)
	}
	if err := g.Control("tcp6", "[::ffff:10.0.0.1]:443", nil); err != nil {
		t.Errorf("mapped private with AllowPrivate: %v, want allowed", err)
	}
	if err := (Guard{}).Control("tcp6", "[::ffff:10.0.0.1]:443", nil); !errors.Is(err, ErrRefused) {
		t.Errorf("mapped private with default guard: %v, want refused", err)
	}
}

func TestGuardCheckResolved(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := (Guard{}).CheckResolved(ctx, "http://localhost:8080/hook")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "resolves to") {
		t.Fatalf("CheckResolved(localhost) = %v, want a refusal saying what it resolves to", err)
	}
	if err := (Guard{AllowPrivate: true}).CheckResolved(ctx, "http://localhost:8080/hook"); err != nil {
		t.Fatalf("CheckResolved(localhost) with AllowPrivate = %v", err)
	}
	if err := (Guard{}).CheckResolved(ctx, "http://127.0.0.1/"); !errors.Is(err, ErrRefused) {
		t.Fatalf("CheckResolved(127.0.0.1) = %v, want refused", err)
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1/", "http://[::ffff:127.0.0.1]/", "https://example.com:443/a?b#c",
		"http://[fe80::1%25eth0]:80/", "http://user@host/", "http://0x7f.1/", "://", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		strict := Guard{}.CheckURL(raw)
		loose := Guard{AllowPrivate: true}.CheckURL(raw)
		if strict != nil && !errors.Is(strict, ErrRefused) {
			t.Fatalf("CheckURL(%q) error %v does not match ErrRefused", raw, strict)
		}
		if strict == nil && loose != nil {
			t.Fatalf("CheckURL(%q): strict guard accepts what the permissive one refuses: %v", raw, loose)
		}
		if strict != nil {
			return
		}
		// Whatever the strict guard accepts is http(s) with a host and no
		// user info, and an IP-literal host is a public address.
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
			t.Fatalf("CheckURL accepted %q (parse err %v)", raw, err)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() {
				t.Fatalf("CheckURL accepted forbidden address in %q", raw)
			}
		}
	})
}
