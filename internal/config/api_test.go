package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAPI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, doc string
	}{
		{"yaml", `
id: orders
listeners:
  - {type: http, paths: [/orders], entrypoints: [{type: sse, qos: at-least-once}]}
endpointGroups:
  - {name: default, type: kafka, sharedConfiguration: {bootstrapServers: ["k:9092"], consumer: {topics: [orders]}}, endpoints: [{name: k1}]}
`},
		{"json with tabs", "{\n\t\"id\": \"orders\",\n\t\"listeners\": [{\"type\": \"http\", \"paths\": [\"/orders\"],\n\t\t\"entrypoints\": [{\"type\": \"sse\", \"qos\": \"at-least-once\"}]}],\n\t\"endpointGroups\": [{\"name\": \"default\", \"type\": \"kafka\",\n\t\t\"sharedConfiguration\": {\"bootstrapServers\": [\"k:9092\"], \"consumer\": {\"topics\": [\"orders\"]}},\n\t\t\"endpoints\": [{\"name\": \"k1\"}]}]\n}\n"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			api, err := ParseAPI("body", []byte(tc.doc), testRegistry())
			if err != nil {
				t.Fatalf("ParseAPI: %v", err)
			}
			if api.ID != "orders" || api.Name != "orders" || api.Type != "message" || api.Listeners[0].Entrypoints[0].Window != DefaultWindow {
				t.Errorf("api = %+v", api)
			}
			k := api.EndpointGroups[0].Endpoints[0].Decoded.(*kafkaConfig)
			if k.BootstrapServers[0] != "k:9092" || k.Consumer.Topics[0] != "orders" {
				t.Errorf("decoded = %+v", k)
			}
		})
	}
}

func TestParseAPIProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, doc string
		want      []string
	}{
		{"json", `{"id": "orders", "listeners": [{"type": "http", "paths": ["/a", "/a/"], "entrypoints": [{"type": "sse", "qoss": "none"}]}],
 "endpointGroups": [{"type": "mock", "endpoints": [{"name": "m"}]}]}`, []string{
			`body:1:65: path "/a/" is listed twice in this api (first at line 1)`,
			`body:1:105: unknown key "qoss" (did you mean "qos"?)`,
		}},
		{"environment is not expanded", "id: '${HOME}'\nlisteners: []\nendpointGroups: []\n", []string{
			`body:1:5: invalid api id "${HOME}": use letters, digits, '-' and '_' (at most 64)`,
			`body:2:12: api needs at least one listener (listeners)`,
			`body:3:17: api needs at least one endpoint group (endpointGroups); the first serves its entrypoints`,
		}},
		{"empty", "  \n", []string{"body: empty API document"}},
		{"not a mapping", "[1, 2]", []string{"body:1:1: want a mapping, got a list"}},
		{"bad json", `{"id": "orders",`, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := ParseAPI("body", []byte(tc.doc), testRegistry())
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want *Errors, got %v", err)
			}
			if tc.want == nil {
				if errs.List[0].Line != 1 || !strings.HasPrefix(errs.List[0].Msg, "yaml: ") {
					t.Errorf("got %v, want a yaml syntax problem on line 1", err)
				}
				return
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestPathConflicts(t *testing.T) {
	t.Parallel()
	deployed := []API{
		{ID: "orders", Listeners: []Listener{{Type: "http", Paths: []string{"/orders", "/shop/"}}}},
		{ID: "hooks", Listeners: []Listener{{Type: "subscription"}}},
	}
	for _, tc := range []struct {
		desc string
		api  API
		want string
	}{
		{"free", API{ID: "x", Listeners: []Listener{{Type: "http", Paths: []string{"/x"}}}}, ""},
		{"redeploy of itself", API{ID: "orders", Listeners: []Listener{{Type: "http", Paths: []string{"/orders"}}}}, ""},
		{"taken, trailing slash aside", API{ID: "x", Listeners: []Listener{{Type: "http", Paths: []string{"/orders/", "/x", "/shop"}}}},
			"path \"/orders/\" is already used by api \"orders\"\npath \"/shop\" is already used by api \"orders\""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			err := PathConflicts(&tc.api, deployed)
			if got := errString(err); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestNormalizePath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"/": "/", "//": "/", "/a/": "/a", "/a": "/a", "/a/b//": "/a/b"} {
		if got := NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  Error
		want string
	}{
		{Error{File: "g.yaml", Line: 3, Col: 7, Msg: "bad"}, "g.yaml:3:7: bad"},
		{Error{File: "g.yaml", Msg: "too large"}, "g.yaml: too large"},
		{Error{Line: 1, Col: 2, Msg: "bad"}, "1:2: bad"},
		{Error{Msg: "bad"}, "bad"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v renders %q, want %q", tc.err, got, tc.want)
		}
	}
	var l errorList
	l.add(Error{File: "b", Line: 1, Col: 1, Msg: "z"})
	l.add(Error{File: "a", Line: 9, Col: 1, Msg: "y"})
	l.add(Error{File: "a", Line: 2, Col: 5, Msg: "x"})
	l.add(Error{File: "a", Line: 2, Col: 5, Msg: "x"})
	l.add(Error{File: "a", Line: 2, Col: 1, Msg: "w"})
	if got, want := l.err().Error(), "a:2:1: w\na:2:5: x\na:9:1: y\nb:1:1: z"; got != want {
		t.Errorf("sorted and de-duplicated:\n%s\nwant\n%s", got, want)
	}
}

func TestRaw(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `
x-meta: &meta {team: payments}
apis:
  - id: a
    listeners: [{type: http, paths: [/a], entrypoints: [{type: sse}]}]
    endpointGroups: [{type: mock, endpoints: [{name: m}]}]
    plans:
      - name: jwt
        security:
          type: jwt
          configuration:
            issuer: https://issuer.example
            audience: [api]
            leeway: 30s
            labels: *meta
`, nil)
	raw := cfg.APIs[0].Plans[0].Security.Configuration
	if raw.IsZero() {
		t.Fatal("configuration not kept")
	}
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"audience":["api"],"issuer":"https://issuer.example","labels":{"team":"payments"},"leeway":"30s"}`; string(b) != want {
		t.Errorf("MarshalJSON = %s, want %s", b, want)
	}

	type jwtConfig struct {
		Issuer   string            `yaml:"issuer"`
		Audience []string          `yaml:"audience"`
		Leeway   Duration          `yaml:"leeway"`
		Labels   map[string]string `yaml:"labels"`
	}
	var c jwtConfig
	if err := raw.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://issuer.example" || c.Leeway != Duration(30*time.Second) || c.Labels["team"] != "payments" {
		t.Errorf("Decode = %+v", c)
	}

	var strict struct {
		Issuer string `yaml:"issuer"`
	}
	err = raw.Decode(&strict)
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) != 3 || errs.List[0] != (Error{File: "gateway.yaml", Line: 13, Col: 13, Msg: `unknown key "audience" (valid keys: issuer)`}) {
		t.Errorf("strict Decode = %v", err)
	}
	if err := raw.Decode(c); err == nil {
		t.Error("Decode into a non-pointer must fail")
	}
	if b, _ := json.Marshal(Raw{}); string(b) != "null" {
		t.Errorf("zero Raw renders %s", b)
	}
}

func TestDurationText(t *testing.T) {
	t.Parallel()
	var v struct{ D Duration }
	if err := json.Unmarshal([]byte(`{"D": "1m30s"}`), &v); err != nil || v.D != Duration(90*time.Second) {
		t.Errorf("unmarshal = %v, %v", v.D, err)
	}
	if b, _ := json.Marshal(v); string(b) != `{"D":"1m30s"}` {
		t.Errorf("marshal = %s", b)
	}
	for in, want := range map[string]string{
		`{"D": "300"}`:   `invalid duration "300": add a unit, such as "300s" or "300ms"`,
		`{"D": "5 min"}`: `invalid duration "5 min": want a Go duration such as "5s", "250ms" or "1m30s"`,
	} {
		if err := json.Unmarshal([]byte(in), &v); err == nil || err.Error() != want {
			t.Errorf("unmarshal %s = %v, want %q", in, err, want)
		}
	}
}
