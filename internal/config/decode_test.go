package config

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// decodeInto decodes a YAML document strictly into v, as plugin
// configurations are, and returns the problems as text.
func decodeInto(t *testing.T, doc string, v any) string {
	t.Helper()
	var errs errorList
	src, body, ok := parseDocument("c.yaml", []byte(doc), nil, &errs)
	if ok && body != nil {
		d := decoder{src: src, errs: &errs, scope: "test configuration"}
		d.decode(body, reflect.ValueOf(v).Elem())
	}
	return errString(errs.err())
}

type level int

func (l *level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low":
		*l = 1
	case "high":
		*l = 2
	default:
		return fmt.Errorf("level %q: want low or high", b)
	}
	return nil
}

// upper has a goccy node unmarshaler.
type upper string

func (u *upper) UnmarshalYAML(n ast.Node) error {
	s, ok := n.(*ast.StringNode)
	if !ok {
		return errors.New("upper wants a string")
	}
	*u = upper(strings.ToUpper(s.Value))
	return nil
}

type Common struct {
	Region string `yaml:"region"`
}

type allKinds struct {
	Common                                    // inline by embedding
	Extra      struct{ Zone string }          `yaml:",inline"`
	JSONName   string                         `json:"jsonName"`
	Untagged   int                            // key "untagged"
	Skipped    string                         `yaml:"-"`
	Timeout    time.Duration                  `yaml:"timeout"`
	Level      level                          `yaml:"level"`
	Upper      upper                          `yaml:"upper"`
	Addr       netip.Addr                     `yaml:"addr"`
	Port       uint16                         `yaml:"port"`
	Ratio      float32                        `yaml:"ratio"`
	Big        int8                           `yaml:"big"`
	Bytes      []byte                         `yaml:"bytes"`
	Pair       [2]string                      `yaml:"pair"`
	Routes     map[string]struct{ To string } `yaml:"routes"`
	Any        any                            `yaml:"any"`
	Ptr        *struct{ N int }               `yaml:"ptr"`
	Name       string                         `yaml:"name"`
	unexported string
	Stringer   fmt.Stringer `yaml:"stringer"`
}

func TestDecodeKinds(t *testing.T) {
	t.Parallel()
	var v allKinds
	problems := decodeInto(t, `
region: eu
zone: a
jsonName: j
untagged: 3
timeout: 1m
level: high
upper: shout
addr: 10.0.0.1
port: 8080
ratio: 0.5
big: 7
bytes: raw
pair: [a, b]
routes: {x: {to: y}}
any: {list: [1, 2.5, true, null, text]}
ptr: {n: 4}
name: 12
`, &v)
	if problems != "" {
		t.Fatalf("problems:\n%s", problems)
	}
	want := allKinds{
		Common: Common{Region: "eu"}, JSONName: "j", Untagged: 3, Timeout: time.Minute, Level: 2, Upper: "SHOUT",
		Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080, Ratio: 0.5, Big: 7, Bytes: []byte("raw"), Pair: [2]string{"a", "b"},
		Routes: map[string]struct{ To string }{"x": {To: "y"}},
		Any:    map[string]any{"list": []any{int64(1), 2.5, true, nil, "text"}},
		Ptr:    &struct{ N int }{N: 4}, Name: "12",
	}
	want.Extra.Zone = "a"
	if !reflect.DeepEqual(v, want) {
		t.Errorf("got  %+v\nwant %+v", v, want)
	}
}

func TestDecodeProblems(t *testing.T) {
	t.Parallel()
	var v allKinds
	got := decodeInto(t, `
level: medium
upper: [x]
addr: not-an-ip
port: -1
big: 300
ratio: fast
pair: [a]
skipped: x
unexported: x
stringer: x
routes: {x: {from: y}}
ptr: 5
? complex
: key
timeout: {}
`, &v)
	want := strings.Join([]string{
		`c.yaml:2:8: level "medium": want low or high`,
		`c.yaml:3:8: upper wants a string`,
		`c.yaml:4:7: ParseAddr("not-an-ip"): unable to parse IP`,
		`c.yaml:5:7: want a non-negative integer, got -1`,
		`c.yaml:6:6: 300 is out of range for int8`,
		`c.yaml:7:8: want a number, got the string "fast"`,
		`c.yaml:8:7: want a list of 2, got 1`,
		`c.yaml:9:1: unknown key "skipped" in test configuration (valid keys: addr, any, big, bytes, jsonName, level, name, pair, port, ptr, ratio, region, ...)`,
		`c.yaml:10:1: unknown key "unexported" in test configuration (valid keys: addr, any, big, bytes, jsonName, level, name, pair, port, ptr, ratio, region, ...)`,
		`c.yaml:11:11: cannot decode into fmt.Stringer`,
		`c.yaml:12:14: unknown key "from" in test configuration (valid keys: to)`,
		`c.yaml:13:6: want a mapping, got the number 5`,
		`c.yaml:14:1: complex keys ("? key") are not supported`,
		`c.yaml:16:10: want a duration such as "5s" or "250ms", got a mapping`,
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	known := []string{"listeners", "endpointGroups", "id", "type", "bootstrapServers"}
	for in, want := range map[string]string{
		"listners": "listeners", "lsiteners": "listeners", "endpointgroups": "endpointGroups",
		"tpye": "type", "ID": "id", "bootstrapServer": "bootstrapServers", "plans": "", "x": "",
	} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
