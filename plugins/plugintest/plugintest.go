// Package plugintest helps test a plugin's configuration the way the gateway
// loads it: Decode goes through the real configuration decoder (strict,
// file:line:col errors), and FieldsOf lists the fields a Validate error
// names. Connector behaviour itself is tested with endpoints/conformance.
package plugintest

import (
	"errors"
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
