package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/sluicegw/sluice/entrypoints/webhook"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// builtAPI is a provisioned API, its configuration, and the routes its http
// listeners claim.
type builtAPI struct {
	cfg    *config.API
	api    *mediation.API
	routes []*route
	// hook is the webhook entrypoint of the API's subscription listener,
	// nil when it has none.
	hook *webhookBinding
}

// webhookBinding is what the subscription runners of an API need from it.
type webhookBinding struct {
	entry *webhook.Entrypoint
	// dlq is the first endpoint of the dead-letter group, nil without one.
	dlq mediation.Endpoint
}

// buildAPI provisions one validated API: endpoints first, then entrypoints
// and policies. On failure everything already provisioned is closed
// (Caddy's cleanup-even-when-provisioning-fails rule).
func buildAPI(ctx context.Context, reg *plugins.Registry, c *config.API, env buildEnv) (_ *builtAPI, err error) {
	log, meter := env.log, env.meter
	var opened []mediation.Endpoint
	defer func() {
		if err != nil {
			for _, e := range opened {
				_ = e.Close(context.WithoutCancel(ctx))
			}
		}
	}()
	pctx := plugins.Context{Context: ctx, Logger: log.With("api", c.ID), APIID: c.ID, Keys: env.keys, Rates: env.rates}

	// The first group serves the entrypoints: message entrypoints use its
	// first endpoint, balancing entrypoints (http-proxy) the whole group.
	var group []mediation.Endpoint
	if len(c.EndpointGroups) > 0 {
		g := c.EndpointGroups[0]
		p, ok := reg.Endpoint(g.Type)
		if !ok || len(g.Endpoints) == 0 {
			return nil, fmt.Errorf("api %q: endpoint group %q: unknown type %q or no endpoint", c.ID, g.Name, g.Type)
		}
		for _, ep := range g.Endpoints {
			pctx.Name = ep.Name
			pctx.Group = groupInfo(g, ep)
			e, err := p.New(pctx, ep.Decoded)
			if err != nil {
				return nil, fmt.Errorf("api %q: endpoint %q: %w", c.ID, ep.Name, err)
			}
			opened = append(opened, e)
			group = append(group, e)
		}
	}
	var endpoint mediation.Endpoint
	if len(group) > 0 {
		endpoint = group[0]
	}
	named, err := buildNamedGroups(reg, pctx, c)
	for _, g := range named {
		opened = append(opened, g...)
	}
	if err != nil {
		return nil, err
	}

	var bindings []mediation.EntrypointBinding
	var routes []*route
	var hook *webhookBinding
	for _, l := range c.Listeners {
		for _, e := range l.Entrypoints {
			p, ok := reg.Entrypoint(e.Type)
			if !ok {
				return nil, fmt.Errorf("api %q: unknown entrypoint type %q", c.ID, e.Type)
			}
			pctx.Name = e.Type
			ent, err := p.New(pctx, e.Decoded)
			if err != nil {
				return nil, fmt.Errorf("api %q: entrypoint %q: %w", c.ID, e.Type, err)
			}
			qos, err := mediation.ParseQoS(e.QoS)
			if err != nil {
				return nil, fmt.Errorf("api %q: entrypoint %q: %w", c.ID, e.Type, err)
			}
			bindings = append(bindings, mediation.EntrypointBinding{
				Type: e.Type, Entrypoint: ent, QoS: qos, Window: e.Window,
				SlowConsumer: mediation.SlowConsumerPolicy(e.SlowConsumer),
			})
			if wh, ok := ent.(*webhook.Entrypoint); ok {
				hook = &webhookBinding{entry: wh}
				switch {
				case e.DLQ == nil:
				case e.DLQ.Endpoint == firstGroupName(c):
					hook.dlq = endpoint
				default:
					hook.dlq = named[e.DLQ.Endpoint][0]
				}
			}
		}
		for _, p := range l.Paths {
			routes = append(routes, &route{prefix: normalizePrefix(p), hosts: l.Hosts, cors: newCORS(l.CORS), fastAll: c.Type == "proxy"})
		}
	}

	flows, err := buildFlows(reg, pctx, c)
	if err != nil {
		return nil, err
	}
	plans, err := buildPlans(reg, pctx, c)
	if err != nil {
		return nil, err
	}
	api := mediation.NewAPI(mediation.APIOptions{
		ID: c.ID, Name: c.Name, Entrypoints: bindings, Endpoint: endpoint, Group: group, Named: named,
		Plans: plans, Flows: flows, Logger: log, Meter: meter,
	})
	for i := range routes {
		routes[i].api = api
	}
	return &builtAPI{cfg: c, api: api, routes: routes, hook: hook}, nil
}

// buildNamedGroups provisions the endpoint groups other than the first that
// an entrypoint uses (a webhook's dead-letter queue); unused ones are not
// connected. On error the map holds what was opened, for the caller to close.
func buildNamedGroups(reg *plugins.Registry, pctx plugins.Context, c *config.API) (map[string][]mediation.Endpoint, error) {
	used := map[string]bool{}
	for _, l := range c.Listeners {
		for _, e := range l.Entrypoints {
			if e.DLQ != nil && e.DLQ.Endpoint != firstGroupName(c) {
				used[e.DLQ.Endpoint] = true
			}
		}
	}
	named := map[string][]mediation.Endpoint{}
	for i, g := range c.EndpointGroups {
		if i == 0 || !used[g.Name] {
			continue
		}
		p, ok := reg.Endpoint(g.Type)
		if !ok || len(g.Endpoints) == 0 {
			return named, fmt.Errorf("api %q: endpoint group %q: unknown type %q or no endpoint", c.ID, g.Name, g.Type)
		}
		for _, ep := range g.Endpoints {
			pctx.Name = ep.Name
			pctx.Group = groupInfo(g, ep)
			e, err := p.New(pctx, ep.Decoded)
			if err != nil {
				return named, fmt.Errorf("api %q: endpoint %q: %w", c.ID, ep.Name, err)
			}
			named[g.Name] = append(named[g.Name], e)
		}
	}
	for name := range used {
		if len(named[name]) == 0 {
			return named, fmt.Errorf("api %q: dead-letter endpoint group %q is not a group of this api (other than the first)", c.ID, name)
		}
	}
	return named, nil
}

// buildEnv is what provisioning takes from the running gateway.
type buildEnv struct {
	log   *slog.Logger
	meter mediation.Meter
	keys  plugins.KeyFinder   // nil without a store
	rates plugins.RateCounter // nil: each rate-limit policy counts alone
}

// buildPlans provisions the API's standard plans, keyless ones last: a
// keyless plan admits anything, so the others must see credentials first.
// Push plans admit webhook subscriptions, not requests.
func buildPlans(reg *plugins.Registry, pctx plugins.Context, c *config.API) (plans []mediation.Plan, err error) {
	defer func() {
		if err != nil {
			for _, p := range plans {
				if cl, ok := p.Security.(interface{ Close() error }); ok {
					_ = cl.Close()
				}
			}
		}
	}()
	var keyless []mediation.Plan
	for _, p := range c.Plans {
		if p.Mode == "push" || p.Security == nil {
			continue
		}
		sp, ok := reg.Security(p.Security.Type)
		if !ok {
			return plans, fmt.Errorf("api %q: plan %q: unknown security type %q", c.ID, p.Name, p.Security.Type)
		}
		pctx.Name = p.Name
		sec, err := sp.New(pctx, p.Security.Decoded)
		if err != nil {
			return plans, fmt.Errorf("api %q: plan %q: %w", c.ID, p.Name, err)
		}
		if p.Security.Type == "keyless" {
			keyless = append(keyless, mediation.Plan{Name: p.Name, Security: sec})
		} else {
			plans = append(plans, mediation.Plan{Name: p.Name, Security: sec})
		}
	}
	return append(plans, keyless...), nil
}

func buildFlows(reg *plugins.Registry, pctx plugins.Context, c *config.API) ([]mediation.Flow, error) {
	var flows []mediation.Flow
	for _, f := range c.Flows {
		if f.Enabled != nil && !*f.Enabled {
			continue
		}
		mf := mediation.Flow{Name: f.Name}
		for _, s := range f.Selectors {
			sel, err := buildSelector(s)
			if err != nil {
				return nil, fmt.Errorf("api %q: flow %q: %w", c.ID, f.Name, err)
			}
			mf.Selectors = append(mf.Selectors, sel)
		}
		phases := []struct {
			steps []config.Step
			dst   *[]mediation.Policy
		}{{f.Request, &mf.Request}, {f.Response, &mf.Response}, {f.Publish, &mf.Publish}, {f.Subscribe, &mf.Subscribe}}
		for _, ph := range phases {
			for _, s := range ph.steps {
				if s.Enabled != nil && !*s.Enabled {
					continue
				}
				p, ok := reg.Policy(s.Policy)
				if !ok {
					return nil, fmt.Errorf("api %q: flow %q: unknown policy %q", c.ID, f.Name, s.Policy)
				}
				pctx.Name = s.Name
				pol, err := p.New(pctx, s.Decoded)
				if err != nil {
					return nil, fmt.Errorf("api %q: flow %q: policy %q: %w", c.ID, f.Name, s.Policy, err)
				}
				*ph.dst = append(*ph.dst, pol)
			}
		}
		flows = append(flows, mf)
	}
	return flows, nil
}

func buildSelector(s config.Selector) (mediation.Selector, error) {
	switch s.Type {
	case "http":
		return mediation.HTTPSelector{Path: s.Path, Methods: s.Methods}, nil
	case "channel":
		var ops mediation.Operation
		for _, o := range s.Operations {
			switch strings.ToLower(o) {
			case "publish":
				ops |= mediation.OpPublish
			case "subscribe":
				ops |= mediation.OpSubscribe
			default:
				return nil, fmt.Errorf("selector operation %q: want publish or subscribe", o)
			}
		}
		return mediation.ChannelSelector{Operations: ops, Entrypoints: s.Entrypoints}, nil
	case "condition":
		return newConditionSelector(s.Condition)
	}
	return nil, errors.New("selector type " + s.Type + ": want http, channel or condition")
}

func firstGroupName(c *config.API) string {
	if len(c.EndpointGroups) == 0 {
		return ""
	}
	return c.EndpointGroups[0].Name
}

func groupInfo(g config.EndpointGroup, ep config.Endpoint) plugins.GroupInfo {
	gi := plugins.GroupInfo{Name: g.Name, LoadBalancer: "round-robin", Weight: max(ep.Weight, 1)}
	if g.LoadBalancer != nil && g.LoadBalancer.Type != "" {
		gi.LoadBalancer = g.LoadBalancer.Type
	}
	return gi
}
