package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// The decoder turns YAML nodes into Go values strictly: unknown keys and
// mistyped values are errors with the node's position, and it keeps going
// after an error so that one pass reports every problem. goccy's own decoder
// stops at the first one, hence this walker; types with their own YAML or
// text unmarshalers are still handed to them.
//
// Decoding into a value that already holds data overlays it: mappings
// update struct fields and map entries key by key, lists and scalars are
// replaced. That is how an endpoint's configuration goes on top of its
// group's sharedConfiguration.

// maxDepth bounds how deeply the decoder recurses into nested values.
const maxDepth = 100

var (
	rawType          = reflect.TypeFor[Raw]()
	durationType     = reflect.TypeFor[Duration]()
	timeDurationType = reflect.TypeFor[time.Duration]()
	textUnmarshaler  = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshalers = []reflect.Type{
		reflect.TypeFor[yaml.NodeUnmarshaler](),
		reflect.TypeFor[yaml.NodeUnmarshalerContext](),
		reflect.TypeFor[yaml.BytesUnmarshaler](),
		reflect.TypeFor[yaml.BytesUnmarshalerContext](),
		reflect.TypeFor[yaml.InterfaceUnmarshaler](),
		reflect.TypeFor[yaml.InterfaceUnmarshalerContext](),
	}
)

type decoder struct {
	src  *source
	errs *errorList
	// scope names what is decoded in unknown-key messages, such as
	// "kafka configuration"; empty for the gateway file itself.
	scope string
	// nodes, when set, records the node each addressable value was decoded
	// from (keyed by a pointer to the value), for the checks that follow.
	nodes map[any]ast.Node
	// misspelled, when set, records per struct the known key that an
	// unknown key was probably meant to be, so that a check does not add
	// "missing key" to "unknown key ... did you mean".
	misspelled map[any]map[string]bool
	// failed, when set, records the values that could not be decoded at
	// all (a mapping expected, an alias without anchor).
	failed map[any]bool
	// quiet suppresses errors (path lookups after decoding).
	quiet bool
	depth int
	// via is the outermost alias being expanded, and viaDepth the depth
	// it was met at: an alias bomb is reported where it is set off.
	via      ast.Node
	viaDepth int
}

// leave ends a level entered by depth++.
func (d *decoder) leave() {
	d.depth--
	if d.via != nil && d.depth < d.viaDepth {
		d.via = nil
	}
}

func (d *decoder) errorf(n ast.Node, format string, args ...any) {
	if !d.quiet {
		d.errs.add(d.src.errorAt(n, fmt.Sprintf(format, args...)))
	}
}

// fail records that v could not be decoded at all, so that the checks do
// not pile "missing key" problems onto the one already reported.
func (d *decoder) fail(v reflect.Value) {
	if d.failed != nil && v.CanAddr() {
		d.failed[v.Addr().Interface()] = true
	}
}

// visit counts one node against the document's budget and the depth limit.
func (d *decoder) visit(n ast.Node) bool {
	if d.src.visits <= 0 {
		return false
	}
	d.src.visits--
	if d.src.visits == 0 {
		if d.via != nil {
			n = d.via
		}
		d.errorf(n, "document too complex: more than %d values once aliases are expanded", maxVisits)
		return false
	}
	if d.depth >= maxDepth {
		d.errorf(n, "values nested deeper than %d levels", maxDepth)
		return false
	}
	return true
}

// resolve follows anchors, aliases and tags to the node holding the value;
// nil (after reporting) for an alias without anchor. Tags are ignored: a
// value's type comes from the field it is decoded into.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for range 16 {
		switch x := n.(type) {
		case *ast.AnchorNode:
			n = x.Value
		case *ast.TagNode:
			n = x.Value
		case *ast.AliasNode:
			name := ""
			if x.Value != nil && x.Value.GetToken() != nil {
				name = x.Value.GetToken().Value
			}
			target, ok := d.src.anchors[name]
			if !ok {
				d.errorf(x, "unknown alias *%s: no anchor &%s before it", name, name)
				return nil
			}
			if d.via == nil {
				d.via, d.viaDepth = x, d.depth
			}
			n = target
		default:
			return n
		}
	}
	d.errorf(n, "aliases refer to each other in a loop")
	return nil
}

// decode stores node n into v, which must be settable.
func (d *decoder) decode(n ast.Node, v reflect.Value) {
	if !d.visit(n) {
		return
	}
	d.depth++
	defer d.leave()
	orig := n
	if n = d.resolve(n); n == nil {
		d.fail(v)
		return
	}
	if d.nodes != nil && v.CanAddr() {
		d.nodes[v.Addr().Interface()] = n
	}
	if _, null := n.(*ast.NullNode); null {
		return // absent: keep what v holds (its default, or the shared value)
	}
	t := v.Type()
	switch t {
	case rawType:
		v.Set(reflect.ValueOf(Raw{Node: orig, src: d.src}))
		return
	case durationType, timeDurationType:
		d.duration(n, v)
		return
	}
	if v.Kind() != reflect.Pointer && v.CanAddr() && d.unmarshal(n, v.Addr()) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, v.Elem())
	case reflect.Struct:
		d.structure(n, v)
	case reflect.Slice:
		d.list(n, v)
	case reflect.Array:
		d.array(n, v)
	case reflect.Map:
		d.mapping(n, v)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			d.errorf(n, "cannot decode into %s", t)
			return
		}
		if g := d.generic(n); g != nil {
			v.Set(reflect.ValueOf(g))
		}
	case reflect.String:
		s, ok := scalarText(n)
		if !ok {
			d.errorf(n, "want a string, got %s", describe(n))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.errorf(n, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.integer(n, v)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		d.unsigned(n, v)
	case reflect.Float32, reflect.Float64:
		f, ok := floatValue(n)
		if !ok {
			d.errorf(n, "want a number, got %s", describe(n))
			return
		}
		if v.OverflowFloat(f) {
			d.errorf(n, "%v is out of range for %s", f, t)
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, "cannot decode into %s", t)
	}
}

// unmarshal hands n to p's own unmarshaler, if its type has one.
func (d *decoder) unmarshal(n ast.Node, p reflect.Value) bool {
	for _, u := range yamlUnmarshalers {
		if p.Type().Implements(u) {
			if err := yaml.NodeToValue(n, p.Interface(), yaml.DisallowUnknownField()); err != nil {
				d.unmarshalError(n, err)
			}
			return true
		}
	}
	if p.Type().Implements(textUnmarshaler) {
		s, ok := scalarText(n)
		if !ok {
			d.errorf(n, "want a string, got %s", describe(n))
			return true
		}
		if err := p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.errorf(n, "%s", err.Error())
		}
		return true
	}
	return false
}

func (d *decoder) unmarshalError(n ast.Node, err error) {
	var ye yaml.Error
	if errors.As(err, &ye) {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line > 0 && !d.quiet {
			line := tk.Position.Line
			d.errs.add(Error{File: d.src.file, Line: line, Col: d.src.cols.source(line, max(tk.Position.Column, 1)), Msg: ye.GetMessage()})
			return
		}
		d.errorf(n, "%s", ye.GetMessage())
		return
	}
	d.errorf(n, "%s", err.Error())
}

// entry is one key of a mapping, merge keys ("<<") expanded.
type entry struct {
	key   ast.Node
	name  string
	value ast.Node
}

// entries lists the keys of mapping node n in order. Keys written in the
// mapping win over merged ones; among merged mappings the first wins.
func (d *decoder) entries(n ast.Node) ([]entry, bool) {
	var values []*ast.MappingValueNode
	switch x := n.(type) {
	case *ast.MappingNode:
		values = x.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{x}
	default:
		d.errorf(n, "want a mapping, got %s", describe(n))
		return nil, false
	}
	var own, merged []entry
	seen := map[string]bool{}
	for _, mv := range values {
		if mv == nil || mv.Key == nil {
			continue
		}
		if mv.Key.IsMergeKey() {
			merged = append(merged, d.merge(mv.Value)...)
			continue
		}
		name, ok := d.keyName(mv.Key)
		if !ok {
			continue
		}
		seen[name] = true
		own = append(own, entry{key: mv.Key, name: name, value: mv.Value})
	}
	for _, e := range merged {
		if !seen[e.name] {
			seen[e.name] = true
			own = append(own, e)
		}
	}
	return own, true
}

// merge returns the entries a merge key's value brings: a mapping, or a
// list of mappings.
func (d *decoder) merge(v ast.Node) []entry {
	if !d.visit(v) {
		return nil
	}
	d.depth++
	defer d.leave()
	v = d.resolve(v)
	if seq, ok := v.(*ast.SequenceNode); ok {
		var out []entry
		for _, el := range seq.Values {
			el = d.resolve(el)
			if el == nil {
				continue
			}
			if !isMapping(el) {
				d.errorf(el, "merge key << wants mappings, got %s", describe(el))
				continue
			}
			es, _ := d.entries(el)
			out = append(out, es...)
		}
		return out
	}
	if v == nil {
		return nil
	}
	if !isMapping(v) {
		d.errorf(v, "merge key << wants a mapping or a list of mappings, got %s", describe(v))
		return nil
	}
	es, _ := d.entries(v)
	return es
}

func isMapping(n ast.Node) bool {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return true
	}
	return false
}

func (d *decoder) keyName(k ast.Node) (string, bool) {
	if _, complexKey := k.(*ast.MappingKeyNode); complexKey {
		d.errorf(k, "complex keys (\"? key\") are not supported")
		return "", false
	}
	r := d.resolve(k)
	if r == nil {
		return "", false
	}
	s, ok := scalarText(r)
	if !ok {
		d.errorf(k, "want a string key, got %s", describe(r))
		return "", false
	}
	return s, true
}

func (d *decoder) structure(n ast.Node, v reflect.Value) {
	es, ok := d.entries(n)
	if !ok {
		d.fail(v)
		return
	}
	fs := fieldsOf(v.Type())
	for _, e := range es {
		idx, ok := fs.byName[e.name]
		if !ok && strings.HasPrefix(e.name, "x-") && d.scope == "" {
			continue // an extension key, a place for anchors
		}
		if !ok {
			d.unknownKey(e, fs, v)
			continue
		}
		d.decode(e.value, v.FieldByIndex(idx))
	}
}

func (d *decoder) unknownKey(e entry, fs *structFields, v reflect.Value) {
	where := ""
	if d.scope != "" {
		where = " in " + d.scope
	}
	if s := suggest(e.name, fs.names); s != "" {
		if d.misspelled != nil && v.CanAddr() {
			p := v.Addr().Interface()
			if d.misspelled[p] == nil {
				d.misspelled[p] = map[string]bool{}
			}
			d.misspelled[p][s] = true
		}
		d.errorf(e.key, "unknown key %q%s (did you mean %q?)", e.name, where, s)
		return
	}
	if len(fs.names) == 0 {
		d.errorf(e.key, "unknown key %q%s (no keys are accepted here)", e.name, where)
		return
	}
	d.errorf(e.key, "unknown key %q%s (valid keys: %s)", e.name, where, joinNames(fs.names))
}

func (d *decoder) list(n ast.Node, v reflect.Value) {
	t := v.Type()
	if t.Elem().Kind() == reflect.Uint8 {
		if s, ok := n.(*ast.StringNode); ok { // []byte from a string
			v.SetBytes([]byte(s.Value))
			return
		}
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.errorf(n, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(t, len(seq.Values), len(seq.Values))
	for i, el := range seq.Values {
		d.decode(el, s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) array(n ast.Node, v reflect.Value) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.errorf(n, "want a list, got %s", describe(n))
		return
	}
	if len(seq.Values) != v.Len() {
		d.errorf(n, "want a list of %d, got %d", v.Len(), len(seq.Values))
		return
	}
	for i, el := range seq.Values {
		d.decode(el, v.Index(i))
	}
}

func (d *decoder) mapping(n ast.Node, v reflect.Value) {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.errorf(n, "cannot decode into %s: keys must be strings", t)
		return
	}
	es, ok := d.entries(n)
	if !ok {
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(t, len(es)))
	}
	for _, e := range es {
		key := reflect.ValueOf(e.name).Convert(t.Key())
		ev := reflect.New(t.Elem()).Elem()
		if old := v.MapIndex(key); old.IsValid() {
			ev.Set(old) // overlay onto the shared value
		}
		d.decode(e.value, ev)
		v.SetMapIndex(key, ev)
	}
}

// generic decodes n into plain Go values: map[string]any, []any, string,
// int64 (uint64 past MaxInt64), float64, bool or nil.
func (d *decoder) generic(n ast.Node) any {
	if !d.visit(n) {
		return nil
	}
	d.depth++
	defer d.leave()
	n = d.resolve(n)
	switch x := n.(type) {
	case nil, *ast.NullNode:
		return nil
	case *ast.MappingNode, *ast.MappingValueNode:
		es, _ := d.entries(x)
		m := make(map[string]any, len(es))
		for _, e := range es {
			m[e.name] = d.generic(e.value)
		}
		return m
	case *ast.SequenceNode:
		s := make([]any, len(x.Values))
		for i, el := range x.Values {
			s[i] = d.generic(el)
		}
		return s
	case *ast.StringNode:
		return x.Value
	case *ast.LiteralNode:
		s, _ := scalarText(x)
		return s
	case *ast.IntegerNode:
		if u, ok := x.Value.(uint64); ok && u <= math.MaxInt64 {
			return int64(u) // goccy reads positive numbers as uint64
		}
		return x.Value
	case ast.ScalarNode:
		return x.GetValue()
	}
	d.errorf(n, "unsupported YAML value %s", describe(n))
	return nil
}
