package expr

import (
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// firstValues is the CEL map(string, string) view of a multi-valued map
// (message headers, request headers, query parameters): each name gives its
// first value. Lookups go straight to the underlying map, so reading one
// header allocates nothing; only iterating or comparing whole maps builds a
// map[string]string.
type firstValues struct {
	m map[string][]string
	// canon normalises a looked-up name to how the map stores it (lower case
	// for message headers, canonical MIME form for http.Header); nil for
	// exact, case-sensitive lookups (query parameters).
	canon func(string) string
	// display renders a stored name when keys are listed; nil keeps it.
	display func(string) string
}

func (f *firstValues) lookup(k string) (string, bool) {
	if f.canon != nil {
		k = f.canon(k)
	}
	if v := f.m[k]; len(v) > 0 {
		return v[0], true
	}
	return "", false
}

// FindStringKey is the interpreter's fast path for m['name'] and m.name.
// It returns a CEL string so that the value is boxed once.
func (f *firstValues) FindStringKey(k string) (any, bool) {
	v, ok := f.lookup(k)
	if !ok {
		return nil, false
	}
	return types.String(v), true
}

// Find implements traits.Mapper.
func (f *firstValues) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(key), false
	}
	v, found := f.lookup(string(k))
	if !found {
		return nil, false
	}
	return types.String(v), true
}

// Get implements traits.Indexer.
func (f *firstValues) Get(key ref.Val) ref.Val {
	v, found := f.Find(key)
	if found {
		return v
	}
	if v != nil {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

// Contains implements traits.Container.
func (f *firstValues) Contains(key ref.Val) ref.Val {
	_, found := f.Find(key)
	return types.Bool(found)
}

// Size implements traits.Sizer.
func (f *firstValues) Size() ref.Val {
	n := 0
	for _, v := range f.m {
		if len(v) > 0 {
			n++
		}
	}
	return types.Int(n)
}

// Iterator implements traits.Iterable.
func (f *firstValues) Iterator() traits.Iterator { return f.mapper().Iterator() }

// ConvertToNative implements ref.Val.
func (f *firstValues) ConvertToNative(t reflect.Type) (any, error) {
	return f.mapper().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (f *firstValues) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return types.MapType
	}
	return f.mapper().ConvertToType(t)
}

// Equal implements ref.Val.
func (f *firstValues) Equal(other ref.Val) ref.Val { return f.mapper().Equal(other) }

// Type implements ref.Val.
func (f *firstValues) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (f *firstValues) Value() any { return f.native() }

func (f *firstValues) native() map[string]string {
	out := make(map[string]string, len(f.m))
	for k, v := range f.m {
		if len(v) == 0 {
			continue
		}
		if f.display != nil {
			k = f.display(k)
		}
		out[k] = v[0]
	}
	return out
}

func (f *firstValues) mapper() traits.Mapper {
	return types.NewStringStringMap(types.DefaultTypeAdapter, f.native())
}

// Interface guard.
var _ traits.Mapper = (*firstValues)(nil)
