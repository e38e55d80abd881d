package expr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/sluicegw/sluice/mediation"
)

// The views below are what the variables of an expression read. Each field is
// computed when an expression reads it, and at most once per evaluation.
// Getters return CEL values (types.String) where they can: a Go string would
// be boxed twice on its way into the interpreter.

var errNoMessage = errors.New("no message in this phase")

// messageView backs the variable message.
type messageView struct {
	msg *mediation.Message

	content    string
	contentSet bool
	json       any
	jsonErr    error
	jsonSet    bool
	headers    firstValues
}

func (v *messageView) reset(m *mediation.Message) {
	*v = messageView{msg: m}
	if m != nil {
		v.headers = firstValues{m: m.Headers, canon: strings.ToLower}
	}
}

// contentString converts the content once per evaluation. It copies: the
// content slice may outlive the evaluation, and a string must not change.
func (v *messageView) contentString() string {
	if !v.contentSet && v.msg != nil {
		v.content, v.contentSet = string(v.msg.Content), true
	}
	return v.content
}

// parsedJSON decodes the content on first use. Numbers become doubles, as
// in CEL's own JSON mapping.
func (v *messageView) parsedJSON() (any, error) {
	if v.jsonSet {
		return v.json, v.jsonErr
	}
	v.jsonSet = true
	if v.msg == nil {
		v.jsonErr = errNoMessage
		return nil, v.jsonErr
	}
	if err := json.Unmarshal(v.msg.Content, &v.json); err != nil {
		v.json, v.jsonErr = nil, fmt.Errorf("message.json: content is not JSON: %v", err)
	}
	return v.json, v.jsonErr
}

var messageType = newObject("sluice.Message",
	fieldDef[messageView]{name: "content", typ: cel.StringType, get: func(v *messageView) (any, error) {
		return types.String(v.contentString()), nil
	}},
	fieldDef[messageView]{name: "json", typ: cel.DynType,
		get: func(v *messageView) (any, error) { return v.parsedJSON() },
		// has(message.json) tells whether the content is JSON at all.
		isSet: func(v *messageView) bool { _, err := v.parsedJSON(); return err == nil },
	},
	fieldDef[messageView]{name: "headers", typ: cel.MapType(cel.StringType, cel.StringType), get: func(v *messageView) (any, error) {
		return &v.headers, nil
	}},
	fieldDef[messageView]{name: "metadata", typ: cel.MapType(cel.StringType, cel.StringType), get: func(v *messageView) (any, error) {
		if v.msg == nil {
			return map[string]string(nil), nil
		}
		return v.msg.AllMetadata(), nil
	}},
	fieldDef[messageView]{name: "id", typ: cel.StringType, get: func(v *messageView) (any, error) {
		if v.msg == nil {
			return types.String(""), nil
		}
		return types.String(v.msg.Identity()), nil
	}},
	fieldDef[messageView]{name: "key", typ: cel.StringType, get: func(v *messageView) (any, error) {
		if v.msg == nil {
			return types.String(""), nil
		}
		return types.String(v.msg.Key), nil
	}},
)

// requestView backs the variable request.
type requestView struct {
	r        *http.Request
	headers  firstValues
	query    firstValues
	querySet bool
}

func (v *requestView) reset(r *http.Request) {
	*v = requestView{r: r}
	if r != nil {
		v.headers = firstValues{m: r.Header, canon: textproto.CanonicalMIMEHeaderKey, display: strings.ToLower}
	}
}

var requestType = newObject("sluice.Request",
	fieldDef[requestView]{name: "method", typ: cel.StringType, get: func(v *requestView) (any, error) {
		if v.r == nil {
			return types.String(""), nil
		}
		return types.String(v.r.Method), nil
	}},
	fieldDef[requestView]{name: "path", typ: cel.StringType, get: func(v *requestView) (any, error) {
		if v.r == nil || v.r.URL == nil {
			return types.String(""), nil
		}
		return types.String(v.r.URL.Path), nil
	}},
	fieldDef[requestView]{name: "headers", typ: cel.MapType(cel.StringType, cel.StringType), get: func(v *requestView) (any, error) {
		return &v.headers, nil
	}},
	fieldDef[requestView]{name: "query", typ: cel.MapType(cel.StringType, cel.StringType), get: func(v *requestView) (any, error) {
		if !v.querySet {
			v.querySet = true
			if v.r != nil && v.r.URL != nil {
				// A malformed pair is skipped, as net/http does.
				q, _ := url.ParseQuery(v.r.URL.RawQuery)
				v.query.m = q
			}
		}
		return &v.query, nil
	}},
)

// contextView backs the variable context.
type contextView struct{ attributes map[string]any }

var contextType = newObject("sluice.Context",
	fieldDef[contextView]{name: "attributes", typ: cel.MapType(cel.StringType, cel.DynType), get: func(v *contextView) (any, error) {
		return v.attributes, nil
	}},
)

// subscriptionView backs the variable subscription.
type subscriptionView struct{ metadata map[string]string }

var subscriptionType = newObject("sluice.Subscription",
	fieldDef[subscriptionView]{name: "metadata", typ: cel.MapType(cel.StringType, cel.StringType), get: func(v *subscriptionView) (any, error) {
		return v.metadata, nil
	}},
)

// jwtView backs the variable jwt.
type jwtView struct{ claims map[string]any }

var jwtType = newObject("sluice.JWT",
	fieldDef[jwtView]{name: "claims", typ: cel.MapType(cel.StringType, cel.DynType), get: func(v *jwtView) (any, error) {
		return v.claims, nil
	}},
)
