package kafka

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicegw/sluice/internal/testutil/certtest"
	"github.com/sluicegw/sluice/mediation"
)

// selfSigned returns a server TLS config for 127.0.0.1 and the path of its
// certificate as a PEM CA file.
func selfSigned(t *testing.T) (*tls.Config, string) {
	c := certtest.New(t)
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}}, c.CAFile(t)
}

// Every protocol and mechanism, against a cluster that demands it: a
// publish and a read back succeed with the right credentials.
func TestSecurityProtocols(t *testing.T) {
	t.Parallel()
	serverTLS, caFile := selfSigned(t)
	for _, tc := range []struct {
		desc     string
		protocol string
		mech     string
		tls      bool
	}{
		{desc: "SSL", protocol: ProtocolSSL, tls: true},
		{desc: "SASL PLAIN", protocol: ProtocolSASLPlaintext, mech: MechanismPlain},
		{desc: "SASL SCRAM-SHA-256", protocol: ProtocolSASLPlaintext, mech: MechanismScramSHA256},
		{desc: "SASL SCRAM-SHA-512 over TLS", protocol: ProtocolSASLSSL, mech: MechanismScramSHA512, tls: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic)}
			if tc.mech != "" {
				opts = append(opts, kfake.EnableSASL(), kfake.Superuser(tc.mech, "gw", "s3cret"))
			}
			if tc.tls {
				opts = append(opts, kfake.TLS(serverTLS))
			}
			c, err := kfake.NewCluster(opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)

			cfg := testConfig(c)
			cfg.Security.Protocol = tc.protocol
			if tc.mech != "" {
				cfg.Security.SASL = SASL{Mechanism: tc.mech, Username: "gw", Password: "s3cret"}
			}
			if tc.tls {
				cfg.Security.TLS.CAFile = caFile
			}
			e := newEndpoint(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := e.Publish(ctx, mediation.NewMessage([]byte("secret"))); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			sub := subscribe(t, e, mediation.SubscribeRequest{Start: mediation.StartEarliest})
			if m := next(t, sub); string(m.Content) != "secret" {
				t.Fatalf("read %q", m.Content)
			}
		})
	}
}

func TestWrongPasswordFailsPublish(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic), kfake.EnableSASL(), kfake.Superuser(MechanismPlain, "gw", "right"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := testConfig(c)
	cfg.Producer.DeliveryTimeout = Duration(time.Second)
	cfg.Security.Protocol = ProtocolSASLPlaintext
	cfg.Security.SASL = SASL{Mechanism: MechanismPlain, Username: "gw", Password: "wrong"}
	e := newEndpoint(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.Publish(ctx, mediation.NewMessage([]byte("x"))); err == nil {
		t.Fatal("Publish with a wrong password succeeded")
	} else {
		t.Log(err)
	}
}

func TestNewReportsUnreadableCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc  string
		tls   TLS
		field string
	}{
		{"a CA file that does not exist", TLS{CAFile: filepath.Join(dir, "missing.pem")}, "security.tls.caFile"},
		{"a CA file without a certificate", TLS{CAFile: garbage}, "security.tls.caFile"},
		{"a client key pair that does not load", TLS{CertFile: garbage, KeyFile: garbage}, "security.tls.certFile"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.BootstrapServers = []string{"127.0.0.1:9093"}
			cfg.Producer.Topic = testTopic
			cfg.Security = Security{Protocol: ProtocolSSL, TLS: tc.tls}
			e, err := New(cfg, quietLogger())
			if err == nil {
				_ = e.Close(context.Background())
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
}
