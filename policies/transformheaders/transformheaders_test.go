package transformheaders

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newPolicy(t testing.TB, cfg Config) *Policy {
	t.Helper()
	p, err := New(&cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return p
}

func TestOnMessage(t *testing.T) {
	t.Parallel()
	in := mediation.Headers{
		"x-type":        {"order"},
		"x-trace":       {"a", "b"},
		"authorization": {"Bearer secret"},
		"content-type":  {"application/json"},
	}
	tests := []struct {
		desc string
		cfg  Config
		want mediation.Headers
	}{
		{
			desc: "add appends to existing values and creates new headers",
			cfg:  Config{AddHeaders: []Header{{Name: "X-Trace", Value: "c"}, {Name: "X-Source", Value: "gateway"}}},
			want: mediation.Headers{"x-type": {"order"}, "x-trace": {"a", "b", "c"}, "authorization": {"Bearer secret"},
				"content-type": {"application/json"}, "x-source": {"gateway"}},
		},
		{
			desc: "set replaces every value",
			cfg:  Config{SetHeaders: []Header{{Name: "x-trace", Value: "z"}, {Name: "X-New", Value: "1"}}},
			want: mediation.Headers{"x-type": {"order"}, "x-trace": {"z"}, "authorization": {"Bearer secret"},
				"content-type": {"application/json"}, "x-new": {"1"}},
		},
		{
			desc: "remove any case, absent names ignored",
			cfg:  Config{RemoveHeaders: []string{"Authorization", "X-Absent"}},
			want: mediation.Headers{"x-type": {"order"}, "x-trace": {"a", "b"}, "content-type": {"application/json"}},
		},
		{
			desc: "whitelist keeps only named headers",
			cfg:  Config{WhitelistHeaders: []string{"Content-Type", "x-type"}},
			want: mediation.Headers{"x-type": {"order"}, "content-type": {"application/json"}},
		},
		{
			desc: "set and added headers survive the whitelist",
			cfg: Config{WhitelistHeaders: []string{"x-type"}, SetHeaders: []Header{{Name: "x-env", Value: "prod"}},
				AddHeaders: []Header{{Name: "x-type", Value: "v2"}}},
			want: mediation.Headers{"x-type": {"order", "v2"}, "x-env": {"prod"}},
		},
		{
			desc: "remove then set the same header",
			cfg:  Config{RemoveHeaders: []string{"x-type"}, SetHeaders: []Header{{Name: "x-type", Value: "event"}}},
			want: mediation.Headers{"x-type": {"event"}, "x-trace": {"a", "b"}, "authorization": {"Bearer secret"},
				"content-type": {"application/json"}},
		},
		{
			desc: "empty value allowed",
			cfg:  Config{SetHeaders: []Header{{Name: "x-empty", Value: ""}}},
			want: mediation.Headers{"x-type": {"order"}, "x-trace": {"a", "b"}, "authorization": {"Bearer secret"},
				"content-type": {"application/json"}, "x-empty": {""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			p := newPolicy(t, tt.cfg)
			msg := mediation.NewMessage([]byte("body"))
			msg.Headers = in.Clone()
			msg.Metadata = map[string]string{"topic": "orders"}
			before := in.Clone()

			out, err := p.OnMessage(context.Background(), nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out.Headers, tt.want) {
				t.Fatalf("headers = %v, want %v", out.Headers, tt.want)
			}
			if out == msg {
				t.Fatal("OnMessage returned the message itself; it must return a changed clone")
			}
			if !reflect.DeepEqual(msg.Headers, before) {
				t.Fatalf("the original message was changed: %v, was %v", msg.Headers, before)
			}
			if string(out.Content) != "body" || out.Metadata["topic"] != "orders" {
				t.Fatalf("content or metadata lost: %q %v", out.Content, out.Metadata)
			}
		})
	}
}

// TestOnMessageNoHeaders: a message without headers gets what is set and
// added.
func TestOnMessageNoHeaders(t *testing.T) {
	t.Parallel()
	p := newPolicy(t, Config{SetHeaders: []Header{{Name: "X-A", Value: "1"}}, RemoveHeaders: []string{"x-b"}})
	out, err := p.OnMessage(context.Background(), nil, mediation.NewMessage(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Headers.Get("x-a"); got != "1" {
		t.Fatalf("x-a = %q, want 1", got)
	}
}

func TestOnRequestAndResponse(t *testing.T) {
	t.Parallel()
	p := newPolicy(t, Config{
		AddHeaders:    []Header{{Name: "x-forwarded-for", Value: "10.0.0.1"}},
		SetHeaders:    []Header{{Name: "x-tenant", Value: "acme"}},
		RemoveHeaders: []string{"x-debug"},
	})
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	r.Header.Set("X-Debug", "1")
	r.Header.Set("X-Tenant", "spoofed")
	r.Header.Set("X-Forwarded-For", "192.0.2.1")
	if err := p.OnRequest(context.Background(), nil, r); err != nil {
		t.Fatal(err)
	}
	want := http.Header{"X-Tenant": {"acme"}, "X-Forwarded-For": {"192.0.2.1", "10.0.0.1"}}
	if !reflect.DeepEqual(r.Header, want) {
		t.Fatalf("request headers = %v, want %v", r.Header, want)
	}

	keep := newPolicy(t, Config{WhitelistHeaders: []string{"content-type", "CACHE-CONTROL"}})
	h := http.Header{"Content-Type": {"text/plain"}, "Cache-Control": {"no-cache"}, "X-Internal": {"secret"}, "Server": {"x"}}
	if err := keep.OnResponse(context.Background(), nil, h); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(h)); !slices.Equal(got, []string{"Cache-Control", "Content-Type"}) {
		t.Fatalf("response headers kept: %v", got)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		cfg   Config
		field string
		want  string
	}{
		{desc: "nothing to do", cfg: Config{}, field: "", want: "nothing to do"},
		{desc: "empty name", cfg: Config{SetHeaders: []Header{{Value: "v"}}}, field: "setHeaders", want: "entry 1: name must not be empty"},
		{desc: "space in name", cfg: Config{AddHeaders: []Header{{Name: "x a", Value: "v"}}}, field: "addHeaders", want: `"x a" is not a valid header name`},
		{desc: "colon in name", cfg: Config{RemoveHeaders: []string{"ok", "x:y"}}, field: "removeHeaders", want: "entry 2: "},
		{desc: "CRLF in value", cfg: Config{SetHeaders: []Header{{Name: "x", Value: "a\r\nInjected: 1"}}}, field: "setHeaders", want: "contains control character"},
		{desc: "NUL in value", cfg: Config{AddHeaders: []Header{{Name: "x", Value: "a\x00"}}}, field: "addHeaders", want: "contains control character"},
		{desc: "bad whitelist", cfg: Config{WhitelistHeaders: []string{""}}, field: "whitelistHeaders", want: "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			var fe *plugins.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Message, tt.want) {
				t.Fatalf("Validate = %v; want a FieldError on %q containing %q", err, tt.field, tt.want)
			}
			if _, err := New(&tt.cfg); err == nil {
				t.Fatal("New accepted what Validate refuses")
			}
		})
	}
	ok := Config{SetHeaders: []Header{{Name: "X-Tab", Value: "a\tb"}}, WhitelistHeaders: []string{"x-tab"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid configuration refused: %v", err)
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	pp, ok := plugins.Default.Policy(Name)
	if !ok {
		t.Fatalf("policy %q not registered", Name)
	}
	want := []mediation.Phase{mediation.PhaseRequest, mediation.PhaseResponse, mediation.PhasePublish, mediation.PhaseSubscribe}
	if !slices.Equal(pp.Phases, want) {
		t.Fatalf("phases = %v, want %v", pp.Phases, want)
	}
	cfg := pp.Config().(*Config)
	cfg.RemoveHeaders = []string{"x-debug"}
	pol, err := pp.New(plugins.Context{Context: context.Background()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pol.(mediation.MessagePolicy); !ok {
		t.Fatalf("%T is not a MessagePolicy", pol)
	}
}
