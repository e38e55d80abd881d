package expr

import (
	"net/http"
	"sync"

	"cel.dev/cel-go/interpreter"

	"github.com/sluicegw/sluice/mediation"
)

// Vars is what an expression can read. Every field may be nil: a variable
// whose source is absent reads as empty (message.content == "", an empty
// headers map), except message.json, which is an evaluation error without a
// message.
type Vars struct {
	// Message is the message of the publish or subscribe phase.
	Message *mediation.Message
	// Request is the client's HTTP request.
	Request *http.Request
	// Attributes are the exchange attributes (context.attributes).
	Attributes map[string]any
	// SubscriptionMetadata is the metadata of the consumer's subscription
	// (subscription.metadata).
	SubscriptionMetadata map[string]string
	// Claims are the claims of the validated JWT (jwt.claims).
	Claims map[string]any
}

// Attribute keys under which other parts of the gateway leave values for
// expressions in Exchange.Attributes; FromExchange reads them.
const (
	// AttrJWTClaims holds a map[string]any: the claims of the token a jwt
	// plan validated.
	AttrJWTClaims = "jwt.claims"
	// AttrSubscriptionMetadata holds a map[string]string: the metadata of
	// the subscription serving the exchange.
	AttrSubscriptionMetadata = "subscription.metadata"
)

// FromExchange returns the variables of exchange x (which may be nil) for
// msg (nil outside the message phases).
func FromExchange(x *mediation.Exchange, msg *mediation.Message) Vars {
	v := Vars{Message: msg}
	if x == nil {
		return v
	}
	v.Request = x.Request
	v.Attributes = x.Attributes
	v.Claims, _ = x.Attributes[AttrJWTClaims].(map[string]any)
	v.SubscriptionMetadata, _ = x.Attributes[AttrSubscriptionMetadata].(map[string]string)
	return v
}

// activation resolves the variables of one evaluation. It owns one view and
// one ref.Val per variable, so that resolving a variable allocates nothing;
// activations are pooled across evaluations.
type activation struct {
	msg messageView
	req requestView
	ctx contextView
	sub subscriptionView
	jwt jwtView

	msgVal value[messageView]
	reqVal value[requestView]
	ctxVal value[contextView]
	subVal value[subscriptionView]
	jwtVal value[jwtView]
}

var activations = sync.Pool{New: func() any {
	a := &activation{}
	a.msgVal = value[messageView]{obj: messageType, v: &a.msg}
	a.reqVal = value[requestView]{obj: requestType, v: &a.req}
	a.ctxVal = value[contextView]{obj: contextType, v: &a.ctx}
	a.subVal = value[subscriptionView]{obj: subscriptionType, v: &a.sub}
	a.jwtVal = value[jwtView]{obj: jwtType, v: &a.jwt}
	return a
}}

func getActivation(vars *Vars) *activation {
	a := activations.Get().(*activation)
	a.msg.reset(vars.Message)
	a.req.reset(vars.Request)
	a.ctx.attributes = vars.Attributes
	a.sub.metadata = vars.SubscriptionMetadata
	a.jwt.claims = vars.Claims
	return a
}

// release drops every reference to the evaluation's data before pooling.
func (a *activation) release() {
	a.msg.reset(nil)
	a.req.reset(nil)
	a.ctx.attributes = nil
	a.sub.metadata = nil
	a.jwt.claims = nil
	activations.Put(a)
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "message":
		return &a.msgVal, true
	case "request":
		return &a.reqVal, true
	case "context":
		return &a.ctxVal, true
	case "subscription":
		return &a.subVal, true
	case "jwt":
		return &a.jwtVal, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// Interface guard.
var _ interpreter.Activation = (*activation)(nil)
