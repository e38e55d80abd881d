package server

import (
	"net/http"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/mediation/expr"
)

// conditionSelector selects exchanges for which a CEL condition over
// request and context holds. An evaluation error does not select.
type conditionSelector struct{ prog *expr.Program }

func newConditionSelector(src string) (mediation.Selector, error) {
	p, err := expr.CompileCondition(src)
	if err != nil {
		return nil, err
	}
	return conditionSelector{prog: p}, nil
}

func (s conditionSelector) Matches(x *mediation.Exchange, r *http.Request, _ mediation.Operation) bool {
	v := expr.FromExchange(x, nil) // jwt.claims and subscription.metadata too
	v.Request = r
	ok, err := s.prog.EvalBool(v)
	return err == nil && ok
}
