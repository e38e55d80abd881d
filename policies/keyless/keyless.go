// Package keyless is the `keyless` plan security type: it admits every
// request. An API with a keyless plan and others admits requests that
// carry no credentials through the keyless plan, and still refuses wrong
// credentials meant for the others; so keyless plans are checked last.
package keyless

import (
	"context"
	"net/http"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func init() {
	plugins.RegisterSecurity(plugins.SecurityPlugin{
		Type: "keyless",
		New:  func(plugins.Context, any) (mediation.Security, error) { return Security{}, nil },
	})
}

// Security admits everything.
type Security struct{}

// NonBlocking implements mediation.NonBlocking: there is nothing to wait for.
func (Security) NonBlocking() bool { return true }

// Admit admits r.
func (Security) Admit(context.Context, *mediation.Exchange, *http.Request) error { return nil }

var _ mediation.Security = Security{}
