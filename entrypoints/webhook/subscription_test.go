package webhook

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/entrypoints/webhook/delivery"
	"github.com/sluicegw/sluice/mediation"
)

func TestSubscriptionCheck(t *testing.T) {
	ok := func() Subscription {
		return Subscription{ID: "s", CallbackURL: "https://203.0.113.7/hook"}
	}
	tests := []struct {
		desc    string
		change  func(*Subscription)
		private bool
		wantErr string
	}{
		{desc: "a public https callback", change: func(*Subscription) {}},
		{desc: "no callback", change: func(s *Subscription) { s.CallbackURL = "" }, wantErr: "callbackUrl is required"},
		{desc: "relative URL", change: func(s *Subscription) { s.CallbackURL = "/hook" }, wantErr: "absolute http"},
		{desc: "ftp", change: func(s *Subscription) { s.CallbackURL = "ftp://203.0.113.7/x" }, wantErr: "absolute http"},
		{desc: "loopback refused", change: func(s *Subscription) { s.CallbackURL = "http://127.0.0.1:8080/hook" }, wantErr: "loopback"},
		{desc: "loopback allowed", change: func(s *Subscription) { s.CallbackURL = "http://127.0.0.1:8080/hook" }, private: true},
		{desc: "metadata address", change: func(s *Subscription) { s.CallbackURL = "http://169.254.169.254/latest" }, wantErr: "link-local"},
		{desc: "reserved header", change: func(s *Subscription) { s.Headers = map[string]string{"Webhook-Signature": "x"} }, wantErr: "set by the gateway"},
		{desc: "header with newline", change: func(s *Subscription) { s.Headers = map[string]string{"X-A": "a\r\nB: c"} }, wantErr: "control characters"},
		{desc: "bad secret", change: func(s *Subscription) { s.Secret = "whsec_%%%" }, wantErr: "secret"},
		{desc: "good secret", change: func(s *Subscription) { s.Secret = delivery.NewSecret() }},
		{desc: "too many attempts", change: func(s *Subscription) { s.Retry.MaxAttempts = 1000 }, wantErr: "maxAttempts"},
		{desc: "negative delay", change: func(s *Subscription) { s.Retry.InitialDelay = -time.Second }, wantErr: "initialDelay"},
		{desc: "max below initial", change: func(s *Subscription) { s.Retry = Retry{InitialDelay: time.Minute, MaxDelay: time.Second} }, wantErr: "must not be below"},
		{desc: "too concurrent", change: func(s *Subscription) { s.MaxConcurrentDeliveries = 65 }, wantErr: "maxConcurrentDeliveries"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s := ok()
			tt.change(&s)
			err := s.Check(context.Background(), delivery.Guard{AllowPrivate: tt.private})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}

func TestRetryDefaults(t *testing.T) {
	if got := (Retry{}).WithDefaults(); got != DefaultRetry {
		t.Errorf("zero retry: %+v, want %+v", got, DefaultRetry)
	}
	// A long initial delay raises the default cap rather than exceeding it.
	if got := (Retry{InitialDelay: 5 * time.Minute}).WithDefaults(); got.MaxDelay != 5*time.Minute {
		t.Errorf("max delay %s below the initial delay", got.MaxDelay)
	}
}

// Deliveries carry the message's valid headers, the subscription's win,
// and the webhook-id is stable for a message and differs between messages.
func TestDeliveryHeadersAndIDs(t *testing.T) {
	r := NewRunner(Options{Subscription: Subscription{ID: "sub", Headers: map[string]string{"X-Tenant": "acme"}}})
	m := mediation.NewMessage([]byte("x"))
	m.Headers = mediation.Headers{"x-tenant": {"evil"}, "x-trace": {"a", "b"}, "bad header": {"v"}, "x-ctl": {"a\nb"}, "content-type": {"text/plain"}}
	m.Position = mediation.Position{Stream: "orders", Partition: 1, Offset: 42}
	h := r.headersFor(m)
	if h["X-Tenant"] != "acme" || len(h) != 2 || h["X-Trace"] != "a, b" {
		t.Errorf("headers %v: want the subscription's X-Tenant and the joined x-trace", h)
	}
	for _, k := range []string{"Bad Header", "X-Ctl", "Content-Type"} {
		if _, ok := h[k]; ok {
			t.Errorf("header %q should not be forwarded", k)
		}
	}
	id := r.webhookID(m)
	if !strings.HasPrefix(id, "msg_") || r.webhookID(m) != id {
		t.Errorf("webhook-id %q is not stable", id)
	}
	other := *m
	other.Position.Offset = 43
	if r.webhookID(&other) == id {
		t.Error("two messages share a webhook-id")
	}
	if NewRunner(Options{Subscription: Subscription{ID: "other"}}).webhookID(m) == id {
		t.Error("two subscriptions share a webhook-id for one message")
	}
}
