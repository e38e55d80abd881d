// Package transformheaders is the transform-headers policy: it adds, sets,
// removes and whitelists headers of HTTP requests and responses and of
// messages, in every phase.
//
//	publish:
//	  - policy: transform-headers
//	    configuration:
//	      setHeaders: [{name: x-source, value: gateway}]
//	      removeHeaders: [authorization]
//
// Header names match case-insensitively. Values are literal strings.
// Messages are never changed in place: a message read from a shared
// subscription is seen by other clients, so the policy returns a changed
// clone.
package transformheaders

import (
	"context"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// Name is the policy's name in configuration files.
const Name = "transform-headers"

func init() {
	plugins.RegisterPolicy(plugins.PolicyPlugin{
		Name: Name,
		Phases: []mediation.Phase{
			mediation.PhaseRequest, mediation.PhaseResponse,
			mediation.PhasePublish, mediation.PhaseSubscribe,
		},
		Config: func() any { return &Config{} },
		New: func(_ plugins.Context, cfg any) (mediation.Policy, error) {
			return New(cfg.(*Config))
		},
	})
}

// Policy is a configured transformation; it is safe for concurrent use.
type Policy struct {
	// The same operations twice, with names prepared for each kind of
	// header map so that the hot path never normalises a configured name:
	// message headers store lower-case names, http.Header canonical ones.
	msg, http ops
}

type ops struct {
	keep     map[string]struct{} // nil: no whitelist
	remove   []string
	set, add []Header
	canon    func(string) string
}

func newOps(c *Config, canon func(string) string) ops {
	o := ops{canon: canon}
	if len(c.WhitelistHeaders) > 0 {
		o.keep = make(map[string]struct{}, len(c.WhitelistHeaders))
		for _, n := range c.WhitelistHeaders {
			o.keep[canon(n)] = struct{}{}
		}
	}
	for _, n := range c.RemoveHeaders {
		o.remove = append(o.remove, canon(n))
	}
	for _, h := range c.SetHeaders {
		o.set = append(o.set, Header{Name: canon(h.Name), Value: h.Value})
	}
	for _, h := range c.AddHeaders {
		o.add = append(o.add, Header{Name: canon(h.Name), Value: h.Value})
	}
	return o
}

// apply transforms h in place.
func (o *ops) apply(h map[string][]string) {
	if o.keep != nil {
		for k := range h {
			// Stored names are normally in the map's form already, and then
			// canon does not allocate.
			if _, ok := o.keep[o.canon(k)]; !ok {
				delete(h, k)
			}
		}
	}
	for _, n := range o.remove {
		delete(h, n)
	}
	for _, kv := range o.set {
		h[kv.Name] = []string{kv.Value}
	}
	for _, kv := range o.add {
		h[kv.Name] = append(h[kv.Name], kv.Value)
	}
}

// New returns the policy cfg describes.
func New(cfg *Config) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Policy{
		msg:  newOps(cfg, strings.ToLower),
		http: newOps(cfg, textproto.CanonicalMIMEHeaderKey),
	}, nil
}

// NonBlocking implements mediation.NonBlocking: headers are rewritten in memory.
func (p *Policy) NonBlocking() bool { return true }

// OnRequest transforms the request headers.
func (p *Policy) OnRequest(_ context.Context, _ *mediation.Exchange, r *http.Request) error {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	p.http.apply(r.Header)
	return nil
}

// OnResponse transforms the response headers before they are written.
func (p *Policy) OnResponse(_ context.Context, _ *mediation.Exchange, h http.Header) error {
	if h != nil {
		p.http.apply(h)
	}
	return nil
}

// OnMessage returns a clone of msg with its headers transformed; msg itself
// is left as it was.
func (p *Policy) OnMessage(_ context.Context, _ *mediation.Exchange, msg *mediation.Message) (*mediation.Message, error) {
	if msg == nil {
		return nil, nil
	}
	c := msg.Clone() // Headers of a clone are a deep copy: ours to change
	p.msg.apply(c.Headers)
	return c, nil
}

// Interface guards.
var (
	_ mediation.RequestPolicy  = (*Policy)(nil)
	_ mediation.ResponsePolicy = (*Policy)(nil)
	_ mediation.MessagePolicy  = (*Policy)(nil)
)
