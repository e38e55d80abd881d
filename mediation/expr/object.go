package expr

import (
	"fmt"
	"reflect"
	"slices"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// object is a CEL struct type whose values are Go views (*T) of the gateway's
// own structures. Declaring message, request, ... as struct types rather than
// maps lets the checker reject a misspelt field at compile time, and lets
// each field be computed only when an expression reads it (see fieldDef.get):
// that is how message.json is parsed lazily.
type object[T any] struct {
	celType *types.Type
	names   []string
	fields  map[string]*types.FieldType
	gets    map[string]func(*T) (any, error)
}

// fieldDef declares one field of an object.
type fieldDef[T any] struct {
	name string
	typ  *types.Type
	// get computes the field's value: a Go value the default adapter knows,
	// or a ref.Val.
	get func(*T) (any, error)
	// isSet answers has(obj.field); nil means the field is always set.
	isSet func(*T) bool
}

func newObject[T any](name string, defs ...fieldDef[T]) *object[T] {
	o := &object[T]{
		celType: types.NewObjectType(name, traits.IndexerType|traits.FieldTesterType),
		fields:  make(map[string]*types.FieldType, len(defs)),
		gets:    make(map[string]func(*T) (any, error), len(defs)),
	}
	for _, d := range defs {
		o.names = append(o.names, d.name)
		o.gets[d.name] = d.get
		o.fields[d.name] = &types.FieldType{
			Type:    d.typ,
			IsSet:   o.tester(d),
			GetFrom: o.getter(d),
		}
	}
	slices.Sort(o.names)
	return o
}

func (o *object[T]) getter(d fieldDef[T]) ref.FieldGetter {
	return func(target any) (any, error) {
		v, ok := target.(*T)
		if !ok {
			return nil, fmt.Errorf("%s.%s: unexpected value %T", o.TypeName(), d.name, target)
		}
		return d.get(v)
	}
}

func (o *object[T]) tester(d fieldDef[T]) ref.FieldTester {
	return func(target any) bool {
		v, ok := target.(*T)
		if !ok {
			return false
		}
		return d.isSet == nil || d.isSet(v)
	}
}

// HasTrait implements ref.Type.
func (o *object[T]) HasTrait(trait int) bool { return o.celType.HasTrait(trait) }

// TypeName implements ref.Type.
func (o *object[T]) TypeName() string { return o.celType.TypeName() }

// ReflectType implements types.StructTypeDescriptor: views are never built
// from arbitrary Go values, so there is none.
func (o *object[T]) ReflectType() reflect.Type { return nil }

// FieldNames implements types.StructTypeDescriptor.
func (o *object[T]) FieldNames() []string { return o.names }

// FindFieldType implements types.StructTypeDescriptor.
func (o *object[T]) FindFieldType(name string) (*types.FieldType, bool) {
	ft, ok := o.fields[name]
	return ft, ok
}

// NewValue implements types.StructTypeDescriptor. Expressions read the
// gateway's values; they do not construct them.
func (o *object[T]) NewValue(types.Adapter, map[string]ref.Val) ref.Val {
	return types.NewErr("%s values cannot be created in an expression", o.TypeName())
}

// Adapt implements types.StructTypeDescriptor.
func (o *object[T]) Adapt(_ types.Adapter, v any) ref.Val {
	return types.NewErr("cannot adapt %T to %s", v, o.TypeName())
}

// value is the ref.Val of a view. The activation owns one per variable, so
// resolving a variable allocates nothing.
type value[T any] struct {
	obj *object[T]
	v   *T
}

// ConvertToNative implements ref.Val.
func (x *value[T]) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("%s cannot be converted to %v", x.obj.TypeName(), t)
}

// ConvertToType implements ref.Val.
func (x *value[T]) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return x.obj.celType
	}
	return types.NewErr("type conversion error from '%s' to '%s'", x.obj.TypeName(), t.TypeName())
}

// Equal implements ref.Val: a view equals only itself.
func (x *value[T]) Equal(other ref.Val) ref.Val {
	o, ok := other.(*value[T])
	return types.Bool(ok && o.v == x.v)
}

// Type implements ref.Val.
func (x *value[T]) Type() ref.Type { return x.obj.celType }

// Value implements ref.Val. Field getters receive it.
func (x *value[T]) Value() any { return x.v }

// Get implements traits.Indexer, for field access the planner did not
// resolve statically.
func (x *value[T]) Get(field ref.Val) ref.Val {
	name, ok := field.(types.String)
	if !ok {
		return types.ValOrErr(field, "no such overload")
	}
	get, ok := x.obj.gets[string(name)]
	if !ok {
		return types.NewErr("no such field '%s' on %s", name, x.obj.TypeName())
	}
	v, err := get(x.v)
	if err != nil {
		return types.WrapErr(err)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// IsSet implements traits.FieldTester.
func (x *value[T]) IsSet(field ref.Val) ref.Val {
	name, ok := field.(types.String)
	if !ok {
		return types.ValOrErr(field, "no such overload")
	}
	ft, ok := x.obj.fields[string(name)]
	if !ok {
		return types.NewErr("no such field '%s' on %s", name, x.obj.TypeName())
	}
	return types.Bool(ft.IsSet(x.v))
}

// Interface guards.
var (
	_ ref.Type                   = (*object[int])(nil)
	_ types.StructTypeDescriptor = (*object[int])(nil)
	_ ref.Val                    = (*value[int])(nil)
	_ traits.Indexer             = (*value[int])(nil)
	_ traits.FieldTester         = (*value[int])(nil)
)
