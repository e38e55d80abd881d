package rabbitmq

import (
	"errors"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/mediation"
)

func TestEncodeHeaders(t *testing.T) {
	t.Parallel()
	var p amqp.Publishing
	err := encodeHeaders(mediation.Headers{
		"x-one":            {"1"},
		"x-many":           {"a", "b"},
		"content-type":     {"application/json", "ignored"},
		"content-encoding": {"gzip"},
		"x-empty":          {},
	}, &p)
	if err != nil {
		t.Fatal(err)
	}
	want := amqp.Table{"x-one": "1", "x-many": []any{"a", "b"}}
	if !reflect.DeepEqual(p.Headers, want) {
		t.Fatalf("table = %#v, want %#v", p.Headers, want)
	}
	if p.ContentType != "application/json" || p.ContentEncoding != "gzip" {
		t.Fatalf("properties = %q %q", p.ContentType, p.ContentEncoding)
	}
	if err := p.Headers.Validate(); err != nil {
		t.Fatalf("amqp091 refuses the table: %v", err)
	}

	var none amqp.Publishing
	if err := encodeHeaders(nil, &none); err != nil || none.Headers != nil {
		t.Fatalf("no headers: %v %#v", err, none.Headers)
	}
}

func TestEncodeHeadersRefusesWhatAMQPCannotCarry(t *testing.T) {
	t.Parallel()
	for _, h := range []mediation.Headers{
		{strings.Repeat("n", 256): {"v"}},
		{"content-type": {strings.Repeat("t", 256)}},
	} {
		var p amqp.Publishing
		err := encodeHeaders(h, &p)
		var rej *mediation.Rejection
		if !errors.As(err, &rej) || rej.Status != http.StatusBadRequest {
			t.Fatalf("error = %v, want a 400 rejection", err)
		}
	}
}

func TestDecodeHeaders(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("x", 3600))
	got := decodeHeaders(amqp.Table{
		"X-Str":    "s",
		"x-str":    "merged",
		"x-bytes":  []byte("raw"),
		"x-bool":   true,
		"x-i8":     int8(-8),
		"x-u8":     uint8(8),
		"x-i16":    int16(-16),
		"x-u16":    uint16(16),
		"x-i32":    int32(-32),
		"x-u32":    uint32(32),
		"x-i64":    int64(1 << 40),
		"x-f32":    float32(1.5),
		"x-f64":    0.1,
		"x-dec":    amqp.Decimal{Scale: 2, Value: -1234},
		"x-dec0":   amqp.Decimal{Scale: 0, Value: 7},
		"x-dec-s":  amqp.Decimal{Scale: 4, Value: 5},
		"x-time":   ts,
		"x-nil":    nil,
		"x-arr":    []any{"a", int32(2), []any{"n", true}},
		"x-none":   []any{},
		"x-table":  amqp.Table{"k": []byte("v"), "n": int64(1), "t": amqp.Table{"d": amqp.Decimal{Scale: 1, Value: 5}}},
		"x-number": 3,
	}, "text/plain", "br")
	want := mediation.Headers{
		"x-str":            {"s", "merged"}, // "X-Str" sorts before "x-str"
		"x-bytes":          {"raw"},
		"x-bool":           {"true"},
		"x-i8":             {"-8"},
		"x-u8":             {"8"},
		"x-i16":            {"-16"},
		"x-u16":            {"16"},
		"x-i32":            {"-32"},
		"x-u32":            {"32"},
		"x-i64":            {"1099511627776"},
		"x-f32":            {"1.5"},
		"x-f64":            {"0.1"},
		"x-dec":            {"-12.34"},
		"x-dec0":           {"7"},
		"x-dec-s":          {"0.0005"},
		"x-time":           {"2024-05-06T06:08:09Z"},
		"x-nil":            {""},
		"x-arr":            {"a", "2", `["n","true"]`},
		"x-none":           {},
		"x-table":          {`{"k":"v","n":"1","t":{"d":"0.5"}}`},
		"x-number":         {"3"},
		"content-type":     {"text/plain"},
		"content-encoding": {"br"},
	}
	if !reflect.DeepEqual(got, want) {
		for k := range maps.Keys(want) {
			if !slices.Equal(got[k], want[k]) {
				t.Errorf("%s = %q, want %q", k, got[k], want[k])
			}
		}
		t.Fatalf("decoded %d headers, want %d", len(got), len(want))
	}
	if h := decodeHeaders(nil, "", ""); h != nil {
		t.Fatalf("no headers decode to %v, want nil", h)
	}
}

// Headers survive the trip message → AMQP → message, multi-valued ones
// included, with content-type and content-encoding kept.
func FuzzHeaderRoundTrip(f *testing.F) {
	f.Add("x-a", "v1", "v2", "text/plain")
	f.Add("Content-Type", "", "x", "")
	f.Add("ü", "\x00", "multi\nline", "a/b; charset=utf-8")
	f.Fuzz(func(t *testing.T, name, v1, v2, contentType string) {
		name = strings.ToLower(name)
		if name == "" || len(name) > maxName || name == headerContentType || name == headerContentEncoding {
			return
		}
		h := mediation.Headers{name: {v1}, name + "-multi": {v1, v2}}
		if contentType != "" {
			h[headerContentType] = []string{contentType}
		}
		var p amqp.Publishing
		err := encodeHeaders(h, &p)
		if len(contentType) > maxName || len(name)+len("-multi") > maxName {
			if err == nil {
				t.Fatal("a value too long for AMQP was accepted")
			}
			return
		}
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if err := p.Headers.Validate(); err != nil {
			t.Fatalf("amqp091 refuses the table: %v", err)
		}
		got := decodeHeaders(p.Headers, p.ContentType, p.ContentEncoding)
		if !reflect.DeepEqual(got, h) {
			t.Fatalf("round trip: got %q, want %q", got, h)
		}
	})
}
