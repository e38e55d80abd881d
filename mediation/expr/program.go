package expr

import (
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Program is a compiled expression. It is immutable and safe for concurrent
// use; compile once (at configuration time) and evaluate per message.
type Program struct {
	src string
	prg cel.Program
}

// String returns the source of the expression.
func (p *Program) String() string { return p.src }

// EvalBool evaluates a condition. An expression that fails (a missing key,
// content that is not JSON, the cost limit) or yields something other than a
// bool returns an error; callers decide what failing means (a filter drops
// the message).
func (p *Program) EvalBool(vars Vars) (bool, error) {
	a := getActivation(&vars)
	out, _, err := p.prg.Eval(a)
	var b types.Bool
	if err == nil {
		var ok bool
		if b, ok = out.(types.Bool); !ok {
			err = fmt.Errorf("expression yields %s, not a bool", typeName(out))
		}
	}
	a.release()
	if err != nil {
		return false, evalError(err)
	}
	return bool(b), nil
}

// EvalString evaluates a template expression. Strings come out as they are,
// bytes as their raw text, null as "", numbers, booleans, timestamps and
// durations as CEL's string() renders them; lists and maps are an error.
func (p *Program) EvalString(vars Vars) (string, error) {
	a := getActivation(&vars)
	out, _, err := p.prg.Eval(a)
	var s string
	if err == nil {
		s, err = toString(out)
	}
	a.release()
	if err != nil {
		return "", evalError(err)
	}
	return s, nil
}

func toString(v ref.Val) (string, error) {
	switch x := v.(type) {
	case types.String:
		return string(x), nil
	case types.Bytes:
		return string(x), nil
	case types.Null:
		return "", nil
	case types.Bool, types.Int, types.Uint, types.Double, types.Timestamp, types.Duration:
		if s, ok := x.ConvertToType(types.StringType).(types.String); ok {
			return string(s), nil
		}
	}
	return "", fmt.Errorf("expression yields %s, not a string", typeName(v))
}

func typeName(v ref.Val) string {
	if v == nil {
		return "nothing"
	}
	return v.Type().TypeName()
}

// evalError keeps CEL's message, which names the missing key or failing
// function, and says where it came from.
func evalError(err error) error { return fmt.Errorf("evaluating expression: %w", err) }
