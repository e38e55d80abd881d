// Package config loads and checks gateway.yaml, the configuration file of
// DESIGN.md (contract): YAML, camelCase keys, unknown keys rejected, Go
// durations ("5s", "250ms").
//
// Load is the single entry point of both `sluice validate` and `sluice run`,
// so what validates is what runs. It decodes strictly, decodes every plugin
// configuration into the plugin's own type (the Decoded fields), applies
// defaults, and checks the whole file, reporting every problem at once as
// *Errors, one "file:line:col: message" per line, sorted.
//
// Before parsing, the environment is expanded in the text: ${NAME} is the
// variable's value (empty when unset), ${NAME:-default} falls back to
// default when it is unset or empty, and $$ is a literal '$'. Values are
// inserted verbatim, so quote the reference ("${TOKEN}") when a value may
// hold YAML punctuation; a value holding a line break is refused, which
// keeps line numbers those of the file, and columns are mapped back through
// the substitutions.
//
// YAML anchors, aliases and merge keys (<<) work as usual. Keys starting
// with "x-" are ignored in the gateway's own structure (not inside plugin
// configurations), as a place to define anchors:
//
//	x-kafka: &kafka {bootstrapServers: ["${KAFKA_BROKERS:-127.0.0.1:9092}"]}
package config

import (
	"fmt"
	"io"
	"os"
	"reflect"

	"github.com/goccy/go-yaml/ast"
	"github.com/sluicegw/sluice/plugins"
)

// Load reads, expands, decodes and checks the configuration file at path.
// Problems with the content are returned together as *Errors; an
// unreadable file is returned as the os error. A nil reg means
// plugins.Default.
func Load(path string, reg *plugins.Registry) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return Parse(path, data, reg)
}

// Parse is Load for a file already in memory; file names it in messages.
// Environment variables are expanded first (see the package comment);
// positions in messages point into data as written, not into the expanded
// text.
func Parse(file string, data []byte, reg *plugins.Registry) (*Config, error) {
	return parseConfig(file, data, reg, os.LookupEnv)
}

// ParseAPI decodes and checks one API document, YAML or JSON, as the
// management API receives it (PUT /v1/apis/{id}). The checks are those Load
// runs on each API; paths are checked within the document only, see
// PathConflicts for the deployed APIs.
//
// Unlike Parse it does not expand ${VAR}: a document sent over the network
// is data, and expanding the gateway's environment into it would let its
// author read the gateway's secrets back through GET /v1/apis.
func ParseAPI(file string, data []byte, reg *plugins.Registry) (*API, error) {
	l := newLoader(reg)
	src, body, ok := parseDocument(file, data, nil, &l.errs)
	l.src = src
	if !ok {
		return nil, l.errs.err()
	}
	api := &API{}
	if body == nil {
		l.errs.add(Error{File: file, Msg: "empty API document"})
		return nil, l.errs.err()
	}
	l.decoder("", true).decode(body, reflect.ValueOf(api).Elem())
	setAPIDefaults(api)
	l.checkAPI(api)
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	return api, nil
}

// parseConfig is Parse with the environment as a parameter, for tests.
func parseConfig(file string, data []byte, reg *plugins.Registry, lookup func(string) (string, bool)) (*Config, error) {
	l := newLoader(reg)
	src, body, ok := parseDocument(file, data, lookup, &l.errs)
	l.src = src
	if !ok {
		return nil, l.errs.err()
	}
	cfg := &Config{}
	if body != nil {
		l.decoder("", true).decode(body, reflect.ValueOf(cfg).Elem())
	}
	cfg.File = file
	setConfigDefaults(cfg)
	l.checkConfig(cfg)
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loader holds the state of one load: the document, what each decoded
// value was read from, and the problems found so far.
type loader struct {
	src  *source
	reg  *plugins.Registry
	errs errorList
	// nodes maps a pointer to a decoded value (&api.ID, &listener, ...) to
	// the node it came from; absent when the file does not set it.
	nodes map[any]ast.Node
	// misspelled: see decoder.misspelled.
	misspelled map[any]map[string]bool
	// failed: see decoder.failed.
	failed map[any]bool
	// ids and paths are what earlier APIs claimed, for duplicates.
	ids   map[string]ast.Node
	paths map[string]pathUse
}

// pathUse is the API that claimed a listener path first.
type pathUse struct {
	api  string
	node ast.Node
}

func newLoader(reg *plugins.Registry) *loader {
	if reg == nil {
		reg = plugins.Default
	}
	return &loader{
		reg:        reg,
		nodes:      map[any]ast.Node{},
		misspelled: map[any]map[string]bool{},
		failed:     map[any]bool{},
		ids:        map[string]ast.Node{},
		paths:      map[string]pathUse{},
	}
}

// decoder returns a decoder over the loaded document. record keeps the
// positions of decoded values for the checks.
func (l *loader) decoder(scope string, record bool) *decoder {
	d := &decoder{src: l.src, errs: &l.errs, scope: scope}
	if record {
		d.nodes, d.misspelled, d.failed = l.nodes, l.misspelled, l.failed
	}
	return d
}

// node returns the node of the first of ptrs the file sets (a field, then
// its enclosing value, ...), or nil.
func (l *loader) node(ptrs ...any) ast.Node {
	for _, p := range ptrs {
		if n, ok := l.nodes[p]; ok {
			return n
		}
	}
	return nil
}

// written reports whether the file sets the value p points to.
func (l *loader) written(p any) bool {
	_, ok := l.nodes[p]
	return ok
}

// line is the line of n, for "(first at line N)".
func (l *loader) line(n ast.Node) int {
	line, _ := l.src.pos(n)
	return line
}

func (l *loader) errorf(n ast.Node, format string, args ...any) {
	l.errs.add(l.src.errorAt(n, fmt.Sprintf(format, args...)))
}

// missing reports a required key absent from the mapping owner was decoded
// from, unless the decoder already reported why: owner is not a mapping at
// all, or the file has a near-miss spelling of the key ("unknown key ...
// (did you mean ...)").
func (l *loader) missing(owner any, key string, format string, args ...any) {
	if l.misspelled[owner][key] || l.failed[owner] {
		return
	}
	l.errorf(l.node(owner), format, args...)
}

// needList reports an empty list that needs an item: at the list when the
// file has one, else at its owner (unless the key was misspelled). A value
// of the wrong type was already reported by the decoder and is left alone.
func (l *loader) needList(list, owner any, key, format string, args ...any) {
	n := l.node(list)
	switch n.(type) {
	case nil, *ast.NullNode:
		l.missing(owner, key, format, args...)
	case *ast.SequenceNode:
		l.errorf(n, format, args...)
	}
}
