package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/sluicegw/sluice/mediation"
)

// Flows are checked whether enabled or not: disabling a flow is a switch
// to flip back, and it should still be valid when flipped.
func (l *loader) checkFlows(a *API) {
	for i := range a.Flows {
		f := &a.Flows[i]
		for j := range f.Selectors {
			l.checkSelector(&f.Selectors[j])
		}
		for _, ph := range []struct {
			phase mediation.Phase
			steps []Step
		}{
			{mediation.PhaseRequest, f.Request},
			{mediation.PhaseResponse, f.Response},
			{mediation.PhasePublish, f.Publish},
			{mediation.PhaseSubscribe, f.Subscribe},
		} {
			for k := range ph.steps {
				l.checkStep(a, ph.phase, &ph.steps[k])
			}
		}
	}
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// checkSelector checks a selector's type and that it only sets the fields
// its type reads. HTTP methods are normalised to upper case.
func (l *loader) checkSelector(s *Selector) {
	fields := []struct {
		name string
		ptr  any
		set  bool
		only string
	}{
		{"path", &s.Path, s.Path != "", "http"},
		{"methods", &s.Methods, len(s.Methods) > 0, "http"},
		{"operations", &s.Operations, len(s.Operations) > 0, "channel"},
		{"entrypoints", &s.Entrypoints, len(s.Entrypoints) > 0, "channel"},
		{"condition", &s.Condition, s.Condition != "", "condition"},
	}
	switch s.Type {
	case "":
		l.missing(s, "type", "selector needs a type (http, channel or condition)")
		return
	case "http", "channel", "condition":
	default:
		l.errorf(l.node(&s.Type), "unknown selector type %q (want http, channel or condition)", s.Type)
		return
	}
	for _, f := range fields {
		if f.set && f.only != s.Type {
			l.errorf(l.node(f.ptr, s), "%s applies to %s selectors, not %s", f.name, f.only, s.Type)
		}
	}
	switch s.Type {
	case "http":
		if s.Path != "" && !strings.HasPrefix(s.Path, "/") {
			l.errorf(l.node(&s.Path), "path %q must start with '/' (it is relative to the listener path)", s.Path)
		}
		for i, m := range s.Methods {
			up := strings.ToUpper(m)
			if !slices.Contains(httpMethods, up) {
				l.errorf(l.node(&s.Methods[i]), "unknown HTTP method %q (want one of %s)", m, strings.Join(httpMethods, ", "))
				continue
			}
			s.Methods[i] = up
		}
	case "channel":
		for i, op := range s.Operations {
			if op != "publish" && op != "subscribe" {
				l.errorf(l.node(&s.Operations[i]), "unknown operation %q (want publish or subscribe)", op)
			}
		}
		for i, t := range s.Entrypoints {
			if _, ok := l.reg.Entrypoint(t); !ok {
				l.unknownType(l.node(&s.Entrypoints[i]), "entrypoint type", t, "entrypoint")
			}
		}
	case "condition":
		if s.Condition == "" {
			l.missing(s, "condition", "condition selector needs a condition (a CEL expression over request)")
		}
	}
}

func (l *loader) checkStep(a *API, phase mediation.Phase, st *Step) {
	if st.Policy == "" {
		l.missing(st, "policy", "step needs a policy (registered: %s)", l.names("policy"))
		return
	}
	n := l.node(&st.Policy, st)
	p, ok := l.reg.Policy(st.Policy)
	if !ok {
		l.unknownType(n, "policy", st.Policy, "policy")
		return
	}
	switch {
	case a.Type == "proxy" && (phase == mediation.PhasePublish || phase == mediation.PhaseSubscribe):
		l.errorf(n, "proxy apis have no %s phase (they have request and response)", phase)
	case len(p.Phases) > 0 && !slices.Contains(p.Phases, phase):
		phases := make([]string, len(p.Phases))
		for i, ph := range p.Phases {
			phases[i] = string(ph)
		}
		l.errorf(n, "policy %q cannot run in the %s phase (it runs in %s)", st.Policy, phase, strings.Join(phases, ", "))
	}
	st.Decoded, _ = l.pluginConfig(pluginTarget{
		what:  fmt.Sprintf("policy %q", st.Policy),
		scope: st.Policy + " configuration",
		owner: l.node(st),
	}, p.Config, st.Configuration)
}

func (l *loader) checkPlans(a *API) {
	names := map[string]ast.Node{}
	for i := range a.Plans {
		p := &a.Plans[i]
		if p.Name == "" {
			l.missing(p, "name", "plan needs a name")
		} else if first, dup := names[p.Name]; dup {
			l.errorf(l.node(&p.Name), "duplicate plan name %q (first at line %d)", p.Name, l.line(first))
		} else {
			names[p.Name] = l.node(&p.Name)
		}
		switch p.Mode {
		case "standard":
			switch {
			case p.Security == nil:
				l.missing(p, "security", "plan needs a security type (security: {type: keyless | api-key | jwt | mtls})")
			case p.Security.Type == "":
				l.missing(p.Security, "type", "security needs a type (%s)", l.reg.Names("security"))
			default:
				sp, ok := l.reg.Security(p.Security.Type)
				if !ok {
					l.errorf(l.node(&p.Security.Type), "unknown security type %q (want %s)", p.Security.Type, l.reg.Names("security"))
					break
				}
				p.Security.Decoded, _ = l.pluginConfig(pluginTarget{
					what:  fmt.Sprintf("security type %q", p.Security.Type),
					scope: p.Security.Type + " configuration",
					owner: l.node(p.Security),
				}, sp.Config, p.Security.Configuration)
			}
		case "push":
			if p.Security != nil {
				l.errorf(l.node(&p.Security), "push plans take no security: a consumer is admitted when its subscription is created")
			}
		default:
			l.errorf(l.node(&p.Mode), "unknown plan mode %q (want standard or push)", p.Mode)
		}
	}
}
