package solace

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/sluicegw/sluice/internal/testutil/certtest"
	"github.com/sluicegw/sluice/mediation"
)

// The VPN goes in the AMQP open frame; TLS verifies the URL's host.
func TestDialerVPNAndServerName(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.URL, cfg.VPN, cfg.Producer.Topic = "amqps://u:p@mq.example.com", "prod", "a"
	d, err := newDialer(cfg, "n")
	if err != nil {
		t.Fatal(err)
	}
	if d.opts.HostName != "prod" || d.opts.TLSConfig == nil || d.opts.TLSConfig.ServerName != "mq.example.com" || d.addr != "mq.example.com:5671" {
		t.Fatalf("hostname %q, TLS %+v, addr %s", d.opts.HostName, d.opts.TLSConfig, d.addr)
	}
	if d.url != "amqps://mq.example.com:5671" {
		t.Fatalf("url %q still carries the credentials (go-amqp would prefer them)", d.url)
	}
}

// amqps:// end to end: a TLS terminator in front of the broker, whose
// certificate (for 127.0.0.1) is trusted through tls.caFile, while the VPN
// is something else: the certificate is checked against the URL's host.
func TestPublishOverTLS(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	caFile, cert := selfSigned(t)
	addr := tlsTerminator(t, cert, sharedBroker)
	q := uniqueName(t)
	deleteQueueAtEnd(t, q)
	r := newRaw(t)
	rc := r.receiver("/queue/" + q)

	cfg := rabbitConfig(addr)
	cfg.URL = "amqps://" + addr
	cfg.VPN = "vhost:/"
	cfg.TLS.CAFile = caFile
	cfg.Producer.Address = "/queue/" + q
	e := newEndpoint(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.Publish(ctx, mediation.NewMessage([]byte("over tls"))); err != nil {
		t.Fatalf("Publish over TLS: %v", err)
	}
	if m := r.next(rc); string(m.GetData()) != "over tls" {
		t.Fatalf("got %q", m.GetData())
	}
}

// selfSigned returns the PEM file of a self-signed certificate for
// 127.0.0.1 and the certificate itself.
func selfSigned(t *testing.T) (string, tls.Certificate) {
	c := certtest.New(t)
	return c.CAFile(t), c.TLS
}

// tlsTerminator accepts TLS on 127.0.0.1 and forwards the plain bytes to
// target, until the test ends.
func tlsTerminator(t *testing.T, cert tls.Certificate, target string) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return ln.Addr().String()
}
