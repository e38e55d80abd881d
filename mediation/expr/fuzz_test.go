package expr

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

// FuzzCompileEval compiles any expression and evaluates what compiles
// against any content: compile errors carry positions, and evaluation ends
// (the cost limit) without a panic whatever the pair.
func FuzzCompileEval(f *testing.F) {
	r := httptest.NewRequest("GET", "/orders/eu?region=eu", nil)
	r.Header.Set("X-Api-Key", "k")
	f.Fuzz(func(t *testing.T, src string, content []byte) {
		p, err := Compile(src)
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) || len(ce.Issues) == 0 {
				t.Fatalf("Compile error %#v is not a *CompileError", err)
			}
			for _, is := range ce.Issues {
				if is.Line < 1 || is.Column < 1 || is.Message == "" {
					t.Fatalf("issue without position or message: %+v", is)
				}
			}
			return
		}
		m := mediation.NewMessage(content)
		m.Headers = mediation.Headers{"x-type": {"order"}}
		m.Metadata = map[string]string{"topic": "orders"}
		vars := Vars{Message: m, Request: r, Attributes: map[string]any{"n": 1}}
		_, _ = p.EvalBool(vars)
		_, _ = p.EvalString(vars)
		if string(m.Content) != string(content) {
			t.Fatal("evaluation changed the message content")
		}
	})
}
