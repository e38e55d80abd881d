// Package plugintest helps test a plugin's configuration the way the gateway
// loads it: Decode goes through the real configuration decoder (strict,
// file:line:col errors), and FieldsOf lists the fields a Validate error
// names. Connector behaviour itself is tested with endpoints/conformance.
package plugintest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/plugins"
)

// Decode decodes yamlText over defaults() exactly as the gateway decodes a
// plugin's configuration block, without validating it. C is the pointer
// type the plugin's Config function returns.
func Decode[C any](t testing.TB, defaults func() C, yamlText string) (C, error) {
	t.Helper()
	cfg := defaults()
	return cfg, config.DecodeBlock(t.Name()+".yaml", []byte(yamlText), cfg)
}

// FieldsOf lists, in order, the Field of every *plugins.FieldError in err,
// looking through errors.Join.
func FieldsOf(err error) []string {
	var fields []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *plugins.FieldError
		if errors.As(err, &fe) {
			fields = append(fields, fe.Field)
		}
	}
	walk(err)
	return fields
}

// CheckDecode asserts one decoding case of a table test: with wantErr set,
// decoding yamlText over defaults() must fail with an error that mentions
// it; otherwise it must decode, pass check (which names what it found
// wrong, "" when right) and pass Validate.
func CheckDecode[C plugins.Validator](t *testing.T, defaults func() C, yamlText, wantErr string, check func(C) string) {
	t.Helper()
	cfg, err := Decode(t, defaults, yamlText)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("decode error = %v, want one mentioning %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if bad := check(cfg); bad != "" {
		t.Fatalf("decoded %s wrong: %+v", bad, cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

// CheckValidate asserts one validation case of a table test: yamlText
// decodes over defaults(), and Validate names exactly fields, in order (none:
// valid).
func CheckValidate[C plugins.Validator](t *testing.T, defaults func() C, yamlText string, fields []string) {
	t.Helper()
	cfg, err := Decode(t, defaults, yamlText)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	err = cfg.Validate()
	if got := FieldsOf(err); !slices.Equal(got, fields) {
		t.Fatalf("Validate() = %v\nfields %q, want %q", err, got, fields)
	}
}
