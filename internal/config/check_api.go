package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// maxIDLength bounds API ids, which appear in URLs and store keys.
const maxIDLength = 64

// groupInfo is what the entrypoint checks need to know of an endpoint group.
type groupInfo struct {
	group  *EndpointGroup
	plugin *plugins.EndpointPlugin // nil when the type is unknown
	// caps are the capabilities of the endpoints whose configuration is
	// valid; entrypoints are checked against each.
	caps []mediation.Capabilities
}

func (l *loader) checkAPI(a *API) {
	switch {
	case a.ID == "":
		l.missing(a, "id", `api needs an "id": letters, digits, '-' and '_'`)
	case !validID(a.ID):
		l.errorf(l.node(&a.ID), "invalid api id %q: use letters, digits, '-' and '_' (at most %d)", a.ID, maxIDLength)
	default:
		if first, dup := l.ids[a.ID]; dup {
			l.errorf(l.node(&a.ID), "duplicate api id %q (first at line %d)", a.ID, l.line(first))
		} else {
			l.ids[a.ID] = l.node(&a.ID)
		}
	}
	if a.Type != "message" && a.Type != "proxy" {
		l.errorf(l.node(&a.Type), "unknown api type %q (want message or proxy)", a.Type)
	}
	groups := l.checkGroups(a)
	l.checkListeners(a, groups)
	l.checkFlows(a)
	l.checkPlans(a)
}

func validID(s string) bool {
	if len(s) > maxIDLength {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func (l *loader) checkGroups(a *API) []groupInfo {
	if len(a.EndpointGroups) == 0 {
		l.needList(&a.EndpointGroups, a, "endpointGroups", "api needs at least one endpoint group (endpointGroups); the first serves its entrypoints")
	}
	names := map[string]ast.Node{}
	infos := make([]groupInfo, len(a.EndpointGroups))
	for i := range a.EndpointGroups {
		g := &a.EndpointGroups[i]
		infos[i].group = g
		if g.Name != "" {
			if first, dup := names[g.Name]; dup {
				l.errorf(l.node(&g.Name), "duplicate endpoint group name %q (first at line %d)", g.Name, l.line(first))
			} else {
				names[g.Name] = l.node(&g.Name)
			}
		}
		switch g.LoadBalancer.Type {
		case "round-robin", "random", "weighted":
		default:
			l.errorf(l.node(&g.LoadBalancer.Type, g.LoadBalancer), "unknown load balancer type %q (want round-robin, random or weighted)", g.LoadBalancer.Type)
		}
		if len(g.Endpoints) == 0 {
			l.needList(&g.Endpoints, g, "endpoints", "endpoint group needs at least one endpoint")
		}
		epNames := map[string]ast.Node{}
		for j := range g.Endpoints {
			ep := &g.Endpoints[j]
			if ep.Name != "" {
				if first, dup := epNames[ep.Name]; dup {
					l.errorf(l.node(&ep.Name), "duplicate endpoint name %q in this group (first at line %d)", ep.Name, l.line(first))
				} else {
					epNames[ep.Name] = l.node(&ep.Name)
				}
			}
			if ep.Weight < 0 {
				l.errorf(l.node(&ep.Weight), "weight must not be negative")
			}
		}

		if g.Type == "" {
			l.missing(g, "type", "endpoint group needs a type (registered: %s)", l.names("endpoint"))
			continue
		}
		p, ok := l.reg.Endpoint(g.Type)
		if !ok {
			l.unknownType(l.node(&g.Type, g), "endpoint type", g.Type, "endpoint")
			continue
		}
		infos[i].plugin = &p
		target := pluginTarget{what: fmt.Sprintf("endpoint type %q", g.Type), scope: g.Type + " configuration"}
		if len(g.Endpoints) == 0 { // still report what is wrong in the shared block
			target.owner = l.node(g)
			l.pluginConfig(target, p.Config, g.SharedConfiguration)
		}
		for j := range g.Endpoints {
			ep := &g.Endpoints[j]
			target.owner = l.node(ep, g)
			decoded, valid := l.pluginConfig(target, p.Config, g.SharedConfiguration, ep.Configuration)
			ep.Decoded = decoded
			if valid {
				infos[i].caps = append(infos[i].caps, p.Capabilities(decoded))
			}
		}
	}
	return infos
}

func (l *loader) checkListeners(a *API, groups []groupInfo) {
	if len(a.Listeners) == 0 {
		l.needList(&a.Listeners, a, "listeners", "api needs at least one listener (listeners)")
	}
	var subscription *Listener
	for i := range a.Listeners {
		ls := &a.Listeners[i]
		switch ls.Type {
		case "":
			l.missing(ls, "type", "listener needs a type (http or subscription)")
		case "http":
			if len(ls.Paths) == 0 {
				l.needList(&ls.Paths, ls, "paths", "http listener needs at least one path")
			}
			for j := range ls.Paths {
				l.checkPath(a, &ls.Paths[j])
			}
		case "subscription":
			subscription = ls
			for _, f := range []struct {
				set  bool
				ptr  any
				name string
			}{{len(ls.Paths) > 0, &ls.Paths, "paths"}, {len(ls.Hosts) > 0, &ls.Hosts, "hosts"}, {ls.CORS != nil, &ls.CORS, "cors"}} {
				if f.set {
					l.errorf(l.node(f.ptr), "subscription listeners take no %s: consumers subscribe through the management API", f.name)
				}
			}
		default:
			l.errorf(l.node(&ls.Type), "unknown listener type %q (want http or subscription)", ls.Type)
		}
		if ls.CORS != nil {
			l.checkCORS(ls.CORS)
		}
		if len(ls.Entrypoints) == 0 {
			l.needList(&ls.Entrypoints, ls, "entrypoints", "listener needs at least one entrypoint")
		}
		seen := map[string]ast.Node{}
		for j := range ls.Entrypoints {
			l.checkEntrypoint(ls, &ls.Entrypoints[j], groups, seen)
		}
	}
	if subscription != nil && !slices.ContainsFunc(a.Plans, func(p Plan) bool { return p.Mode == "push" }) {
		l.errorf(l.node(&subscription.Type, subscription), "a subscription listener needs a plan with mode: push, on which consumers register their subscriptions")
	}
}

func (l *loader) checkCORS(c *CORS) {
	for i, o := range c.AllowOrigins {
		if o == "*" && c.AllowCredentials {
			l.errorf(l.node(&c.AllowOrigins[i]), `allowOrigins "*" cannot be combined with allowCredentials: browsers refuse it; list the origins`)
		}
		if o == "" {
			l.errorf(l.node(&c.AllowOrigins[i], &c.AllowOrigins), "empty origin")
		}
	}
	if c.MaxAge < 0 {
		l.errorf(l.node(&c.MaxAge), "maxAge must not be negative")
	}
}

// checkPath checks one listener path and claims it for a.
func (l *loader) checkPath(a *API, p *string) {
	n := l.node(p)
	path := *p
	if !strings.HasPrefix(path, "/") {
		l.errorf(n, "path %q must start with '/'", path)
		return
	}
	if msg := pathProblem(path); msg != "" {
		l.errorf(n, "invalid path %q: %s", path, msg)
		return
	}
	norm := NormalizePath(path)
	if first, dup := l.paths[norm]; dup {
		if first.api == a.ID {
			l.errorf(n, "path %q is listed twice in this api (first at line %d)", path, l.line(first.node))
		} else {
			l.errorf(n, "path %q is already used by api %q (line %d)", path, first.api, l.line(first.node))
		}
		return
	}
	l.paths[norm] = pathUse{api: a.ID, node: n}
}

func (l *loader) checkEntrypoint(ls *Listener, e *Entrypoint, groups []groupInfo, seen map[string]ast.Node) {
	if e.Type == "" {
		l.missing(e, "type", "entrypoint needs a type (registered: %s)", l.names("entrypoint"))
		return
	}
	typeNode := l.node(&e.Type, e)
	p, ok := l.reg.Entrypoint(e.Type)
	if !ok {
		l.unknownType(typeNode, "entrypoint type", e.Type, "entrypoint")
		return
	}
	if first, dup := seen[e.Type]; dup {
		l.errorf(typeNode, "entrypoint %q is listed twice on this listener (first at line %d)", e.Type, l.line(first))
	}
	seen[e.Type] = typeNode
	if (ls.Type == "http" || ls.Type == "subscription") && p.Listener != "" && p.Listener != ls.Type {
		l.errorf(typeNode, "entrypoint %q belongs on a listener of type %s, not %s", e.Type, p.Listener, ls.Type)
	}
	e.Decoded, _ = l.pluginConfig(pluginTarget{
		what:  fmt.Sprintf("entrypoint type %q", e.Type),
		scope: e.Type + " configuration",
		owner: l.node(e),
	}, p.Config, e.Configuration)

	var main *groupInfo
	if len(groups) > 0 && groups[0].plugin != nil {
		main = &groups[0]
	}
	l.checkQoS(e, p, main)
	if main != nil {
		l.checkOperations(typeNode, e, p, main)
	}
	if e.Window < 0 || e.Window > MaxWindow {
		l.errorf(l.node(&e.Window, e), "window must be between 1 and %d", MaxWindow)
	}
	switch e.SlowConsumer {
	case "disconnect", "drop-oldest", "block":
	default:
		l.errorf(l.node(&e.SlowConsumer, e), "unknown slowConsumer %q (want disconnect, drop-oldest or block)", e.SlowConsumer)
	}
	if e.DLQ != nil {
		l.checkDLQ(e, groups)
	}
}

// checkQoS checks the entrypoint's qos against what it and, when it
// subscribes, the serving endpoints can honour.
func (l *loader) checkQoS(e *Entrypoint, p plugins.EntrypointPlugin, main *groupInfo) {
	n := l.node(&e.QoS, e)
	q, err := mediation.ParseQoS(e.QoS)
	if err != nil {
		l.errorf(n, "%s", err.Error())
		return
	}
	if len(p.QoS) == 1 && !l.written(&e.QoS) {
		// An entrypoint with one level (webhook: at-least-once) has it by
		// default, and is checked against the endpoint with it.
		q = p.QoS[0]
		e.QoS = string(q)
	}
	if len(p.QoS) == 0 {
		if l.written(&e.QoS) && q != mediation.QoSAuto {
			l.errorf(n, "entrypoint %q takes no qos", e.Type)
		}
		return
	}
	if !slices.Contains(p.QoS, q) {
		l.errorf(n, "entrypoint %q cannot honour qos %s (it supports %s)", e.Type, q, qosList(p.QoS))
		return
	}
	if main == nil || p.Operations&mediation.OpSubscribe == 0 {
		return // the endpoint's QoS list is about subscriptions
	}
	for _, c := range main.caps {
		if !c.Supports(q) {
			why := ""
			if c.QoSNote != "" {
				why = ": " + c.QoSNote
			}
			l.errorf(n, "qos %s cannot be honoured by endpoint type %q (it supports %s)%s", q, main.group.Type, qosList(c.QoS), why)
			return
		}
	}
}

// checkOperations refuses an entrypoint that publishes (or subscribes)
// in front of an endpoint that cannot.
func (l *loader) checkOperations(at ast.Node, e *Entrypoint, p plugins.EntrypointPlugin, main *groupInfo) {
	for _, op := range []struct {
		op        mediation.Operation
		does, can string
		ok        func(mediation.Capabilities) bool
	}{
		{mediation.OpPublish, "publishes", "publish", func(c mediation.Capabilities) bool { return c.Publish }},
		{mediation.OpSubscribe, "subscribes", "subscribe", func(c mediation.Capabilities) bool { return c.Subscribe }},
	} {
		if p.Operations&op.op == 0 {
			continue
		}
		if slices.ContainsFunc(main.caps, func(c mediation.Capabilities) bool { return !op.ok(c) }) {
			l.errorf(at, "entrypoint %q %s, but endpoint type %q cannot %s%s", e.Type, op.does, main.group.Type, op.can, groupHint(main.group))
		}
	}
}

// groupHint names the group in messages when it has a name.
func groupHint(g *EndpointGroup) string {
	if g.Name == "" {
		return ""
	}
	return fmt.Sprintf(" (endpoint group %q)", g.Name)
}

func (l *loader) checkDLQ(e *Entrypoint, groups []groupInfo) {
	n := l.node(&e.DLQ.Endpoint, e.DLQ, &e.DLQ, e)
	if e.DLQ.Endpoint == "" {
		l.errorf(n, "dlq needs an endpoint: the name of an endpoint group of this api")
		return
	}
	var names []string
	for i := range groups {
		g := &groups[i]
		if g.group.Name != "" && !slices.Contains(names, g.group.Name) {
			names = append(names, g.group.Name)
		}
		if g.group.Name != e.DLQ.Endpoint {
			continue
		}
		if g.plugin != nil && slices.ContainsFunc(g.caps, func(c mediation.Capabilities) bool { return !c.Publish }) {
			l.errorf(n, "dlq endpoint group %q cannot take messages: endpoint type %q cannot publish", g.group.Name, g.group.Type)
		}
		return
	}
	list := "this api has no named endpoint groups"
	if len(names) > 0 {
		list = "groups: " + strings.Join(names, ", ")
	}
	l.errorf(n, "dlq endpoint %q is not an endpoint group of this api (%s)", e.DLQ.Endpoint, list)
}

// names lists the registered plugins of kind for messages.
func (l *loader) names(kind string) string {
	if s := l.reg.Names(kind); s != "" {
		return s
	}
	return "none"
}

// unknownType reports a type name the registry does not have, with the
// closest registered one when it looks like a typo.
func (l *loader) unknownType(n ast.Node, what, name, kind string) {
	registered := l.names(kind)
	if s := suggest(name, strings.Split(l.reg.Names(kind), ", ")); s != "" {
		l.errorf(n, "unknown %s %q; did you mean %q? (registered: %s)", what, name, s, registered)
		return
	}
	l.errorf(n, "unknown %s %q (registered: %s)", what, name, registered)
}

func qosList(qs []mediation.QoS) string {
	if len(qs) == 0 {
		return "no level"
	}
	s := make([]string, len(qs))
	for i, q := range qs {
		s[i] = string(q)
	}
	return strings.Join(s, ", ")
}
