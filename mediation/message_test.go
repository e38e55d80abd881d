package mediation_test

import (
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

func TestIdentityAndAllMetadata(t *testing.T) {
	m := &mediation.Message{Key: []byte("k"), Position: mediation.Position{Stream: "orders", Partition: 2, Offset: 41},
		Metadata: map[string]string{"region": "eu", "topic": "explicit"}}
	if got := m.Identity(); got != "orders/2/41" {
		t.Errorf("Identity() = %q, want orders/2/41", got)
	}
	md := m.AllMetadata()
	want := map[string]string{"topic": "explicit", "partition": "2", "offset": "41", "key": "k", "region": "eu"}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("AllMetadata()[%q] = %q, want %q (explicit metadata wins)", k, md[k], v)
		}
	}
	m.ID = "broker-id"
	if got := m.Identity(); got != "broker-id" {
		t.Errorf("Identity() with an ID = %q", got)
	}
	if got := (&mediation.Message{}).Identity(); got != "" {
		t.Errorf("Identity() of a bare message = %q", got)
	}
}
