package nats

import (
	"slices"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/sluicegw/sluice/mediation"
)

func TestNATSHeader(t *testing.T) {
	t.Parallel()
	got := natsHeader(mediation.Headers{
		"x-tag":       {"a", "b"},
		"nats-msg-id": {"order-1"},
		"nats-rollup": {"all"},
		"bad name":    {"x"},
		"bad:name":    {"x"},
		"empty":       {},
	})
	want := nats.Header{"x-tag": {"a", "b"}, "Nats-Msg-Id": {"order-1"}, "nats-rollup": {"all"}}
	if len(got) != len(want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("header %q = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if natsHeader(nil) != nil {
		t.Error("no headers should make no NATS headers")
	}

	back := headersOf(nats.Header{"X-Tag": {"a", "b"}, "Nats-Expected-Stream": {"S"}, "Nats-Msg-Id": {"1"}})
	if !slices.Equal(back.Values("x-tag"), []string{"a", "b"}) || back.Get("nats-msg-id") != "1" || len(back) != 2 {
		t.Errorf("received headers %v, want x-tag [a b] and nats-msg-id, without the publish precondition", back)
	}
	if headersOf(nats.Header{"Nats-Expected-Stream": {"S"}}) != nil {
		t.Error("headers of only preconditions should be none")
	}
}
