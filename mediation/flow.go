package mediation

import (
	"net/http"
	"slices"
	"strings"
)

// Flow is a set of selectors and the policy steps to run, per phase, on the
// exchanges and messages they select. Flows run in configuration order.
type Flow struct {
	Name      string
	Selectors []Selector
	Request   []Policy
	Response  []Policy
	Publish   []Policy
	Subscribe []Policy
}

// Selector decides whether a flow applies to an exchange. op is the message
// operation for the publish and subscribe phases, 0 for request/response.
type Selector interface {
	Matches(x *Exchange, r *http.Request, op Operation) bool
}

func (f *Flow) matches(x *Exchange, r *http.Request, op Operation) bool {
	for _, s := range f.Selectors {
		if !s.Matches(x, r, op) {
			return false
		}
	}
	return true
}

// HTTPSelector matches a path prefix relative to the listener path ("" or
// "/" for all) and, when set, a set of methods.
type HTTPSelector struct {
	Path    string
	Methods []string
}

func (s HTTPSelector) Matches(x *Exchange, r *http.Request, _ Operation) bool {
	if r == nil {
		return false
	}
	if len(s.Methods) > 0 && !slices.Contains(s.Methods, r.Method) {
		return false
	}
	p := strings.TrimSuffix(s.Path, "/")
	rel := x.RelativePath
	return p == "" || rel == p || strings.HasPrefix(rel, p+"/")
}

// ChannelSelector matches message operations and, when set, entrypoint types.
// Operations 0 means both.
type ChannelSelector struct {
	Operations  Operation
	Entrypoints []string
}

func (s ChannelSelector) Matches(x *Exchange, _ *http.Request, op Operation) bool {
	if len(s.Entrypoints) > 0 && !slices.Contains(s.Entrypoints, x.EntrypointType) {
		return false
	}
	return op == 0 || s.Operations == 0 || s.Operations&op != 0
}
