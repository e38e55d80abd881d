package config

import (
	"fmt"
	"math"
	"reflect"

	"github.com/goccy/go-yaml/ast"
)

// Scalars: numbers, durations and text, strictly typed. A string field
// takes any scalar as written (port: 8080 is "8080"), since YAML's typing of
// unquoted text surprises people; numbers and booleans take only their own
// kind, so that "yes" or "1MiB" is an error rather than a guess.

func (d *decoder) duration(n ast.Node, v reflect.Value) {
	s, ok := scalarText(n)
	if !ok {
		d.errorf(n, "want a duration such as \"5s\" or \"250ms\", got %s", describe(n))
		return
	}
	dur, err := parseDuration(s)
	if err != nil {
		d.errorf(n, "%s", err.Error())
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) integer(n ast.Node, v reflect.Value) {
	in, ok := n.(*ast.IntegerNode)
	if !ok {
		d.errorf(n, "want an integer, got %s", describe(n))
		return
	}
	var i int64
	switch x := in.Value.(type) {
	case int64:
		i = x
	case uint64:
		if x > math.MaxInt64 {
			d.errorf(n, "%d is out of range for %s", x, v.Type())
			return
		}
		i = int64(x)
	default:
		d.errorf(n, "want an integer, got %s", describe(n))
		return
	}
	if v.OverflowInt(i) {
		d.errorf(n, "%d is out of range for %s", i, v.Type())
		return
	}
	v.SetInt(i)
}

func (d *decoder) unsigned(n ast.Node, v reflect.Value) {
	in, ok := n.(*ast.IntegerNode)
	if !ok {
		d.errorf(n, "want a non-negative integer, got %s", describe(n))
		return
	}
	var u uint64
	switch x := in.Value.(type) {
	case int64:
		if x < 0 {
			d.errorf(n, "want a non-negative integer, got %d", x)
			return
		}
		u = uint64(x)
	case uint64:
		u = x
	default:
		d.errorf(n, "want a non-negative integer, got %s", describe(n))
		return
	}
	if v.OverflowUint(u) {
		d.errorf(n, "%d is out of range for %s", u, v.Type())
		return
	}
	v.SetUint(u)
}

func floatValue(n ast.Node) (float64, bool) {
	switch x := n.(type) {
	case *ast.FloatNode:
		return x.Value, true
	case *ast.IntegerNode:
		switch i := x.Value.(type) {
		case int64:
			return float64(i), true
		case uint64:
			return float64(i), true
		}
	case *ast.InfinityNode:
		return x.Value, true
	case *ast.NanNode:
		return math.NaN(), true
	}
	return 0, false
}

// scalarText is the text of a scalar as a string field receives it: a
// string's value, or a number's or boolean's text as written ("0x1f").
func scalarText(n ast.Node) (string, bool) {
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value == nil {
			return "", true
		}
		return x.Value.Value, true
	case *ast.NullNode:
		return "", true
	case ast.ScalarNode:
		if tk := x.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n ast.Node) string {
	switch x := n.(type) {
	case nil, *ast.NullNode:
		return "nothing"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return fmt.Sprintf("the string %q", truncate(x.Value))
	case *ast.LiteralNode:
		return "a block of text"
	case *ast.BoolNode:
		return fmt.Sprintf("%t", x.Value)
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "the number " + x.GetToken().Value
	}
	return "a " + n.Type().String() + " value"
}

func truncate(s string) string {
	const limit = 40
	if r := []rune(s); len(r) > limit {
		return string(r[:limit]) + "…"
	}
	return s
}
