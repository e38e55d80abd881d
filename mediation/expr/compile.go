package expr

import (
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
)

// Compile parses and type-checks src. A misspelt variable or field, a
// wrong-typed operator or a syntax error is reported here, as a
// *CompileError that says where.
func Compile(src string) (*Program, error) {
	p, _, err := compile(src)
	return p, err
}

// CompileCondition is Compile for expressions that must yield a bool (flow
// conditions, message filters). An expression whose type is only known at
// run time (message.json.paid) is accepted and checked when evaluated.
func CompileCondition(src string) (*Program, error) {
	p, ast, err := compile(src)
	if err != nil {
		return nil, err
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, newIssue(src, 1, 1, fmt.Sprintf("a condition must yield a bool, this expression yields %s", t))
	}
	return p, nil
}

// compileMu serializes type-checking: cel-go v0.33's checker fills a shared
// catalog lazily on the first undeclared reference, which races when two
// configurations compile at once. Compiling is load-time work; evaluation
// stays concurrent.
var compileMu sync.Mutex

func compile(src string) (*Program, *cel.Ast, error) {
	e, err := env()
	if err != nil {
		return nil, nil, fmt.Errorf("expression environment: %w", err)
	}
	compileMu.Lock()
	ast, iss := e.Compile(src)
	compileMu.Unlock()
	if iss.Err() != nil {
		return nil, nil, newCompileError(src, iss)
	}
	native := ast.NativeRep()
	nav := celast.NavigateAST(native)
	// The variables are read-only views; building one (sluice.Message{})
	// would only fail at run time, so say it now.
	if found := celast.MatchDescendants(nav, celast.KindMatcher(celast.StructKind)); len(found) > 0 {
		loc := native.SourceInfo().GetStartLocation(found[0].ID())
		return nil, nil, newIssue(src, max(loc.Line(), 1), max(loc.Column()+1, 1),
			fmt.Sprintf("%s values cannot be created in an expression", found[0].AsStruct().TypeName()))
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	// Cost tracking costs time on every evaluation; only comprehensions can
	// make an evaluation run long (see CostLimit), so only they pay for it.
	if len(celast.MatchDescendants(nav, celast.KindMatcher(celast.ComprehensionKind))) > 0 {
		opts = append(opts, cel.CostLimit(CostLimit))
	}
	prg, err := e.Program(ast, opts...)
	if err != nil { // a bad regular expression literal, for one
		return nil, nil, newIssue(src, 1, 1, err.Error())
	}
	return &Program{src: src, prg: prg}, ast, nil
}

// Issue is one problem CEL found in an expression.
type Issue struct {
	// Line and Column are 1-based positions in the expression's source.
	Line, Column int
	Message      string
}

// CompileError lists what is wrong with an expression.
type CompileError struct {
	Issues    []Issue
	multiline bool
}

func newCompileError(src string, iss *cel.Issues) *CompileError {
	ce := &CompileError{multiline: strings.Contains(src, "\n")}
	for _, e := range iss.Errors() {
		// CEL columns are 0-based; errors about the whole expression (its
		// size, an empty one) have no location.
		ce.Issues = append(ce.Issues, Issue{
			Line:    max(e.Location.Line(), 1),
			Column:  max(e.Location.Column()+1, 1),
			Message: e.Message,
		})
	}
	if len(ce.Issues) == 0 { // never seen, but an error must say something
		ce.Issues = append(ce.Issues, Issue{Line: 1, Column: 1, Message: iss.String()})
	}
	return ce
}

func newIssue(src string, line, col int, msg string) *CompileError {
	return &CompileError{multiline: strings.Contains(src, "\n"), Issues: []Issue{{Line: line, Column: col, Message: msg}}}
}

// Error renders every issue as "column 9: message", with the line when the
// expression has several lines.
func (e *CompileError) Error() string {
	var b strings.Builder
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		if e.multiline {
			fmt.Fprintf(&b, "line %d, ", is.Line)
		}
		fmt.Fprintf(&b, "column %d: %s", is.Column, is.Message)
	}
	return b.String()
}
