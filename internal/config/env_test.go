package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	env := mapEnv(map[string]string{"HOST": "kafka", "EMPTY": "", "PORT": "9092", "UNI": "ünï", "NL": "a\nb"})
	for _, tc := range []struct {
		desc, in, want string
	}{
		{"plain", "host: ${HOST}", "host: kafka"},
		{"several on a line", "servers: [${HOST}:${PORT}]", "servers: [kafka:9092]"},
		{"unset is empty", "token: ${NOPE}", "token: "},
		{"default when unset", "host: ${NOPE:-localhost}", "host: localhost"},
		{"default when empty", "host: ${EMPTY:-localhost}", "host: localhost"},
		{"set wins over default", "host: ${HOST:-localhost}", "host: kafka"},
		{"empty default", "token: '${NOPE:-}'", "token: ''"},
		{"default with colons", "url: ${NOPE:-http://h:1/x}", "url: http://h:1/x"},
		{"escape", "price: $$5 and $${HOST}", "price: $5 and ${HOST}"},
		{"lone dollars are kept", "a: $HOST $ 5$ $", "a: $HOST $ 5$ $"},
		{"unicode around", "é${UNI}é", "éünïé"},
		{"lines kept", "a: ${HOST}\nb: ${NOPE:-x}\n", "a: kafka\nb: x\n"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, _, errs := expandEnv([]byte(tc.in), env)
			if len(errs) > 0 || string(got) != tc.want {
				t.Errorf("expandEnv(%q) = %q, %v; want %q", tc.in, got, errs, tc.want)
			}
		})
	}
}

func TestExpandEnvMalformed(t *testing.T) {
	t.Parallel()
	env := mapEnv(map[string]string{"NL": "a\nb"})
	for _, tc := range []struct {
		desc, in string
		want     []envError // msg is matched as a substring
	}{
		{"unterminated", "a: ${HOST\n", []envError{{1, 4, `unterminated "${"`}}},
		{"unterminated at end", "a: ${", []envError{{1, 4, `unterminated "${"`}}},
		{"empty name", "a: ${}", []envError{{1, 4, "invalid variable name"}}},
		{"digit first", "a: ${1X}", []envError{{1, 4, "invalid variable name"}}},
		{"other operator", "a: ${X:?required}", []envError{{1, 4, "want ${NAME} or ${NAME:-default}"}}},
		{"nested default", "a: ${X:-${Y}}", []envError{{1, 4, "a default cannot contain another reference"}}},
		{"value with a line break", "a: ${NL}", []envError{{1, 4, "NL holds a line break"}}},
		{"every problem", "é: ${A B}\nb: ok ${\nc: ${X:+y} ${}", []envError{
			{1, 4, "invalid variable name"}, {2, 7, "unterminated"}, {3, 4, "want ${NAME}"}, {3, 12, "invalid variable name"},
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, _, errs := expandEnv([]byte(tc.in), env)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %v, want %v", errs, tc.want)
			}
			for i, w := range tc.want {
				if e := errs[i]; e.line != w.line || e.col != w.col || !strings.Contains(e.msg, w.msg) {
					t.Errorf("problem %d = %+v, want %+v", i, e, w)
				}
			}
		})
	}
}

// TestEnvPositions checks that positions after an expansion are those of
// the file, not of the expanded text.
func TestEnvPositions(t *testing.T) {
	t.Parallel()
	line := `  log: {level: "${LEVEL:-info}", format: "${FORMAT}"}  # ${LEVEL}`
	doc := "server:\n" + line + "\n"
	errs := problems(t, doc, map[string]string{"LEVEL": "a-much-longer-level-than-the-reference", "FORMAT": "x"})
	want := []Error{
		{File: "gateway.yaml", Line: 2, Col: strings.Index(line, `"${LEVEL`) + 1, Msg: `unknown log level "a-much-longer-level-than-the-reference" (want debug, info, warn or error)`},
		{File: "gateway.yaml", Line: 2, Col: strings.Index(line, `"${FORMAT`) + 1, Msg: `unknown log format "x" (want json or text)`},
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("got  %v\nwant %v", errs, want)
	}
}

func TestColumnMap(t *testing.T) {
	t.Parallel()
	// "a ${XY} b $$ c" expands to "a 1234567 b $ c" with XY=1234567.
	_, cols, _ := expandEnv([]byte("a ${XY} b $$ c"), mapEnv(map[string]string{"XY": "1234567"}))
	for _, tc := range []struct{ exp, src int }{
		{1, 1}, {3, 3}, {5, 3}, {9, 3}, {10, 8}, {11, 9}, {13, 11}, {14, 13}, {15, 14},
	} {
		if got := cols.source(1, tc.exp); got != tc.src {
			t.Errorf("expanded column %d maps to %d, want %d", tc.exp, got, tc.src)
		}
	}
	if got := cols.source(2, 7); got != 7 {
		t.Errorf("a line without expansions maps 7 to %d", got)
	}
}

// TestParseUsesEnvironment cannot run in parallel: it sets a variable of
// the process.
func TestParseUsesEnvironment(t *testing.T) {
	t.Setenv("SLUICE_CONFIG_TEST_TOKEN", "from-env")
	cfg, err := Parse("gateway.yaml", []byte("server: {admin: {token: '${SLUICE_CONFIG_TEST_TOKEN}'}}\n"), testRegistry())
	if err != nil || cfg.Server.Admin.Token != "from-env" {
		t.Fatalf("Parse = %+v, %v", cfg, err)
	}
}
