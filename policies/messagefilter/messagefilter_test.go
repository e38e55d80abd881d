package messagefilter

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newFilter(t testing.TB, condition string) *Policy {
	t.Helper()
	cfg := &Config{Condition: condition}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate(%s): %v", condition, err)
	}
	p, err := New(plugins.Context{Context: context.Background()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func message(content string, headers mediation.Headers, metadata map[string]string) *mediation.Message {
	m := mediation.NewMessage([]byte(content))
	m.ID = "m-1"
	m.Headers = headers
	m.Metadata = metadata
	return m
}

func TestOnMessage(t *testing.T) {
	t.Parallel()
	get := httptest.NewRequest(http.MethodGet, "/orders?region=eu", nil)
	get.Header.Set("X-Tenant", "acme")
	post := httptest.NewRequest(http.MethodPost, "/orders", nil)
	tests := []struct {
		desc      string
		condition string
		content   string
		headers   mediation.Headers
		metadata  map[string]string
		request   *http.Request
		pass      bool
	}{
		{desc: "json match", condition: `message.json.status == "paid"`, content: `{"status":"paid"}`, pass: true},
		{desc: "json mismatch", condition: `message.json.status == "paid"`, content: `{"status":"pending"}`, pass: false},
		{desc: "json missing key", condition: `message.json.status == "paid"`, content: `{"total":3}`, pass: false},
		{desc: "invalid json dropped", condition: `message.json.status == "paid"`, content: `{"status":"paid"`, pass: false},
		{desc: "not json at all dropped", condition: `message.json.status == "paid"`, content: "\x00\xff binary", pass: false},
		{desc: "empty content dropped", condition: `message.json.status == "paid"`, content: "", pass: false},
		{desc: "negated condition on invalid json still dropped", condition: `message.json.status != "paid"`, content: `nope`, pass: false},
		{desc: "has guards invalid json", condition: `!has(message.json) || message.json.status != "paid"`, content: `nope`, pass: true},
		{desc: "json number", condition: `message.json.amount >= 100`, content: `{"amount":100.0}`, pass: true},
		{desc: "header match any case", condition: `message.headers['X-Type'] == "order"`, headers: mediation.Headers{"x-type": {"order"}}, pass: true},
		{desc: "header absent", condition: `message.headers['x-type'] == "order"`, headers: mediation.Headers{"x-other": {"order"}}, pass: false},
		{desc: "header absent with optional", condition: `message.headers.?x_type.orValue("") != "order"`, pass: true},
		{desc: "metadata", condition: `message.metadata.topic == "orders"`, metadata: map[string]string{"topic": "orders"}, pass: true},
		{desc: "metadata mismatch", condition: `message.metadata.topic == "orders"`, metadata: map[string]string{"topic": "refunds"}, pass: false},
		{desc: "request method", condition: `request.method == "GET"`, request: get, pass: true},
		{desc: "request method mismatch", condition: `request.method == "GET"`, request: post, pass: false},
		{desc: "request header and query", condition: `request.headers['x-tenant'] == "acme" && request.query.region == "eu"`, request: get, pass: true},
		{desc: "per-client condition", condition: `message.json.tenant == request.headers['x-tenant']`, content: `{"tenant":"acme"}`, request: get, pass: true},
		{desc: "per-client condition other tenant", condition: `message.json.tenant == request.headers['x-tenant']`, content: `{"tenant":"globex"}`, request: get, pass: false},
		{desc: "runtime non-bool dropped", condition: `message.json.flag`, content: `{"flag":"yes"}`, pass: false},
		{desc: "runtime bool passes", condition: `message.json.flag`, content: `{"flag":true}`, pass: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			p := newFilter(t, tt.condition)
			msg := message(tt.content, tt.headers, tt.metadata)
			x := &mediation.Exchange{Request: tt.request}
			out, err := p.OnMessage(context.Background(), x, msg)
			if err != nil {
				t.Fatalf("OnMessage: %v (a filter never fails a message)", err)
			}
			if got := out != nil; got != tt.pass {
				t.Fatalf("condition %s on %q: passed = %v, want %v", tt.condition, tt.content, got, tt.pass)
			}
			if out != nil && out != msg {
				t.Fatal("a passing message must be the same message, unchanged")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		condition string
		want      string // in the FieldError message
	}{
		{desc: "missing", condition: "", want: "is required"},
		{desc: "blank", condition: "  \n", want: "is required"},
		{desc: "misspelt field", condition: `message.jsn.status == "paid"`, want: "column 8: undefined field 'jsn'"},
		{desc: "syntax", condition: `message.json.status = "paid"`, want: "column 21: Syntax error"},
		{desc: "not a bool", condition: `message.content`, want: "a condition must yield a bool"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			err := (&Config{Condition: tt.condition}).Validate()
			var fe *plugins.FieldError
			if !errors.As(err, &fe) || fe.Field != "condition" || !strings.Contains(fe.Message, tt.want) {
				t.Fatalf("Validate(%q) = %v; want a FieldError on condition containing %q", tt.condition, err, tt.want)
			}
		})
	}
	// New refuses what Validate refuses, for callers that skip Validate.
	if _, err := New(plugins.Context{}, &Config{Condition: "1 +"}); err == nil {
		t.Fatal("New with a broken condition succeeded")
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	pp, ok := plugins.Default.Policy(Name)
	if !ok {
		t.Fatalf("policy %q not registered", Name)
	}
	if len(pp.Phases) != 2 || pp.Phases[0] != mediation.PhasePublish || pp.Phases[1] != mediation.PhaseSubscribe {
		t.Fatalf("phases = %v, want publish and subscribe", pp.Phases)
	}
	cfg := pp.Config().(*Config)
	cfg.Condition = `message.content == "x"`
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	pol, err := pp.New(plugins.Context{Context: context.Background()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pol.(mediation.MessagePolicy); !ok {
		t.Fatalf("%T is not a MessagePolicy", pol)
	}
}
