package mediation

import (
	"context"
	"errors"
	"net/http"
)

// Security admits requests for one plan of an API: keyless, api-key, jwt,
// and what plugins add.
type Security interface {
	// Admit checks the credentials r carries for this plan. It returns
	// ErrNoCredentials when r carries none of its kind, so that another plan
	// may admit it; a *Rejection (401, 403) when they are wrong; nil when r
	// is admitted, after recording what it learnt in x.Attributes (the key
	// id, the JWT claims). It may block on a store or a key set fetch,
	// within ctx.
	Admit(ctx context.Context, x *Exchange, r *http.Request) error
}

// ErrNoCredentials is returned by Security.Admit for a request that carries
// no credentials of the plan's kind.
var ErrNoCredentials = errors.New("no credentials for this plan")

// Plan is one way consumers are admitted to an API.
type Plan struct {
	Name     string
	Security Security
}

// Attribute names set by the engine.
const (
	// AttrPlan is the name of the plan that admitted the exchange.
	AttrPlan = "plan"
)

// admit runs the API's plans in order: the first that admits the request
// wins, the first that rejects it answers. An API without plans is open.
// It reports whether the exchange may go on; if not, the answer is written.
func (a *API) admit(w http.ResponseWriter, r *http.Request, x *Exchange) bool {
	if len(a.plans) == 0 {
		return true
	}
	for i, p := range a.plans {
		err := p.Security.Admit(r.Context(), x, r)
		if err == nil {
			x.Attributes[AttrPlan] = a.planAttrs[i]
			return true
		}
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		var rej *Rejection
		if !errors.As(err, &rej) {
			// The check could not be made (store down, key set unreachable):
			// refusing is safe, and says so.
			rej = &Rejection{Status: http.StatusServiceUnavailable, Title: "Credentials cannot be checked now",
				Detail: err.Error(), Header: http.Header{"Retry-After": {"1"}}}
		}
		writePolicyError(w, rej)
		return false
	}
	WriteProblem(w, http.StatusUnauthorized, "Credentials required", a.credentialsHint(),
		http.Header{"Www-Authenticate": {`Bearer realm="sluice"`}})
	return false
}

// credentialsHint names what the API's plans accept.
func (a *API) credentialsHint() string {
	if len(a.plans) == 1 {
		return "plan " + a.plans[0].Name + " admits this API's consumers"
	}
	s := "one of the plans "
	for i, p := range a.plans {
		if i > 0 {
			s += ", "
		}
		s += p.Name
	}
	return s + " admits this API's consumers"
}
