package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// maxVisits bounds the nodes one document may make the decoder visit,
// aliases included, so that an alias bomb ("billion laughs") fails quickly
// instead of filling memory. Real files visit a few thousand.
const maxVisits = 500_000

// source is one parsed document: what every decoder of its nodes shares to
// resolve aliases and to turn nodes into file:line:col.
type source struct {
	file    string
	cols    columnMap
	anchors map[string]ast.Node
	visits  int // left before the document counts as too complex
}

// pos returns the file line and column where n starts; 0, 0 when n has no
// usable position.
func (s *source) pos(n ast.Node) (line, col int) {
	tk := startToken(n)
	if tk == nil || tk.Position == nil || tk.Position.Line < 1 {
		return 0, 0
	}
	line, col = tk.Position.Line, max(tk.Position.Column, 1)
	return line, s.cols.source(line, col)
}

// errorAt builds an Error positioned at n.
func (s *source) errorAt(n ast.Node, msg string) Error {
	line, col := s.pos(n)
	return Error{File: s.file, Line: line, Col: col, Msg: msg}
}

// startToken is the token where a node starts for a reader: goccy positions
// a block mapping at its first ':', a person looks for its first key.
func startToken(n ast.Node) *token.Token {
	switch x := n.(type) {
	case nil:
		return nil
	case *ast.DocumentNode:
		if x.Body == nil {
			return nil
		}
		return startToken(x.Body)
	case *ast.MappingNode:
		if !x.IsFlowStyle && len(x.Values) > 0 {
			return startToken(x.Values[0])
		}
		return x.Start
	case *ast.MappingValueNode:
		if x.Key != nil {
			return startToken(x.Key)
		}
		return x.Start
	}
	return n.GetToken()
}

// parseDocument turns text into the body node of its single YAML document
// (nil for an empty document), after expanding the environment through
// lookup unless it is nil. Problems are added to errs; ok is false when
// there is nothing to decode.
func parseDocument(file string, data []byte, lookup func(string) (string, bool), errs *errorList) (src *source, body ast.Node, ok bool) {
	src = &source{file: file, visits: maxVisits}
	if len(data) > MaxFileSize {
		errs.add(Error{File: file, Msg: fmt.Sprintf("file is larger than the limit of %d bytes (1 MiB)", MaxFileSize)})
		return src, nil, false
	}
	if lookup != nil {
		var envErrs []envError
		data, src.cols, envErrs = expandEnv(data, lookup)
		for _, e := range envErrs {
			errs.add(Error{File: file, Line: e.line, Col: e.col, Msg: e.msg})
		}
		if len(envErrs) > 0 {
			return src, nil, false
		}
	}
	if line, col, msg := checkNesting(data); line > 0 {
		errs.add(Error{File: file, Line: line, Col: src.cols.source(line, col), Msg: msg})
		return src, nil, false
	}
	f, err := parser.Parse(lexer.Tokenize(string(data)), 0)
	if err != nil {
		errs.add(src.syntaxError(err))
		return src, nil, false
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) > 1 {
		errs.add(src.errorAt(docs[1].Body, "a file holds one YAML document; this is a second one"))
		return src, nil, false
	}
	if len(docs) == 0 {
		return src, nil, true
	}
	src.anchors = map[string]ast.Node{}
	collectAnchors(docs[0].Body, src.anchors)
	return src, docs[0].Body, true
}

// syntaxError turns a parser error into an Error. goccy's own Error()
// includes a source excerpt; only its message and position are kept.
func (s *source) syntaxError(err error) Error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg := ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line > 0 {
			line := tk.Position.Line
			return Error{File: s.file, Line: line, Col: s.cols.source(line, max(tk.Position.Column, 1)), Msg: "yaml: " + msg}
		}
		return Error{File: s.file, Msg: "yaml: " + msg}
	}
	// Not expected from the parser; keep the first line only, the rest is
	// a source excerpt.
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return Error{File: s.file, Msg: "yaml: " + msg}
}

// collectAnchors records every anchor of the document by name. A name
// defined twice refers to its last definition.
func collectAnchors(n ast.Node, into map[string]ast.Node) {
	switch x := n.(type) {
	case *ast.AnchorNode:
		if x.Name != nil {
			if tk := x.Name.GetToken(); tk != nil {
				into[tk.Value] = x.Value
			}
		}
		collectAnchors(x.Value, into)
	case *ast.TagNode:
		collectAnchors(x.Value, into)
	case *ast.MappingNode:
		for _, v := range x.Values {
			collectAnchors(v, into)
		}
	case *ast.MappingValueNode:
		if x.Key != nil {
			collectAnchors(x.Key, into)
		}
		collectAnchors(x.Value, into)
	case *ast.MappingKeyNode:
		collectAnchors(x.Value, into)
	case *ast.SequenceNode:
		for _, v := range x.Values {
			collectAnchors(v, into)
		}
	}
}
