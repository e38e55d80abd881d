// Package messagefilter is the message-filter policy: it passes on the
// messages for which a CEL condition is true and drops the others.
//
//	subscribe:
//	  - policy: message-filter
//	    configuration: {condition: 'message.json.status == "paid"'}
//
// A message whose evaluation fails (content that is not JSON under a
// condition on message.json, a missing key, the cost limit) is dropped too:
// a filter lets through only what it can show matches. Use has(...) or
// optionals (message.json.?status.orValue("")) to decide otherwise. A
// dropped message is acknowledged, as every deliberate drop is. See package
// mediation/expr for the variables and their semantics.
package messagefilter

import (
	"cmp"
	"context"
	"log/slog"
	"strings"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/mediation/expr"
	"github.com/sluicegw/sluice/plugins"
)

// Name is the policy's name in configuration files.
const Name = "message-filter"

func init() {
	plugins.RegisterPolicy(plugins.PolicyPlugin{
		Name:   Name,
		Phases: []mediation.Phase{mediation.PhasePublish, mediation.PhaseSubscribe},
		Config: func() any { return &Config{} },
		New: func(ctx plugins.Context, cfg any) (mediation.Policy, error) {
			return New(ctx, cfg.(*Config))
		},
	})
}

// Config configures the filter.
type Config struct {
	// Condition is a CEL expression that yields a bool; messages for which
	// it is true pass. Required.
	Condition string `yaml:"condition"`

	program *expr.Program // compiled by Validate
}

// Validate compiles the condition, so that a mistake in it is reported with
// the configuration file's position rather than on the first message.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.Condition) == "" {
		return plugins.Errorf("condition", "is required: a CEL expression such as 'message.json.status == \"paid\"'")
	}
	p, err := expr.CompileCondition(c.Condition)
	if err != nil {
		return plugins.Errorf("condition", "%v", err)
	}
	c.program = p
	return nil
}

// Policy is a configured filter; it is safe for concurrent use.
type Policy struct {
	program *expr.Program
	log     *slog.Logger
}

// New returns the filter cfg describes, compiling its condition if Validate
// has not.
func New(ctx plugins.Context, cfg *Config) (*Policy, error) {
	if cfg.program == nil {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	log := cmp.Or(ctx.Logger, slog.Default()).With("policy", Name)
	return &Policy{program: cfg.program, log: log}, nil
}

// OnMessage returns msg when the condition holds and nil (drop) when it does
// not or cannot be evaluated. It never changes msg.
func (p *Policy) OnMessage(ctx context.Context, x *mediation.Exchange, msg *mediation.Message) (*mediation.Message, error) {
	if msg == nil {
		return nil, nil
	}
	ok, err := p.program.EvalBool(expr.FromExchange(x, msg))
	if err != nil {
		// Routine on mixed topics, so not worth more than debug.
		if p.log.Enabled(ctx, slog.LevelDebug) {
			p.log.LogAttrs(ctx, slog.LevelDebug, "condition failed, message dropped",
				slog.String("id", msg.Identity()), slog.String("err", err.Error()))
		}
		return nil, nil
	}
	if !ok {
		return nil, nil
	}
	return msg, nil
}

// Interface guard.
var _ mediation.MessagePolicy = (*Policy)(nil)
