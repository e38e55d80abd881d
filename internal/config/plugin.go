package config

import (
	"errors"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/sluicegw/sluice/plugins"
)

// pluginTarget says where a plugin configuration sits, for messages.
type pluginTarget struct {
	what  string   // `endpoint type "kafka"`
	scope string   // `kafka configuration`, for unknown keys
	owner ast.Node // the entrypoint/endpoint/step, for problems with no better position
}

// pluginConfig decodes blocks, in order, into a fresh value from newConfig
// (later blocks overlay earlier ones: sharedConfiguration, then the
// endpoint's configuration), then runs its Validate when it has one, the
// decode → validate steps of the plugin lifecycle. It returns the value
// (nil when the plugin takes no configuration) and whether it is valid.
func (l *loader) pluginConfig(t pluginTarget, newConfig func() any, blocks ...Raw) (any, bool) {
	if newConfig == nil {
		for _, b := range blocks {
			if !b.IsZero() {
				l.errorf(b.Node, "%s takes no configuration", t.what)
				return nil, false
			}
		}
		return nil, true
	}
	v := newConfig()
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		// A plugin bug, reported rather than panicking on every load.
		l.errorf(t.owner, "%s: its Config returned %T, not a pointer to a configuration value", t.what, v)
		return nil, false
	}
	before := len(l.errs.list)
	for _, b := range blocks {
		if b.Node != nil {
			l.decoder(t.scope, false).decode(b.Node, rv.Elem())
		}
	}
	if len(l.errs.list) > before {
		// Validate would mostly repeat these (a misspelled key is also a
		// missing one), so it runs only on a cleanly decoded value.
		return v, false
	}
	val, ok := v.(plugins.Validator)
	if !ok {
		return v, true
	}
	err := val.Validate()
	if err == nil {
		return v, true
	}
	for _, e := range flatten(err) {
		var fe *plugins.FieldError
		if errors.As(e, &fe) && fe.Field != "" {
			l.errorf(l.fieldNode(fe.Field, t.owner, blocks), "%s", fe.Error())
			continue
		}
		l.errorf(configNode(t.owner, blocks), "%s", e.Error())
	}
	return v, false
}

// flatten splits joined errors (errors.Join) into their parts.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			if e != nil {
				out = append(out, flatten(e)...)
			}
		}
		return out
	}
	return []error{err}
}

// configNode is where a problem with a whole configuration goes: the last
// block written, else the owner.
func configNode(owner ast.Node, blocks []Raw) ast.Node {
	for i := len(blocks) - 1; i >= 0; i-- {
		if blocks[i].Node != nil {
			return blocks[i].Node
		}
	}
	return owner
}

// fieldNode finds the node of a FieldError's dotted camelCase path
// ("consumer.topics", "servers[1]" or "servers.1") in the blocks, the
// later block first since it overrides the earlier. When no block holds
// the whole path it returns the deepest part found, so that a missing
// "producer.topic" points at "producer:".
func (l *loader) fieldNode(field string, owner ast.Node, blocks []Raw) ast.Node {
	segs := splitField(field)
	d := &decoder{src: l.src, errs: &errorList{}, quiet: true}
	var best ast.Node
	bestDepth := 0
	for i := len(blocks) - 1; i >= 0; i-- {
		if blocks[i].Node == nil {
			continue
		}
		n, depth := d.lookup(blocks[i].Node, segs)
		if depth == len(segs) {
			return n
		}
		if depth > bestDepth {
			best, bestDepth = n, depth
		}
	}
	if best != nil {
		return best
	}
	return configNode(owner, blocks)
}

func splitField(field string) []string {
	var segs []string
	for part := range strings.SplitSeq(field, ".") {
		for {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				segs = append(segs, part[:i])
			}
			j := strings.IndexByte(part[i:], ']')
			if j < 0 {
				break
			}
			segs = append(segs, part[i+1:i+j])
			part = part[i+j+1:]
		}
		if part != "" {
			segs = append(segs, part)
		}
	}
	return segs
}

// lookup follows segs from n as far as the document goes, returning the
// last node reached and how many segments it matched.
func (d *decoder) lookup(n ast.Node, segs []string) (ast.Node, int) {
	for i, s := range segs {
		r := d.resolve(n)
		if seq, ok := r.(*ast.SequenceNode); ok {
			idx, err := strconv.Atoi(s)
			if err != nil || idx < 0 || idx >= len(seq.Values) {
				return n, i
			}
			n = seq.Values[idx]
			continue
		}
		if !isMapping(r) {
			return n, i
		}
		es, _ := d.entries(r)
		found := false
		for _, e := range es {
			if e.name == s {
				n, found = e.value, true
				break
			}
		}
		if !found {
			return n, i
		}
	}
	return n, len(segs)
}
