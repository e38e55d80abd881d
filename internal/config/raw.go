package config

import (
	"encoding/json"
	"errors"
	"reflect"

	"github.com/goccy/go-yaml/ast"
)

// Raw is a configuration block (a plugin's `configuration`, a group's
// `sharedConfiguration`) kept undecoded until the loader knows which plugin
// type it belongs to. The loader then decodes it strictly into the plugin's
// own type and stores the result next to it, in Decoded.
type Raw struct {
	// Node is the block's YAML node, positions included; nil when the key
	// is absent or null.
	Node ast.Node

	// src resolves aliases in Node and maps its positions to the file.
	src *source
}

// IsZero reports whether the block is absent (or null).
func (r Raw) IsZero() bool { return r.Node == nil }

// Decode decodes the block strictly into v, a non-nil pointer, overlaying
// what v holds: unknown keys and mistyped values are reported together as
// *Errors with file:line:col. Plugin configurations are decoded by Load;
// this is for blocks no registry describes, such as a plan's security
// configuration.
func (r Raw) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("config: Raw.Decode needs a non-nil pointer")
	}
	if r.Node == nil {
		return nil
	}
	var errs errorList
	d := decoder{src: r.detachedSource(), errs: &errs}
	d.decode(r.Node, rv.Elem())
	return errs.err()
}

// MarshalJSON renders the block as plain JSON (aliases expanded), for the
// management API's GET /v1/apis.
func (r Raw) MarshalJSON() ([]byte, error) {
	return json.Marshal(r.Value())
}

// MarshalYAML renders the block for YAML encoders; JSON is valid YAML.
func (r Raw) MarshalYAML() ([]byte, error) { return r.MarshalJSON() }

// Value returns the block as plain Go values: map[string]any, []any,
// string, int64 (uint64 past MaxInt64), float64, bool or nil.
func (r Raw) Value() any {
	if r.Node == nil {
		return nil
	}
	var errs errorList
	d := decoder{src: r.detachedSource(), errs: &errs, quiet: true}
	return d.generic(r.Node)
}

// detachedSource is a copy of the block's source with a fresh budget, so
// that decoding after Load neither shares nor races on the loader's.
func (r Raw) detachedSource() *source {
	s := source{visits: maxVisits}
	if r.src != nil {
		s = *r.src
		s.visits = maxVisits
	}
	return &s
}
