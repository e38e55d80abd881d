package solace

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	amqp "github.com/Azure/go-amqp"

	"github.com/sluicegw/sluice/mediation"
)

// encodeDecode sends msg through the AMQP 1.0 wire format, as the broker
// would hand it to another client.
func encodeDecode(t testing.TB, msg *mediation.Message) (*amqp.Message, *mediation.Message) {
	t.Helper()
	am, err := toAMQP(msg, true, newIDGen())
	if err != nil {
		t.Fatalf("toAMQP: %v", err)
	}
	b, err := am.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back amqp.Message
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return &back, fromAMQP(&back, "queue://q", 7)
}

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	ts := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	msg := &mediation.Message{
		ID: "m-1", Key: []byte("k ü"), Content: []byte("a\x00\xff"), Timestamp: ts,
		Headers: mediation.Headers{
			"x-single":     {"one"},
			"x-multi":      {"first", "second", `"third", with a comma`},
			"x-empty":      {""},
			"content-type": {"application/json"},
		},
	}
	am, got := encodeDecode(t, msg)
	if !am.Header.Durable {
		t.Error("a persistent message is not durable")
	}
	if ct := am.Properties.ContentType; ct == nil || *ct != "application/json" {
		t.Errorf("content-type property %v", ct)
	}
	if _, ok := am.ApplicationProperties["content-type"]; ok {
		t.Error("content-type travels twice")
	}
	if string(got.Content) != string(msg.Content) || got.ID != "m-1" || string(got.Key) != "k ü" || !got.Timestamp.Equal(ts) {
		t.Errorf("got content %q id %q key %q ts %v", got.Content, got.ID, got.Key, got.Timestamp)
	}
	for name, want := range msg.Headers {
		if have := got.Headers.Values(name); !slices.Equal(have, want) {
			t.Errorf("header %s = %q, want %q", name, have, want)
		}
	}
	if _, ok := got.Headers[multiValuedProperty]; ok {
		t.Error("the multi-valued marker shows as a header")
	}
	if got.Metadata["address"] != "queue://q" || got.Metadata["redelivered"] != "true" {
		// A message never delivered by a broker has no first-acquirer flag.
		t.Errorf("metadata %v", got.Metadata)
	}
}

// Messages from other producers: upper-case names, other value types, other
// bodies, no id.
func TestMessageFromOtherProducers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc        string
		msg         *amqp.Message
		wantContent string
		wantHeaders mediation.Headers
		wantID      string
	}{
		{
			desc:        "typed application properties",
			msg:         &amqp.Message{Data: [][]byte{[]byte("x")}, ApplicationProperties: map[string]any{"X-Count": int32(3), "ok": true, "ratio": 0.5, "Name": "n", "name": "m"}},
			wantContent: "x",
			wantHeaders: mediation.Headers{"x-count": {"3"}, "ok": {"true"}, "ratio": {"0.5"}, "name": {"n", "m"}},
			wantID:      "7",
		},
		{
			desc:        "value body",
			msg:         &amqp.Message{Value: "hello", Properties: &amqp.MessageProperties{MessageID: uint64(42)}},
			wantContent: "hello",
			wantID:      "42",
		},
		{
			desc:        "several data sections",
			msg:         &amqp.Message{Data: [][]byte{[]byte("ab"), []byte("cd")}},
			wantContent: "abcd",
			wantID:      "7",
		},
		{
			desc:        "a marker that lies is ignored",
			msg:         &amqp.Message{Data: [][]byte{nil}, ApplicationProperties: map[string]any{"a": "not json", multiValuedProperty: `["a"]`}},
			wantContent: "",
			wantHeaders: mediation.Headers{"a": {"not json"}},
			wantID:      "7",
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got := fromAMQP(tc.msg, "topic://a", 7)
			if string(got.Content) != tc.wantContent || got.ID != tc.wantID || got.Timestamp.IsZero() {
				t.Errorf("content %q id %q timestamp %v", got.Content, got.ID, got.Timestamp)
			}
			for name, want := range tc.wantHeaders {
				if have := got.Headers[name]; !slices.Equal(have, want) {
					t.Errorf("header %s = %q, want %q", name, have, want)
				}
			}
			if len(got.Headers) != len(tc.wantHeaders) {
				t.Errorf("headers %v, want %v", got.Headers, tc.wantHeaders)
			}
		})
	}
}

func TestReservedHeaderRefused(t *testing.T) {
	t.Parallel()
	_, err := toAMQP(&mediation.Message{Headers: mediation.Headers{multiValuedProperty: {"x"}}}, true, newIDGen())
	var rej *mediation.Rejection
	if !errors.As(err, &rej) || rej.Status != 400 {
		t.Fatalf("err = %v, want a 400 rejection", err)
	}
}

func FuzzHeaderRoundTrip(f *testing.F) {
	f.Add("x-a", "v1", "v2", "text/plain", []byte("body"))
	f.Add("content-type", "", "", "", []byte{})
	f.Add("x", `["a"]`, "b", "c", []byte{0xff})
	f.Fuzz(func(t *testing.T, name, v1, v2, ct string, content []byte) {
		switch strings.ToLower(name) {
		case "", multiValuedProperty, headerContentType, headerContentEncoding:
			return
		}
		if !utf8.ValidString(name) || !utf8.ValidString(v1) || !utf8.ValidString(v2) {
			// Refused with a 400 (multi-valued) or sent as binary (single).
			one := &mediation.Message{Headers: mediation.Headers{name: {v1}}}
			if _, err := toAMQP(one, true, newIDGen()); err == nil {
				if _, got := encodeDecode(t, one); got.Headers.Get(name) != v1 {
					t.Fatalf("single value %q came back as %q", v1, got.Headers.Get(name))
				}
			}
			return
		}
		msg := &mediation.Message{Content: content, Headers: mediation.Headers{name: {v1, v2}}}
		if ct != "" {
			msg.Headers[headerContentType] = []string{ct}
		}
		_, got := encodeDecode(t, msg)
		if string(got.Content) != string(content) {
			t.Fatalf("content %q, want %q", got.Content, content)
		}
		if key := strings.ToLower(name); !slices.Equal(got.Headers[key], []string{v1, v2}) {
			t.Fatalf("header %q = %q, want %q", name, got.Headers[key], []string{v1, v2})
		}
		if ct != "" && got.Headers.Get(headerContentType) != ct {
			t.Fatalf("content-type %q, want %q", got.Headers.Get(headerContentType), ct)
		}
	})
}
